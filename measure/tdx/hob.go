package tdx

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/cvmkit/cvmkit/measure/ovmf"
)

// q35 memory layout (QEMU hw/i386/pc_q35.c): RAM below 4 GiB ends at
// 2 GiB when the guest has at least 2.75 GiB, else at 2.75 GiB (or at the
// RAM size when smaller); the rest is above 4 GiB.
func below4G(memory uint64) uint64 {
	lowmem := uint64(0xB0000000)
	if memory >= 0xB0000000 {
		lowmem = 0x80000000
	}
	return min(memory, lowmem)
}

type ramRange struct {
	start, end uint64
	accepted   bool
}

// TDHOB returns the TD HOB QEMU writes into the TD_HOB section for a guest
// of memory bytes (QEMU hw/i386/tdvf-hob.c, tdx.c tdx_finalize_vm; TDVF
// design guide §10): a PHIT HOB and one resource descriptor HOB per RAM
// range, with the TD_HOB and TEMP_MEM sections accepted and the rest
// unaccepted. The returned bytes stop before the END_OF_HOB_LIST HOB,
// which is what the firmware measures into RTMR0
// (OvmfPkg/IntelTdx/TdxHelperLib TdxHelperMeasureTdHob).
func TDHOB(t *ovmf.TDVF, memory uint64) ([]byte, error) {
	hobSec, ok := t.Section(ovmf.TDVFTDHOB)
	if !ok {
		return nil, fmt.Errorf("the firmware's TDX metadata has no TD_HOB section")
	}
	if memory < 32<<20 || memory > 1<<46 {
		return nil, fmt.Errorf("memory %d bytes is outside 32 MiB..64 TiB", memory)
	}
	low := below4G(memory)
	ram := []ramRange{{0, low, false}}
	if memory > low {
		ram = append(ram, ramRange{1 << 32, 1<<32 + memory - low, false})
	}
	for _, s := range t.Sections {
		if s.Type != ovmf.TDVFTDHOB && s.Type != ovmf.TDVFTempMem {
			continue
		}
		var err error
		if ram, err = accept(ram, s.MemoryAddress, s.MemoryAddress+s.MemoryDataSize); err != nil {
			return nil, fmt.Errorf("%s section at %#x: %w", s.Type, s.MemoryAddress, err)
		}
	}
	sort.Slice(ram, func(i, j int) bool { return ram[i].start < ram[j].start })

	const phitLen, resLen = 56, 48
	out := make([]byte, phitLen+resLen*len(ram))
	// PHIT (EFI_HOB_HANDOFF_INFO_TABLE, PI spec vol. 3 §5.3).
	binary.LittleEndian.PutUint16(out[0:], 1) // EFI_HOB_TYPE_HANDOFF
	binary.LittleEndian.PutUint16(out[2:], phitLen)
	binary.LittleEndian.PutUint32(out[8:], 9) // EFI_HOB_HANDOFF_TABLE_VERSION
	// EfiEndOfHobList: the END_OF_HOB_LIST HOB (8 bytes) after the last one.
	binary.LittleEndian.PutUint64(out[48:], hobSec.MemoryAddress+uint64(len(out))+8)
	for i, r := range ram {
		d := out[phitLen+resLen*i:]
		binary.LittleEndian.PutUint16(d[0:], 3) // EFI_HOB_TYPE_RESOURCE_DESCRIPTOR
		binary.LittleEndian.PutUint16(d[2:], resLen)
		rt := uint32(7) // EFI_RESOURCE_MEMORY_UNACCEPTED
		if r.accepted {
			rt = 0 // EFI_RESOURCE_SYSTEM_MEMORY
		}
		binary.LittleEndian.PutUint32(d[24:], rt)
		binary.LittleEndian.PutUint32(d[28:], 7) // PRESENT | INITIALIZED | TESTED
		binary.LittleEndian.PutUint64(d[32:], r.start)
		binary.LittleEndian.PutUint64(d[40:], r.end-r.start)
	}
	return out, nil
}

// accept marks [lo, hi) accepted, splitting the range that holds it.
func accept(ram []ramRange, lo, hi uint64) ([]ramRange, error) {
	for i, r := range ram {
		if lo < r.start || hi > r.end {
			continue
		}
		if r.accepted {
			return nil, fmt.Errorf("overlaps memory that is already accepted")
		}
		var parts []ramRange
		if lo > r.start {
			parts = append(parts, ramRange{r.start, lo, false})
		}
		parts = append(parts, ramRange{lo, hi, true})
		if hi < r.end {
			parts = append(parts, ramRange{hi, r.end, false})
		}
		return append(append(ram[:i:i], parts...), ram[i+1:]...), nil
	}
	return nil, fmt.Errorf("is not inside guest RAM (too little memory?)")
}

// TDHOBDigest is the RTMR0 EV_EFI_HANDOFF_TABLES2 digest of the TD HOB.
func TDHOBDigest(t *ovmf.TDVF, memory uint64) ([DigestSize]byte, error) {
	b, err := TDHOB(t, memory)
	if err != nil {
		return [DigestSize]byte{}, err
	}
	return sha512.Sum384(b), nil
}

// CFVDigest is the RTMR0 EV_EFI_PLATFORM_FIRMWARE_BLOB2 digest of the
// configuration firmware volume (the pristine variable store) as SEC
// measures it (TdxHelperMeasureCfvImage).
func CFVDigest(image []byte, t *ovmf.TDVF) ([DigestSize]byte, error) {
	s, ok := t.Section(ovmf.TDVFCFV)
	if !ok {
		return [DigestSize]byte{}, fmt.Errorf("the firmware's TDX metadata has no CFV section")
	}
	return sha512.Sum384(image[s.DataOffset : s.DataOffset+s.RawDataSize]), nil
}
