package ovmf

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

// fixtures are the firmware images in ../shared with what each must give.
var fixtures = []struct {
	path       string
	sections   int
	kernelHash bool
	resetEIP   uint32
	tdx        bool
	err        string
}{
	{path: "fixtures/firmware/OVMF.fd", sections: 5, resetEIP: 0x80b004, tdx: true},
	{path: "fixtures/firmware/OVMF_CODE.fd", sections: 5, resetEIP: 0x80b004, tdx: true},
	{path: "fixtures/firmware/trixie/OVMF.fd", sections: 6, resetEIP: 0x80b004, tdx: true},
	{path: "fixtures/firmware/trixie/OVMF_CODE_4M.fd", sections: 6, resetEIP: 0x80b004, tdx: true},
	{path: "fixtures/firmware/amdsev/OVMF.amdsev.fd", sections: 7, kernelHash: true, resetEIP: 0x80b004, tdx: true},
	{path: "fixtures/snp/ovmf_AmdSev_suffix.bin", sections: 7, kernelHash: true, resetEIP: 0x80b004, tdx: true},
	{path: "fixtures/snp/ovmf_OvmfX64_suffix.bin", sections: 6, resetEIP: 0x80b004, tdx: true},
	{path: "fixtures/snp/svsm_ovmf.fd", sections: 6, resetEIP: 0x80b004, tdx: true},
	{path: "fixtures/snp/svsm.bin", sections: 3, resetEIP: 0xfffffff0},
	{path: "fixtures/firmware/trixie/OVMF_VARS_4M.fd", err: "no OVMF footer table"},
}

func TestFixtures(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.path, func(t *testing.T) {
			img, err := os.ReadFile(testenv.SharedFile(t, f.path))
			if err != nil {
				t.Fatal(err)
			}
			fw, err := Parse(img)
			if f.err != "" {
				if err == nil || !strings.Contains(err.Error(), f.err) {
					t.Fatalf("err = %v, want %q", err, f.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, kh := fw.Section(SNPKernelHashes)
			if len(fw.Sections) != f.sections || kh != f.kernelHash || fw.ResetEIP != f.resetEIP || (fw.TDXMetadataOffset != 0) != f.tdx {
				t.Errorf("got %d sections, kernel hashes %v, reset EIP %#x, TDX %#x", len(fw.Sections), kh, fw.ResetEIP, fw.TDXMetadataOffset)
			}
			if kh && (fw.HashTable == nil || fw.HashTable.Base != 0x810c00) {
				t.Errorf("hash table %+v, want base 0x810c00", fw.HashTable)
			}
			if !kh && fw.HashTable != nil {
				t.Errorf("hash table %+v without a kernel hashes section", fw.HashTable)
			}
		})
	}
}

// image builds a synthetic OVMF tail: entries (in table order, first
// entry furthest from the footer), then the footer entry, then 32 bytes.
func image(size int, entries ...Entry) []byte {
	var tbl []byte
	for _, e := range entries {
		tbl = append(tbl, e.Data...)
		tbl = binary.LittleEndian.AppendUint16(tbl, uint16(len(e.Data)+18))
		tbl = append(tbl, e.GUID[:]...)
	}
	tbl = binary.LittleEndian.AppendUint16(tbl, uint16(len(tbl)+18))
	tbl = append(tbl, FooterGUID[:]...)
	img := make([]byte, size)
	copy(img[size-32-len(tbl):], tbl)
	return img
}

func u32s(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// withMetadata returns an image whose SEV metadata (at 0x100 from the
// start) holds the given sections.
func withMetadata(secs ...Section) []byte {
	const size = 0x2000
	img := image(size, Entry{SEVMetadataGUID, u32s(size - 0x100)}, Entry{SEVESResetGUID, u32s(0x80b004)})
	m := append([]byte("ASEV"), u32s(uint32(16+12*len(secs)), 1, uint32(len(secs)))...)
	for _, s := range secs {
		m = append(m, u32s(s.GPA, s.Size, uint32(s.Type))...)
	}
	copy(img[0x100:], m)
	return img
}

func TestHostileImages(t *testing.T) {
	ok := []Section{{0x800000, 0x1000, SNPSecMem}, {0x801000, 0x1000, SNPSecrets}, {0x802000, 0x1000, CPUID}}
	if fw, err := Parse(withMetadata(ok...)); err != nil || len(fw.Sections) != 3 || fw.ResetEIP != 0x80b004 {
		t.Fatalf("a well-formed synthetic image: %v %+v", err, fw)
	}
	tooMany := withMetadata(ok...)
	binary.LittleEndian.PutUint32(tooMany[0x100+12:], 0xffffffff)
	entrySize := func(img []byte, sz uint16) []byte {
		// the last entry's size field sits just before the footer entry
		off := len(img) - 32 - 18 - 18
		binary.LittleEndian.PutUint16(img[off:], sz)
		return img
	}
	tests := []struct {
		name string
		img  []byte
		want string
	}{
		{"empty", nil, "too small"},
		{"tiny", make([]byte, 10), "too small"},
		{"no footer", make([]byte, 4096), "no OVMF footer table"},
		{"huge", make([]byte, MaxSize+4096), "more than the 64 MiB"},
		{"footer size below header", func() []byte {
			img := image(4096)
			binary.LittleEndian.PutUint16(img[4096-32-18:], 3)
			return img
		}(), "less than 18"},
		{"table past start", func() []byte {
			img := image(64)
			binary.LittleEndian.PutUint16(img[64-32-18:], 0xffff)
			return img
		}(), "runs past the start"},
		{"entry size too small", entrySize(image(4096, Entry{SEVESResetGUID, u32s(1)}), 2), "outside 18.."},
		{"entry size too big", entrySize(image(4096, Entry{SEVESResetGUID, u32s(1)}), 0x7000), "outside 18.."},
		{"duplicate entry", image(4096, Entry{SEVESResetGUID, u32s(1)}, Entry{SEVESResetGUID, u32s(2)}), "twice"},
		{"short reset block", image(4096, Entry{SEVESResetGUID, []byte{1}}), "want at least 4"},
		{"short hash table", image(4096, Entry{SEVHashTableGUID, u32s(1)}), "want 8"},
		{"metadata offset outside", image(4096, Entry{SEVMetadataGUID, u32s(0xffffff)}), "points outside"},
		{"metadata offset zero", image(4096, Entry{SEVMetadataGUID, u32s(0)}), "points outside"},
		{"bad signature", image(4096, Entry{SEVMetadataGUID, u32s(0x800)}), `signature "\x00\x00\x00\x00"`},
		{"section count too large", tooMany, "more than fit"},
		{"unknown section type", withMetadata(Section{0x800000, 0x1000, 9}), "unknown type 0x9"},
		{"unaligned section", withMetadata(Section{0x800010, 0x1000, SNPSecMem}), "not a non-empty run"},
		{"empty section", withMetadata(Section{0x800000, 0, SNPSecMem}), "not a non-empty run"},
		{"section past 4 GiB", withMetadata(Section{0xfffff000, 0x2000, SNPSecMem}), "runs past 4 GiB"},
		{"overlapping sections", withMetadata(Section{0x800000, 0x3000, SNPSecMem}, Section{0x802000, 0x1000, CPUID}), "overlap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.img)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestGUID(t *testing.T) {
	s := "96b582de-1fb2-45f7-baea-a366c55a082d"
	if got := MustGUID(s).String(); got != s {
		t.Errorf("round trip: %s", got)
	}
	// EFI byte order: the first three fields little-endian.
	if g := MustGUID(s); g[0] != 0xde || g[3] != 0x96 || g[4] != 0xb2 || g[6] != 0xf7 || g[8] != 0xba {
		t.Errorf("byte order: %x", g)
	}
	for _, bad := range []string{"", "96b582de-1fb2-45f7-baea", "96b582dx-1fb2-45f7-baea-a366c55a082d"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) accepted", bad)
		}
	}
}

// FuzzParse: no image may panic the parser or make it allocate more than
// the image; an accepted image has consistent sections.
func FuzzParse(f *testing.F) {
	seeds := 0
	shared := testenv.SharedDir(f)
	for _, fx := range fixtures {
		img, err := os.ReadFile(filepath.Join(shared, fx.path))
		if err != nil {
			continue
		}
		// Only the tail matters to the parser; keep seeds small.
		if len(img) > 16384 {
			img = img[len(img)-16384:]
		}
		f.Add(img)
		seeds++
	}
	f.Add(withMetadata(Section{0x800000, 0x1000, SNPSecMem}, Section{0x801000, 0x1000, CPUID}))
	if seeds == 0 {
		testenv.Shared(f) // fails in CI, skips elsewhere, saying why
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		fw, err := Parse(img)
		if err != nil {
			return
		}
		if fw.Size != len(img) || len(fw.Sections) > maxSections {
			t.Fatalf("inconsistent: size %d, %d sections", fw.Size, len(fw.Sections))
		}
		for _, s := range fw.Sections {
			if s.Size == 0 || s.GPA%PageSize != 0 {
				t.Fatalf("accepted a bad section %+v", s)
			}
		}
	})
}

// FuzzFooterTable exercises the table walk alone on arbitrary tails.
func FuzzFooterTable(f *testing.F) {
	f.Add(image(4096, Entry{SEVESResetGUID, u32s(0x80b004)}, Entry{SEVHashTableGUID, u32s(0x810c00, 0x400)}))
	f.Add(image(64))
	f.Fuzz(func(t *testing.T, img []byte) {
		entries, err := FooterTable(img)
		if err != nil {
			return
		}
		total := 0
		for _, e := range entries {
			total += len(e.Data) + 18
		}
		if total > len(img) {
			t.Fatalf("entries cover %d bytes of a %d-byte image", total, len(img))
		}
	})
}
