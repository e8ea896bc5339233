package ovmf

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

func TestTDVFFixtures(t *testing.T) {
	for path, want := range map[string]string{
		"fixtures/firmware/OVMF.fd":                "",
		"fixtures/firmware/trixie/OVMF.fd":         "",
		"fixtures/firmware/amdsev/OVMF.amdsev.fd":  "",
		"fixtures/firmware/OVMF_CODE.fd":           "exceeds the firmware size",
		"fixtures/firmware/trixie/OVMF_CODE_4M.fd": "exceeds the firmware size",
		"fixtures/firmware/trixie/OVMF_VARS_4M.fd": "no TDX metadata",
	} {
		img, err := os.ReadFile(testenv.SharedFile(t, path))
		if err != nil {
			t.Fatal(err)
		}
		td, err := ParseTDVF(img)
		if want != "" {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: err = %v, want %q", path, err, want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		bfv, ok1 := td.Section(TDVFBFV)
		_, ok2 := td.Section(TDVFCFV)
		_, ok3 := td.Section(TDVFTDHOB)
		if !ok1 || !ok2 || !ok3 || bfv.Attributes != AttrMRExtend || td.Legacy {
			t.Errorf("%s: sections %+v", path, td.Sections)
		}
	}
}

// tdvfImage builds an image whose footer table points at a TDVF descriptor.
func tdvfImage(secs ...TDVFSection) []byte {
	const size = 0x4000
	img := image(size, Entry{TDXMetadataGUID, u32s(0x200)})
	d := append([]byte("TDVF"), u32s(uint32(16+32*len(secs)), 1, uint32(len(secs)))...)
	for _, s := range secs {
		d = append(d, u32s(s.DataOffset, s.RawDataSize)...)
		d = binary.LittleEndian.AppendUint64(d, s.MemoryAddress)
		d = binary.LittleEndian.AppendUint64(d, s.MemoryDataSize)
		d = append(d, u32s(uint32(s.Type), s.Attributes)...)
	}
	copy(img[size-0x200:], d)
	return img
}

func TestTDVFHostile(t *testing.T) {
	bfv := TDVFSection{0, 0x1000, 0xfffff000, 0x1000, TDVFBFV, AttrMRExtend}
	if td, err := ParseTDVF(tdvfImage(bfv)); err != nil || len(td.Sections) != 1 {
		t.Fatalf("well-formed: %v", err)
	}
	// td-shim's legacy locator: u32 at end-0x20 → GUID, descriptor after it.
	legacy := make([]byte, 0x2000)
	copy(legacy[0x100:], tdxMetadataGUID[:])
	copy(legacy[0x110:], append([]byte("TDVF"), u32s(48, 1, 1, 0, 0x1000)...))
	binary.LittleEndian.PutUint64(legacy[0x110+24:], 0xffffe000)
	binary.LittleEndian.PutUint64(legacy[0x110+32:], 0x1000)
	binary.LittleEndian.PutUint32(legacy[len(legacy)-0x20:], 0x100)
	if td, err := ParseTDVF(legacy); err != nil || !td.Legacy {
		t.Fatalf("td-shim locator: %v", err)
	}
	for name, tt := range map[string]struct {
		img  []byte
		want string
	}{
		"no metadata":       {make([]byte, 0x2000), "no TDX metadata"},
		"offset outside":    {image(0x2000, Entry{TDXMetadataGUID, u32s(0xffffff)}), "points outside"},
		"bad signature":     {image(0x2000, Entry{TDXMetadataGUID, u32s(0x800)}), `want "TDVF"`},
		"raw past end":      {tdvfImage(TDVFSection{0x3000, 0x2000, 0xffffe000, 0x2000, TDVFBFV, AttrMRExtend}), "exceeds the firmware size"},
		"unaligned":         {tdvfImage(TDVFSection{0, 0x1000, 0xfffff010, 0x1000, TDVFBFV, 0}), "4 KiB aligned"},
		"raw over memory":   {tdvfImage(TDVFSection{0, 0x2000, 0xfffff000, 0x1000, TDVFBFV, 0}), "larger than memory"},
		"unknown type":      {tdvfImage(TDVFSection{0, 0, 0x1000, 0x1000, 99, 0}), "unknown section type"},
		"unknown attribute": {tdvfImage(TDVFSection{0, 0, 0x1000, 0x1000, TDVFTempMem, 8}), "unknown attributes"},
		"empty section":     {tdvfImage(TDVFSection{0, 0, 0x1000, 0, TDVFTempMem, 0}), "empty"},
		"wrapping section":  {tdvfImage(TDVFSection{0, 0, 0xfffffffffffff000, 0x2000, TDVFTempMem, 0}), "does not end at or below 4 GiB"},
		// Sizes QEMU would never accept, which made the MRTD loop run for
		// hours (1 TiB of pages): refused while parsing.
		"1 TiB TEMP_MEM":       {tdvfImage(TDVFSection{0, 0, 0x1000, 1 << 40, TDVFTempMem, 0}), "does not end at or below 4 GiB"},
		"BFV crossing 4 GiB":   {tdvfImage(TDVFSection{0, 0x1000, 0xfffff000, 0x2000, TDVFBFV, AttrMRExtend}), "does not end at or below 4 GiB"},
		"BFV outside firmware": {tdvfImage(TDVFSection{0, 0x1000, 0x100000, 0x1000, TDVFBFV, AttrMRExtend}), "outside the firmware's mapping"},
		"BFV without raw data": {tdvfImage(TDVFSection{0, 0, 0xfffff000, 0x1000, TDVFBFV, 0}), "needs raw data"},
		"TD_HOB with raw data": {tdvfImage(TDVFSection{0, 0x1000, 0x1000, 0x1000, TDVFTDHOB, 0}), "cannot have raw data"},
		"huge MR.EXTEND":       {tdvfImage(TDVFSection{0, 0, 0x100000, 128 << 20, TDVFPermMem, AttrMRExtend}), "larger than a firmware image can be"},
		"overlap":              {tdvfImage(TDVFSection{0, 0, 0x1000, 0x2000, TDVFTempMem, 0}, TDVFSection{0, 0, 0x2000, 0x1000, TDVFTDHOB, 0}), "overlap"},
		"extend and aug":       {tdvfImage(TDVFSection{0, 0, 0x1000, 0x1000, TDVFTempMem, 3}), "both"},
		"huge count": {func() []byte {
			b := tdvfImage(bfv)
			binary.LittleEndian.PutUint32(b[0x4000-0x200+12:], 1<<30)
			return b
		}(), "does not fit"},
	} {
		if _, err := ParseTDVF(tt.img); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tt.want)
		}
	}
}

// varStore builds an authenticated variable store holding vars.
func varStore(vars ...Variable) []byte {
	fv := make([]byte, 0x48)
	copy(fv[16:], systemNvDataFvGUID[:])
	copy(fv[40:], "_FVH")
	binary.LittleEndian.PutUint16(fv[48:], 0x48)
	var body []byte
	for _, v := range vars {
		u := utf16.Encode([]rune(v.Name + "\x00"))
		name := make([]byte, 2*len(u))
		for i, c := range u {
			binary.LittleEndian.PutUint16(name[2*i:], c)
		}
		h := make([]byte, 60)
		binary.LittleEndian.PutUint16(h, 0x55aa)
		h[2] = 0x3f
		binary.LittleEndian.PutUint32(h[4:], v.Attributes)
		binary.LittleEndian.PutUint32(h[36:], uint32(len(name)))
		binary.LittleEndian.PutUint32(h[40:], uint32(len(v.Data)))
		copy(h[44:], v.GUID[:])
		body = append(body, h...)
		body = append(body, name...)
		body = append(body, v.Data...)
		for len(body)%4 != 0 {
			body = append(body, 0xff)
		}
	}
	vs := append(append([]byte(nil), authenticatedVarGUID[:]...), u32s(uint32(28+len(body)+64))...)
	vs = append(vs, 0x5a, 0xfe, 0, 0, 0, 0, 0, 0)
	vs = append(vs, body...)
	vs = append(vs, bytes.Repeat([]byte{0xff}, 64)...)
	return append(fv, vs...)
}

func TestVariables(t *testing.T) {
	g := MustGUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
	store := varStore(Variable{GUID: g, Name: "PK", Attributes: 0x27, Data: []byte("pk-cert")}, Variable{GUID: g, Name: "KEK", Data: []byte("k")})
	vars, err := Variables(store)
	if err != nil || len(vars) != 2 || vars[0].Name != "PK" || string(vars[0].Data) != "pk-cert" || vars[1].Name != "KEK" {
		t.Fatalf("vars %+v, %v", vars, err)
	}
	for _, p := range []string{"fixtures/firmware/OVMF.fd", "fixtures/firmware/trixie/OVMF_VARS_4M.fd"} {
		img, err := os.ReadFile(testenv.SharedFile(t, p))
		if err != nil {
			t.Fatal(err)
		}
		if vars, err := Variables(img); err != nil || len(vars) != 0 {
			t.Errorf("%s: %d variables, %v (Debian's store is empty)", p, len(vars), err)
		}
	}
	bad := bytes.Clone(store)
	binary.LittleEndian.PutUint32(bad[0x48+28+40:], 1<<30) // first variable's data size
	if _, err := Variables(bad); err == nil || !strings.Contains(err.Error(), "runs past") {
		t.Errorf("oversized variable: %v", err)
	}
	if _, err := Variables(make([]byte, 100)); err == nil {
		t.Error("accepted a non-store")
	}
}

func FuzzParseTDVF(f *testing.F) {
	for _, p := range []string{"fixtures/firmware/OVMF.fd", "fixtures/firmware/trixie/OVMF.fd"} {
		if img, err := os.ReadFile(filepath.Join(testenv.SharedDir(f), p)); err == nil {
			f.Add(img[len(img)-8192:])
		}
	}
	f.Add(tdvfImage(TDVFSection{0, 0x1000, 0xfffff000, 0x1000, TDVFBFV, AttrMRExtend}))
	f.Fuzz(func(t *testing.T, img []byte) {
		td, err := ParseTDVF(img)
		if err != nil {
			return
		}
		// Runtime bounded by the constants, not by what the file declares:
		// at most 2^20 pages to add, and MR.EXTEND sections of at most
		// MaxSize each.
		var pages, extend uint64
		for _, s := range td.Sections {
			if int64(s.DataOffset)+int64(s.RawDataSize) > int64(len(img)) {
				t.Fatalf("accepted a section outside the image: %+v", s)
			}
			pages += s.MemoryDataSize / PageSize
			if s.Attributes&AttrMRExtend != 0 {
				extend += s.MemoryDataSize
			}
		}
		if pages > 1<<20 || extend > maxTDVFSections*MaxSize {
			t.Fatalf("accepted %d pages, %d bytes to extend", pages, extend)
		}
	})
}

func FuzzVariables(f *testing.F) {
	g := MustGUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
	f.Add(varStore(Variable{GUID: g, Name: "PK", Data: []byte("x")}))
	f.Add(varStore())
	f.Fuzz(func(t *testing.T, b []byte) {
		vars, err := Variables(b)
		if err == nil && len(vars) > maxVariables {
			t.Fatal("too many variables")
		}
	})
}
