package tdx

import (
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strings"

	"github.com/cvmkit/cvmkit/measure/qemu"
)

// PE is the part of a PE/COFF image the Authenticode hash and UKI handling
// need (Microsoft PE format specification; UEFI 2.10 §32.2.5).
type PE struct {
	checksumOff   int
	secDirOff     int // offset of the security data directory entry; -1 if none
	certSize      int
	sizeOfHeaders int
	Sections      []PESection
}

// PESection is one section header.
type PESection struct {
	Name             string
	VirtualSize      uint32
	PointerToRawData uint32
	SizeOfRawData    uint32
}

// ParsePE reads the headers of a PE/COFF image, checking every offset
// against the file.
func ParsePE(img []byte) (*PE, error) { return parsePE(img, len(img)) }

// parsePE reads the headers from hdr, the first bytes of an image of size
// bytes: offsets into the headers are checked against hdr, offsets of
// sections and the certificate table against size.
func parsePE(img []byte, size int) (*PE, error) {
	if len(img) < 0x40 || string(img[:2]) != "MZ" {
		return nil, errors.New("not a PE/COFF image (no MZ header)")
	}
	peOff := int(binary.LittleEndian.Uint32(img[0x3c:]))
	if peOff < 0x40 || peOff > len(img)-24 || string(img[peOff:peOff+4]) != "PE\x00\x00" {
		return nil, fmt.Errorf("not a PE/COFF image (no PE signature at %#x)", peOff)
	}
	coff := peOff + 4
	nsec := int(binary.LittleEndian.Uint16(img[coff+2:]))
	optSize := int(binary.LittleEndian.Uint16(img[coff+16:]))
	opt := coff + 20
	if opt+optSize > len(img) || optSize < 2 {
		return nil, errors.New("PE optional header runs past the end of the file")
	}
	var dirsOff, numDirsOff int
	switch magic := binary.LittleEndian.Uint16(img[opt:]); magic {
	case 0x10b: // PE32
		numDirsOff, dirsOff = opt+92, opt+96
	case 0x20b: // PE32+
		numDirsOff, dirsOff = opt+108, opt+112
	default:
		return nil, fmt.Errorf("unknown PE optional header magic %#x", magic)
	}
	if numDirsOff+4 > opt+optSize {
		return nil, errors.New("PE optional header too short")
	}
	p := &PE{checksumOff: opt + 64, secDirOff: -1}
	p.sizeOfHeaders = int(binary.LittleEndian.Uint32(img[opt+60:]))
	numDirs := int(binary.LittleEndian.Uint32(img[numDirsOff:]))
	if numDirs > 16 || dirsOff+8*numDirs > opt+optSize {
		return nil, fmt.Errorf("PE has %d data directories, which do not fit its optional header", numDirs)
	}
	if numDirs > 4 { // IMAGE_DIRECTORY_ENTRY_SECURITY
		p.secDirOff = dirsOff + 4*8
		certOff := int(binary.LittleEndian.Uint32(img[p.secDirOff:]))
		p.certSize = int(binary.LittleEndian.Uint32(img[p.secDirOff+4:]))
		if p.certSize > 0 && (certOff < 0 || certOff+p.certSize > size || certOff+p.certSize < certOff) {
			return nil, errors.New("PE certificate table lies outside the file")
		}
	}
	if p.sizeOfHeaders < p.checksumOff+4 || p.sizeOfHeaders > size || (p.secDirOff >= 0 && p.sizeOfHeaders < p.secDirOff+8) {
		return nil, fmt.Errorf("PE SizeOfHeaders %#x is inconsistent with the headers or the file", p.sizeOfHeaders)
	}
	secs := opt + optSize
	if nsec > 96 || secs+40*nsec > len(img) {
		return nil, fmt.Errorf("PE section table (%d sections) runs past the end of the file", nsec)
	}
	for i := 0; i < nsec; i++ {
		h := img[secs+40*i:]
		s := PESection{
			Name:             strings.TrimRight(string(h[:8]), "\x00"),
			VirtualSize:      binary.LittleEndian.Uint32(h[8:]),
			SizeOfRawData:    binary.LittleEndian.Uint32(h[16:]),
			PointerToRawData: binary.LittleEndian.Uint32(h[20:]),
		}
		if uint64(s.PointerToRawData)+uint64(s.SizeOfRawData) > uint64(size) {
			return nil, fmt.Errorf("PE section %q lies outside the file", s.Name)
		}
		p.Sections = append(p.Sections, s)
	}
	return p, nil
}

// Authenticode returns the SHA-384 PE image hash exactly as edk2 computes
// it for measurement (SecurityPkg/Library/DxeTpm2MeasureBootLib,
// Tcg2MeasurePeImage; the Authenticode algorithm of the PE specification
// §"Calculating the PE Image Hash"): the headers without the checksum and
// the security directory entry, each section with raw data in file order,
// then any data after the last section that is not the certificate table.
// Unlike some other tools, nothing is padded to 8 bytes.
func Authenticode(img []byte) ([DigestSize]byte, error) {
	p, err := ParsePE(img)
	if err != nil {
		return [DigestSize]byte{}, err
	}
	return p.sum(spliced{img: img}), nil
}

// authenticodeWithHead is Authenticode of img with its first len(head)
// bytes replaced by head (QEMU's patched setup header), without copying the
// image: the headers are parsed from a patched copy of its first 64 KiB.
func authenticodeWithHead(img, head []byte) ([DigestSize]byte, error) {
	hdr := append(append([]byte(nil), head...), img[len(head):min(len(img), 64<<10)]...)
	p, err := parsePE(hdr, len(img))
	if err != nil {
		if len(hdr) < len(img) { // headers past 64 KiB: parse the whole patched image
			return Authenticode(append(append([]byte(nil), head...), img[len(head):]...))
		}
		return [DigestSize]byte{}, err
	}
	return p.sum(spliced{head: head, img: img}), nil
}

// spliced is an image whose first len(head) bytes are head's.
type spliced struct{ head, img []byte }

func (v spliced) size() int { return len(v.img) }

// write hashes bytes [lo, hi) of the image.
func (v spliced) write(h hash.Hash, lo, hi int) {
	if lo < len(v.head) {
		h.Write(v.head[lo:min(hi, len(v.head))])
		lo = min(hi, len(v.head))
	}
	if lo < hi {
		h.Write(v.img[lo:hi])
	}
}

func (p *PE) sum(v spliced) [DigestSize]byte {
	h := sha512.New384()
	p.hash(h, v)
	var out [DigestSize]byte
	h.Sum(out[:0])
	return out
}

func (p *PE) hash(h hash.Hash, v spliced) {
	v.write(h, 0, p.checksumOff)
	if p.secDirOff < 0 {
		v.write(h, p.checksumOff+4, p.sizeOfHeaders)
	} else {
		v.write(h, p.checksumOff+4, p.secDirOff)
		v.write(h, p.secDirOff+8, p.sizeOfHeaders)
	}
	secs := append([]PESection(nil), p.Sections...)
	sort.SliceStable(secs, func(i, j int) bool { return secs[i].PointerToRawData < secs[j].PointerToRawData })
	sum := p.sizeOfHeaders
	for _, s := range secs {
		if s.SizeOfRawData == 0 {
			continue
		}
		v.write(h, int(s.PointerToRawData), int(s.PointerToRawData+s.SizeOfRawData))
		sum += int(s.SizeOfRawData)
	}
	if v.size() > sum+p.certSize {
		v.write(h, sum, v.size()-p.certSize)
	}
}

// Section returns the raw data of the named section.
func (p *PE) Section(img []byte, name string) ([]byte, bool) {
	for _, s := range p.Sections {
		if s.Name == name {
			n := min(s.SizeOfRawData, max(s.VirtualSize, 1))
			if s.VirtualSize == 0 {
				n = s.SizeOfRawData
			}
			return img[s.PointerToRawData : s.PointerToRawData+n], true
		}
	}
	return nil, false
}

// IsBzImage reports whether img has a Linux x86 boot protocol header
// ("HdrS" at 0x202), which QEMU patches for direct boot.
func IsBzImage(img []byte) bool {
	return len(img) >= 0x240 && string(img[0x202:0x206]) == "HdrS"
}

// QEMU's x86 direct-boot constants (hw/i386/x86-common.c).
const (
	acpiDataSize           = 0x28000 // space reserved below 4 GiB for ACPI
	xlfCanBeLoadedAbove4G  = 1 << 1  // XLF_CAN_BE_LOADED_ABOVE_4G
	loaderTypeQEMU         = 0xb0
	loadflagsCanUseHeap    = 0x80
	loadflagsLoadedHigh    = 0x01
	defaultInitrdAddrMax   = 0x37ffffff
	bootProtocolInitrdMax  = 0x203
	bootProtocolXloadflags = 0x20c
)

// PatchKernel applies the setup header changes QEMU's x86_load_linux makes
// to a bzImage before handing it to the firmware over fw_cfg, which is the
// blob OVMF measures (QEMU before 10.0, or any QEMU with edk2 before
// 202502). They depend on the initrd size, through the highest address an
// initrd may use on the memory size, and on a vga= in the command line
// (vid_mode, see qemu.VidMode). A copy is returned.
func PatchKernel(img []byte, initrdSize int, hasInitrd bool, memory uint64, cmdline string) ([]byte, error) {
	head, err := patchHead(img, initrdSize, hasInitrd, memory, cmdline)
	if err != nil {
		return nil, err
	}
	return append(head, img[len(head):]...), nil
}

// patchedHeadSize covers every setup header byte QEMU writes (the last is
// cmd_line_ptr, 0x228..0x22b) and reads (xloadflags at 0x236).
const patchedHeadSize = 0x240

// patchHead returns a copy of the first patchedHeadSize bytes of img with
// QEMU's setup header patch applied: the rest of the kernel is unchanged,
// so the measurement hashes it in place (authenticodeWithHead).
func patchHead(img []byte, initrdSize int, hasInitrd bool, memory uint64, cmdline string) ([]byte, error) {
	if !IsBzImage(img) { // also: len(img) >= patchedHeadSize
		return nil, errors.New("not a bzImage (no HdrS setup header): QEMU does not patch it")
	}
	k := append([]byte(nil), img[:patchedHeadSize]...)
	protocol := binary.LittleEndian.Uint16(k[0x206:])
	real, cmdlineAddr := uint32(0x90000), uint32(0x9a000)
	if protocol >= 0x200 && k[0x211]&loadflagsLoadedHigh != 0 {
		real, cmdlineAddr = 0x10000, 0x20000
	}
	mode, hasMode, err := qemu.VidMode(cmdline)
	if err != nil {
		return nil, err
	}
	if hasMode {
		binary.LittleEndian.PutUint16(k[qemu.VidModeOffset:], mode) // vid_mode
	}
	k[0x210] = loaderTypeQEMU // type_of_loader
	if protocol >= 0x201 {
		k[0x211] |= loadflagsCanUseHeap
		binary.LittleEndian.PutUint16(k[0x224:], uint16(cmdlineAddr-real-0x200)) // heap_end_ptr
	}
	if protocol >= 0x202 {
		binary.LittleEndian.PutUint32(k[0x228:], cmdlineAddr) // cmd_line_ptr
	}
	if hasInitrd {
		var initrdMax uint64
		switch {
		case protocol >= bootProtocolXloadflags && binary.LittleEndian.Uint16(k[0x236:])&xlfCanBeLoadedAbove4G != 0:
			initrdMax = 0xffffffff
		case protocol >= bootProtocolInitrdMax:
			initrdMax = uint64(binary.LittleEndian.Uint32(k[0x22c:]))
		}
		if initrdMax == 0 {
			initrdMax = defaultInitrdAddrMax
		}
		if low := below4G(memory); initrdMax >= low-acpiDataSize {
			initrdMax = low - acpiDataSize - 1
		}
		if uint64(initrdSize) > initrdMax {
			return nil, fmt.Errorf("initrd of %d bytes does not fit below %#x", initrdSize, initrdMax)
		}
		binary.LittleEndian.PutUint32(k[0x218:], uint32((initrdMax-uint64(initrdSize))&^0xfff)) // ramdisk_image
		binary.LittleEndian.PutUint32(k[0x21c:], uint32(initrdSize))                            // ramdisk_size
	}
	return k, nil
}
