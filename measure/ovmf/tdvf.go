package ovmf

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// TDVF section types (Intel TDX Virtual Firmware Design Guide, rev 1.01,
// table 11-2 "TDVF_SECTION.Type"; td-shim metadata spec for 4..8).
type TDVFSectionType uint32

const (
	TDVFBFV          TDVFSectionType = 0
	TDVFCFV          TDVFSectionType = 1
	TDVFTDHOB        TDVFSectionType = 2
	TDVFTempMem      TDVFSectionType = 3
	TDVFPermMem      TDVFSectionType = 4
	TDVFPayload      TDVFSectionType = 5
	TDVFPayloadParam TDVFSectionType = 6
	TDVFTDInfo       TDVFSectionType = 7
	TDVFTDParams     TDVFSectionType = 8
)

var tdvfTypeNames = []string{"BFV", "CFV", "TD_HOB", "TEMP_MEM", "PERM_MEM", "PAYLOAD", "PAYLOAD_PARAM", "TD_INFO", "TD_PARAMS"}

func (t TDVFSectionType) String() string {
	if int(t) < len(tdvfTypeNames) {
		return tdvfTypeNames[t]
	}
	return fmt.Sprintf("unknown(%d)", uint32(t))
}

// TDVF section attributes (design guide table 11-3).
const (
	AttrMRExtend uint32 = 1 << 0 // content is measured with TDH.MR.EXTEND
	AttrPageAug  uint32 = 1 << 1 // added after launch with TDH.MEM.PAGE.AUG, not measured
)

// TDVFSection is one TDVF_SECTION descriptor.
type TDVFSection struct {
	DataOffset     uint32          `json:"data_offset"`
	RawDataSize    uint32          `json:"raw_data_size"`
	MemoryAddress  uint64          `json:"memory_address"`
	MemoryDataSize uint64          `json:"memory_data_size"`
	Type           TDVFSectionType `json:"type"`
	Attributes     uint32          `json:"attributes"`
}

// TDVF is the TDX metadata of a firmware image.
type TDVF struct {
	// Offset is where the "TDVF" descriptor starts in the file.
	Offset   int
	Sections []TDVFSection
	// Legacy is true when the descriptor was found through td-shim's
	// pointer at 0x20 bytes from the end instead of the footer table.
	Legacy bool
}

// Section returns the first section of type t.
func (t *TDVF) Section(typ TDVFSectionType) (TDVFSection, bool) {
	for _, s := range t.Sections {
		if s.Type == typ {
			return s, true
		}
	}
	return TDVFSection{}, false
}

// TdxMetadataGuid precedes the descriptor (OvmfPkg/ResetVector/X64/IntelTdxMetadata.asm).
var tdxMetadataGUID = MustGUID("e9eaf9f3-168e-44d5-a8eb-7f4d8738f6ae")

// ErrNoTDVF is wrapped by errors for an image without TDX metadata.
var ErrNoTDVF = errors.New("no TDX metadata (TDVF descriptor)")

// maxTDVFSections bounds the descriptor's section count; OVMF has 6-8.
const maxTDVFSections = 64

// maxTDVFEnd is where every TDVF section must end: at or below 4 GiB. TDVF
// (the BFV and CFV are the firmware image QEMU maps just below 4 GiB; its
// TD_HOB and TEMP_MEM are early low memory) and td-shim place them there,
// and it bounds the pages an MRTD computation adds to 2^20.
const maxTDVFEnd = 1 << 32

// ParseTDVF finds and checks the TDX metadata of a firmware image: through
// the OVMF footer table entry e47a6535-… (an offset from the end of the
// image), or else td-shim's legacy locator, a u32 at 0x20 bytes from the
// end holding the file offset of TdxMetadataGuid. Every section must lie
// inside the image (a split OVMF_CODE.fd carries metadata that describes the
// whole OVMF.fd, and is rejected here), be page aligned, and not overlap
// another in guest memory.
func ParseTDVF(image []byte) (*TDVF, error) {
	if len(image) > MaxSize {
		return nil, fmt.Errorf("image is %d bytes, more than the %d MiB a firmware image can be", len(image), MaxSize>>20)
	}
	var off int
	legacy := false
	fw, err := Parse(image)
	switch {
	case err == nil && fw.TDXMetadataOffset != 0:
		if int64(fw.TDXMetadataOffset) > int64(len(image)) || fw.TDXMetadataOffset < 16 {
			return nil, fmt.Errorf("TDX metadata offset %#x points outside the %d-byte image", fw.TDXMetadataOffset, len(image))
		}
		off = len(image) - int(fw.TDXMetadataOffset)
	case err == nil || errors.Is(err, ErrNotOVMF):
		// td-shim: u32 at end-0x20 is the file offset of the metadata GUID.
		if len(image) < 0x20 {
			return nil, ErrNoTDVF
		}
		g := binary.LittleEndian.Uint32(image[len(image)-0x20:])
		if int64(g)+16+16 > int64(len(image)) || GUID(image[g:g+16]) != tdxMetadataGUID {
			return nil, ErrNoTDVF
		}
		off, legacy = int(g)+16, true
	default:
		return nil, err
	}
	if off+16 > len(image) {
		return nil, fmt.Errorf("TDVF descriptor at %#x runs past the end of the image", off)
	}
	d := image[off:]
	if string(d[:4]) != "TDVF" {
		return nil, fmt.Errorf("TDX metadata at %#x has signature %q, want \"TDVF\"", off, d[:4])
	}
	if v := binary.LittleEndian.Uint32(d[8:]); v != 1 {
		return nil, fmt.Errorf("TDVF descriptor version %d, want 1", v)
	}
	n := binary.LittleEndian.Uint32(d[12:])
	length := binary.LittleEndian.Uint32(d[4:])
	if n == 0 || n > maxTDVFSections || int64(16+32*int64(n)) > int64(len(d)) || length != 16+32*n {
		return nil, fmt.Errorf("TDVF descriptor claims %d sections in %d bytes, which does not fit", n, length)
	}
	t := &TDVF{Offset: off, Legacy: legacy}
	for i := 0; i < int(n); i++ {
		e := d[16+32*i:]
		s := TDVFSection{
			DataOffset:     binary.LittleEndian.Uint32(e[0:]),
			RawDataSize:    binary.LittleEndian.Uint32(e[4:]),
			MemoryAddress:  binary.LittleEndian.Uint64(e[8:]),
			MemoryDataSize: binary.LittleEndian.Uint64(e[16:]),
			Type:           TDVFSectionType(binary.LittleEndian.Uint32(e[24:])),
			Attributes:     binary.LittleEndian.Uint32(e[28:]),
		}
		if err := checkTDVFSection(s, len(image)); err != nil {
			return nil, fmt.Errorf("TDVF section %d (%s): %w", i, s.Type, err)
		}
		t.Sections = append(t.Sections, s)
	}
	// MR.EXTEND hashes every byte of its sections: bound their sum as one
	// image is bounded (in OVMF only the BFV and CFV, parts of the image,
	// are extended), so that 64 sections of 64 MiB each cannot make one
	// measurement hash 6 GiB.
	var extended uint64
	for _, s := range t.Sections {
		if s.Attributes&AttrMRExtend != 0 {
			extended += s.MemoryDataSize
		}
	}
	if extended > MaxSize {
		return nil, fmt.Errorf("the MR.EXTEND sections add up to %#x bytes, more than a firmware image can be (%d MiB)", extended, MaxSize>>20)
	}
	for i, a := range t.Sections {
		for _, b := range t.Sections[i+1:] {
			if a.MemoryAddress < b.MemoryAddress+b.MemoryDataSize && b.MemoryAddress < a.MemoryAddress+a.MemoryDataSize {
				return nil, fmt.Errorf("TDVF sections %s and %s overlap in guest memory at %#x", a.Type, b.Type, max(a.MemoryAddress, b.MemoryAddress))
			}
		}
	}
	return t, nil
}

func checkTDVFSection(s TDVFSection, size int) error {
	if s.Type > TDVFTDParams {
		return fmt.Errorf("unknown section type %d", uint32(s.Type))
	}
	if s.Attributes&^(AttrMRExtend|AttrPageAug) != 0 {
		return fmt.Errorf("unknown attributes %#x", s.Attributes)
	}
	if s.MemoryAddress%PageSize != 0 || s.MemoryDataSize%PageSize != 0 {
		return fmt.Errorf("memory address %#x and size %#x must be 4 KiB aligned", s.MemoryAddress, s.MemoryDataSize)
	}
	if s.MemoryDataSize == 0 || s.MemoryAddress+s.MemoryDataSize < s.MemoryAddress || s.MemoryAddress+s.MemoryDataSize > maxTDVFEnd {
		return fmt.Errorf("memory range %#x+%#x is empty or does not end at or below 4 GiB, where TDVF and td-shim place their sections", s.MemoryAddress, s.MemoryDataSize)
	}
	if uint64(s.RawDataSize) > s.MemoryDataSize {
		return fmt.Errorf("raw data size %#x is larger than memory size %#x", s.RawDataSize, s.MemoryDataSize)
	}
	if int64(s.DataOffset)+int64(s.RawDataSize) > int64(size) {
		return fmt.Errorf("DataOffset %#x + RawDataSize %#x = %#x exceeds the firmware size %#x: the metadata describes another image (a split OVMF_CODE.fd? use the whole OVMF.fd)",
			s.DataOffset, s.RawDataSize, int64(s.DataOffset)+int64(s.RawDataSize), size)
	}
	switch s.Type {
	case TDVFBFV, TDVFCFV:
		// QEMU (hw/i386/tdvf.c) refuses a BFV or CFV without raw data; it
		// maps the firmware image just below 4 GiB, and these sections are
		// parts of that image.
		if s.RawDataSize == 0 {
			return errors.New("a BFV or CFV section needs raw data (QEMU refuses RawDataSize 0)")
		}
		if lo := uint64(maxTDVFEnd) - uint64(size); s.MemoryAddress < lo {
			return fmt.Errorf("memory range %#x+%#x is outside the firmware's mapping [%#x, 4 GiB) for a %d-byte image", s.MemoryAddress, s.MemoryDataSize, lo, size)
		}
	case TDVFTDHOB, TDVFTempMem:
		// QEMU: these are zeroed private memory, never copied from the image.
		if s.RawDataSize != 0 {
			return fmt.Errorf("a %s section cannot have raw data (QEMU refuses RawDataSize %#x)", s.Type, s.RawDataSize)
		}
	}
	// MR.EXTEND hashes every byte of the section (zeros past the raw data):
	// bound it as the image is bounded, so that a hostile size cannot make
	// the measurement run for hours.
	if s.Attributes&AttrMRExtend != 0 && s.MemoryDataSize > MaxSize {
		return fmt.Errorf("an MR.EXTEND section of %#x bytes is larger than a firmware image can be (%d MiB)", s.MemoryDataSize, MaxSize>>20)
	}
	if s.Attributes&AttrMRExtend != 0 && (s.Attributes&AttrPageAug != 0) {
		return errors.New("a section cannot be both MR.EXTEND and PAGE.AUG")
	}
	return nil
}

// MarshalText writes the type's name (BFV, CFV, TD_HOB …) in JSON.
func (t TDVFSectionType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (t *TDVFSectionType) UnmarshalText(b []byte) error {
	for i, n := range tdvfTypeNames {
		if n == string(b) {
			*t = TDVFSectionType(i)
			return nil
		}
	}
	return fmt.Errorf("unknown TDVF section type %q", b)
}
