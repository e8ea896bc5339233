// Package ovmf parses the parts of an OVMF (edk2) firmware image that
// launch measurements depend on: the GUIDed footer table at the end of the
// image, the SEV metadata sections (SNP_SEC_MEM, SECRETS, CPUID, SVSM_CAA,
// SNP_KERNEL_HASHES), the SEV-ES AP reset vector, the SEV hashes-table
// location and the TDX metadata pointer.
//
// The image is untrusted input: every size and offset is checked against
// the file before use, so a hostile image gives an error, never a panic or a
// large allocation.
//
// References: edk2 OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm (footer
// table), OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm and
// OvmfPkg/Include/IndustryStandard/… (SEV metadata); QEMU
// hw/i386/pc_sysfw_ovmf.c (table walk) and target/i386/sev.c (hashes table).
package ovmf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// PageSize is the granule of every measured region.
const PageSize = 4096

// MaxSize bounds an image: larger inputs are rejected before anything is
// hashed. Real OVMF builds are 1–4 MiB; QEMU maps at most 8 MiB below 4 GiB
// as flash, and IGVM or SVSM images stay well under this.
const MaxSize = 64 << 20

// SectionType is the type of a SEV metadata section
// (OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm).
type SectionType uint32

const (
	SNPSecMem       SectionType = 1    // OVMF_SECTION_TYPE_SNP_SEC_MEM
	SNPSecrets      SectionType = 2    // OVMF_SECTION_TYPE_SNP_SECRETS
	CPUID           SectionType = 3    // OVMF_SECTION_TYPE_CPUID
	SVSMCAA         SectionType = 4    // OVMF_SECTION_TYPE_SNP_SVSM_CAA
	SNPKernelHashes SectionType = 0x10 // OVMF_SECTION_TYPE_KERNEL_HASHES
)

func (t SectionType) String() string {
	switch t {
	case SNPSecMem:
		return "SNP_SEC_MEM"
	case SNPSecrets:
		return "SNP_SECRETS"
	case CPUID:
		return "CPUID"
	case SVSMCAA:
		return "SVSM_CAA"
	case SNPKernelHashes:
		return "SNP_KERNEL_HASHES"
	}
	return fmt.Sprintf("unknown(%#x)", uint32(t))
}

// Section is one SEV metadata section descriptor.
type Section struct {
	GPA  uint32      `json:"gpa"`
	Size uint32      `json:"size"`
	Type SectionType `json:"type"`
}

// Region is a guest-physical range named by a footer table entry.
type Region struct {
	Base uint32 `json:"base"`
	Size uint32 `json:"size"`
}

// Entry is one entry of the footer GUID table.
type Entry struct {
	GUID GUID
	Data []byte
}

// Firmware is what the measurements need from an OVMF image.
type Firmware struct {
	// Size is the image size in bytes.
	Size int
	// Entries is the footer table in file order (last entry first, as the
	// table is walked from its end).
	Entries []Entry

	// ResetEIP is the SEV-ES AP reset vector (SEV_ES_RESET_BLOCK), 0 if absent.
	ResetEIP uint32
	// HasSEVMetadata is true when the image has OVMF_SEV_METADATA.
	HasSEVMetadata bool
	// Sections are the SEV metadata sections in file order.
	Sections []Section
	// HashTable is where QEMU writes the kernel/initrd/cmdline hashes
	// (SEV_HASH_TABLE_RV); nil when absent or when its base is 0 (builds
	// without the table, such as OvmfPkgX64).
	HashTable *Region
	// SecretBlock is the SEV launch secret area (SEV_SECRET_BLOCK), nil if absent.
	SecretBlock *Region
	// TDXMetadataOffset is the TDX metadata pointer (offset from the end of
	// the image), 0 if absent.
	TDXMetadataOffset uint32
}

// Entry returns the data of the footer table entry with guid.
func (f *Firmware) Entry(guid GUID) ([]byte, bool) {
	for _, e := range f.Entries {
		if e.GUID == guid {
			return e.Data, true
		}
	}
	return nil, false
}

// Section returns the first metadata section of type t.
func (f *Firmware) Section(t SectionType) (Section, bool) {
	for _, s := range f.Sections {
		if s.Type == t {
			return s, true
		}
	}
	return Section{}, false
}

// ErrNotOVMF is returned (wrapped) for an image with no footer table.
var ErrNotOVMF = errors.New("no OVMF footer table (GUID 96b582de-1fb2-45f7-baea-a366c55a082d at 32+18 bytes from the end)")

// Parse parses an OVMF image. The image is the whole file QEMU maps below
// 4 GiB (for -bios, OVMF.fd; for split flash, the code and vars together).
func Parse(image []byte) (*Firmware, error) {
	entries, err := FooterTable(image)
	if err != nil {
		return nil, err
	}
	f := &Firmware{Size: len(image), Entries: entries}
	if d, ok := f.Entry(SEVESResetGUID); ok {
		if len(d) < 4 {
			return nil, fmt.Errorf("SEV_ES_RESET_BLOCK entry has %d bytes, want at least 4", len(d))
		}
		f.ResetEIP = binary.LittleEndian.Uint32(d)
	}
	if d, ok := f.Entry(SEVHashTableGUID); ok {
		r, err := region(d, "SEV_HASH_TABLE_RV")
		if err != nil {
			return nil, err
		}
		if r.Base != 0 {
			f.HashTable = &r
		}
	}
	if d, ok := f.Entry(SEVSecretGUID); ok {
		r, err := region(d, "SEV_SECRET_BLOCK")
		if err != nil {
			return nil, err
		}
		f.SecretBlock = &r
	}
	if d, ok := f.Entry(TDXMetadataGUID); ok {
		if len(d) < 4 {
			return nil, fmt.Errorf("TDX metadata offset entry has %d bytes, want 4", len(d))
		}
		f.TDXMetadataOffset = binary.LittleEndian.Uint32(d)
	}
	if d, ok := f.Entry(SEVMetadataGUID); ok {
		if len(d) < 4 {
			return nil, fmt.Errorf("OVMF_SEV_METADATA entry has %d bytes, want 4", len(d))
		}
		secs, err := sevMetadata(image, binary.LittleEndian.Uint32(d))
		if err != nil {
			return nil, err
		}
		f.HasSEVMetadata = true
		f.Sections = secs
	}
	return f, nil
}

func region(d []byte, name string) (Region, error) {
	if len(d) < 8 {
		return Region{}, fmt.Errorf("%s entry has %d bytes, want 8 (base, size)", name, len(d))
	}
	return Region{Base: binary.LittleEndian.Uint32(d), Size: binary.LittleEndian.Uint32(d[4:])}, nil
}

// FooterTable returns the entries of the GUIDed table that ends 32 bytes
// before the end of the image, walking it from its end as QEMU does
// (pc_system_parse_ovmf_flash). An image without the footer GUID gives
// ErrNotOVMF.
//
// Layout: each entry is {data…, u16 size, guid[16]} where size counts the
// data, the size field and the GUID; the footer entry's size covers the
// whole table.
func FooterTable(image []byte) ([]Entry, error) {
	const tail, hdr = 32, 18
	if len(image) < tail+hdr {
		return nil, fmt.Errorf("image is %d bytes: too small for OVMF: %w", len(image), ErrNotOVMF)
	}
	if len(image) > MaxSize {
		return nil, fmt.Errorf("image is %d bytes, more than the %d MiB an OVMF image can be", len(image), MaxSize>>20)
	}
	off := len(image) - tail - hdr
	if GUID(image[off+2:off+18]) != FooterGUID {
		return nil, ErrNotOVMF
	}
	size := int(binary.LittleEndian.Uint16(image[off:]))
	if size < hdr {
		return nil, fmt.Errorf("OVMF footer entry size %d is less than %d", size, hdr)
	}
	tlen := size - hdr
	if tlen > off {
		return nil, fmt.Errorf("OVMF footer table of %d bytes runs past the start of the image", tlen)
	}
	tbl := image[off-tlen : off]
	var entries []Entry
	seen := map[GUID]bool{}
	for len(tbl) > 0 {
		if len(tbl) < hdr {
			return nil, fmt.Errorf("OVMF footer table has %d stray bytes at its start", len(tbl))
		}
		g := GUID(tbl[len(tbl)-16:])
		es := int(binary.LittleEndian.Uint16(tbl[len(tbl)-hdr:]))
		if es < hdr || es > len(tbl) {
			return nil, fmt.Errorf("OVMF footer table entry %s has size %d, outside 18..%d", g, es, len(tbl))
		}
		if seen[g] {
			return nil, fmt.Errorf("OVMF footer table has entry %s twice", g)
		}
		seen[g] = true
		entries = append(entries, Entry{GUID: g, Data: tbl[len(tbl)-es : len(tbl)-hdr]})
		tbl = tbl[:len(tbl)-es]
	}
	return entries, nil
}

// maxSections bounds the metadata section count; edk2 builds have 5–8.
const maxSections = 256

// sevMetadata parses the SEV metadata that starts offFromEnd bytes before
// the end of the image: {"ASEV", u32 size, u32 version, u32 count} followed
// by count × {u32 gpa, u32 size, u32 type}.
func sevMetadata(image []byte, offFromEnd uint32) ([]Section, error) {
	if offFromEnd < 16 || int64(offFromEnd) > int64(len(image)) {
		return nil, fmt.Errorf("SEV metadata offset %#x points outside the %d-byte image", offFromEnd, len(image))
	}
	m := image[len(image)-int(offFromEnd):]
	if string(m[:4]) != "ASEV" {
		return nil, fmt.Errorf("SEV metadata at %#x has signature %q, want \"ASEV\"", len(image)-int(offFromEnd), m[:4])
	}
	if v := binary.LittleEndian.Uint32(m[8:]); v != 1 {
		return nil, fmt.Errorf("SEV metadata version %d, want 1", v)
	}
	n := binary.LittleEndian.Uint32(m[12:])
	if n > maxSections || 16+12*int(n) > len(m) {
		return nil, fmt.Errorf("SEV metadata claims %d sections, more than fit in the image", n)
	}
	secs := make([]Section, n)
	for i := range secs {
		d := m[16+12*i:]
		secs[i] = Section{
			GPA:  binary.LittleEndian.Uint32(d),
			Size: binary.LittleEndian.Uint32(d[4:]),
			Type: SectionType(binary.LittleEndian.Uint32(d[8:])),
		}
	}
	if err := checkSections(secs); err != nil {
		return nil, err
	}
	return secs, nil
}

// checkSections rejects section lists no firmware build produces and that
// would make a measurement meaningless: unknown types, unaligned or empty
// ranges, ranges that wrap past 4 GiB, and overlapping ranges.
func checkSections(secs []Section) error {
	type span struct{ lo, hi uint64 }
	var spans []span
	for _, s := range secs {
		switch s.Type {
		case SNPSecMem, SNPSecrets, CPUID, SVSMCAA, SNPKernelHashes:
		default:
			return fmt.Errorf("SEV metadata section at %#x has unknown type %#x", s.GPA, uint32(s.Type))
		}
		if s.GPA%PageSize != 0 || s.Size == 0 || s.Size%PageSize != 0 {
			return fmt.Errorf("SEV metadata section %s at %#x size %#x is not a non-empty run of 4 KiB pages", s.Type, s.GPA, s.Size)
		}
		lo, hi := uint64(s.GPA), uint64(s.GPA)+uint64(s.Size)
		if hi > 1<<32 {
			return fmt.Errorf("SEV metadata section %s at %#x size %#x runs past 4 GiB", s.Type, s.GPA, s.Size)
		}
		spans = append(spans, span{lo, hi})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	for i := 1; i < len(spans); i++ {
		if spans[i].lo < spans[i-1].hi {
			return fmt.Errorf("SEV metadata sections overlap at %#x", spans[i].lo)
		}
	}
	return nil
}
