// Package snp computes AMD SEV-SNP launch digests (and SEV-ES and SEV launch
// measurements) for OVMF firmware launched by QEMU, Amazon EC2 or Google
// Compute Engine, exactly as the AMD secure processor accumulates them, so
// that a verifier can compare the MEASUREMENT of an attestation report with
// a value computed offline from the release inputs.
//
// References: AMD SEV-SNP Firmware ABI Specification (publication 56860,
// rev 1.55) §8.17 SNP_LAUNCH_UPDATE and table 66 (PAGE_INFO); AMD SEV API
// (publication 55766) §6.3 LAUNCH_UPDATE_DATA/VMSA for SEV and SEV-ES; QEMU
// target/i386/sev.c; KVM arch/x86/kvm/svm/sev.c. Validated against the
// independent implementation virtee/sev-snp-measure (docs/measure-snp.md).
package snp

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"github.com/cvmkit/cvmkit/measure/ovmf"
)

const pageSize = ovmf.PageSize

// Mode is what is measured.
type Mode string

const (
	// ModeSNP is an SEV-SNP launch digest (48 bytes, the report's MEASUREMENT).
	ModeSNP Mode = "snp"
	// ModeSEVES is an SEV-ES launch measurement input digest (SHA-256).
	ModeSEVES Mode = "seves"
	// ModeSEV is an SEV launch measurement input digest (SHA-256).
	ModeSEV Mode = "sev"
	// ModeOVMFHash is the SNP launch digest after the firmware pages only:
	// a seed for ModeSNP (Launch.OVMFHash) that spares shipping the firmware.
	ModeOVMFHash Mode = "snp:ovmf-hash"
	// ModeSVSM is an SEV-SNP launch digest of Coconut SVSM + OVMF as the
	// pre-IGVM Coconut QEMU fork launches them.
	ModeSVSM Mode = "snp:svsm"
)

// ParseMode accepts sev-snp-measure's --mode values.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeSNP, ModeSEVES, ModeSEV, ModeOVMFHash, ModeSVSM:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q; want snp, seves, sev, snp:ovmf-hash or snp:svsm", s)
}

// Launch describes one launch to measure.
type Launch struct {
	Mode    Mode
	VMM     VMM
	Profile Profile
	// VCPUs is the number of vCPUs; each gets a VMSA (not for ModeSEV).
	VCPUs int
	// VCPUSig is the CPUID signature of the vCPU model (QEMU puts it in RDX).
	VCPUSig uint32
	// GuestFeatures is SEV_FEATURES of the VMSAs in ModeSNP (0x1 =
	// SNPActive is the usual value); SEV-ES VMSAs always carry 0.
	GuestFeatures uint64

	// Firmware is the parsed image and Image its bytes. With OVMFHash set,
	// Image may be nil: only the metadata is needed.
	Firmware *ovmf.Firmware
	Image    []byte
	// OVMFHash seeds the SNP digest with a precomputed ModeOVMFHash value
	// instead of measuring Image.
	OVMFHash []byte

	// Kernel, when set, are the hashes QEMU's kernel-hashes=on puts in the
	// firmware's hashes table.
	Kernel *KernelHashes

	// SVSM and SVSMImage are the Coconut SVSM (ModeSVSM); VarsSize is the
	// size of the OVMF variable store between it and the firmware.
	SVSM      *ovmf.Firmware
	SVSMImage []byte
	VarsSize  uint64

	// Explain, when set, is called for every page (SNP modes) or every
	// hashed component (SEV, SEV-ES).
	Explain func(Step)
}

// ErrNoKernelHashes is wrapped by errors for a kernel measured with firmware
// that cannot bind it.
var ErrNoKernelHashes = errors.New("firmware cannot measure a kernel")

// Digest computes the launch digest.
func (l *Launch) Digest() ([]byte, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	switch l.Mode {
	case ModeSEV, ModeSEVES:
		return l.sevDigest(nil)
	case ModeSVSM:
		return l.svsmDigest()
	}
	g := &gctx{explain: l.Explain}
	if err := l.firmwarePages(g); err != nil {
		return nil, err
	}
	if l.Mode == ModeOVMFHash {
		return g.ld[:], nil
	}
	if err := l.metadata(g, l.Firmware, l.VMM, l.Kernel); err != nil {
		return nil, err
	}
	if err := l.vmsas(g, l.VCPUs); err != nil {
		return nil, err
	}
	return g.ld[:], nil
}

func (l *Launch) check() error {
	if l.Firmware == nil {
		return errors.New("no firmware")
	}
	if l.Mode != ModeOVMFHash && l.Mode != ModeSEV && (l.VCPUs < 1 || l.VCPUs > 512) {
		return fmt.Errorf("%d vCPUs: want 1 to 512", l.VCPUs)
	}
	if l.OVMFHash != nil {
		if len(l.OVMFHash) != DigestSize {
			return fmt.Errorf("OVMF hash has %d bytes, want %d", len(l.OVMFHash), DigestSize)
		}
		if l.Mode != ModeSNP {
			return fmt.Errorf("a precomputed OVMF hash only seeds mode snp, not %s", l.Mode)
		}
	} else if len(l.Image) != l.Firmware.Size {
		return errors.New("the firmware image is needed unless an OVMF hash seeds the digest")
	}
	if l.Image != nil && len(l.Image)%pageSize != 0 {
		return fmt.Errorf("firmware is %d bytes, not a whole number of 4 KiB pages", len(l.Image))
	}
	if l.Mode == ModeSVSM && l.VMM != "" && l.VMM != QEMU {
		return fmt.Errorf("mode snp:svsm is measured for QEMU only, not %s", l.VMM)
	}
	if l.Mode == ModeSVSM && l.Kernel != nil {
		return errors.New("mode snp:svsm does not measure a kernel")
	}
	return nil
}

// firmwarePages measures the image as NORMAL pages ending at 4 GiB, or
// seeds the digest with OVMFHash.
func (l *Launch) firmwarePages(g *gctx) error {
	if l.OVMFHash != nil {
		copy(g.ld[:], l.OVMFHash)
		return nil
	}
	g.what = "firmware"
	g.normalPages(1<<32-uint64(len(l.Image)), l.Image)
	return nil
}

// metadata measures the firmware's SEV metadata sections in file order.
// The VMMs differ here: GCE adds SNP_SEC_MEM as UNMEASURED pages, EC2
// measures the CPUID page after every other section.
func (l *Launch) metadata(g *gctx, fw *ovmf.Firmware, vmm VMM, kernel *KernelHashes) error {
	if l.Mode == ModeSNP && !fw.HasSEVMetadata {
		return fmt.Errorf("firmware has no SEV metadata (OVMF_SEV_METADATA): it is not an SEV-SNP capable build")
	}
	usedKernel := false
	for _, s := range fw.Sections {
		g.what = "metadata " + s.Type.String()
		switch s.Type {
		case ovmf.SNPSecMem:
			if vmm == GCE {
				g.emptyPages(PageUnmeasured, uint64(s.GPA), s.Size)
			} else {
				g.emptyPages(PageZero, uint64(s.GPA), s.Size)
			}
		case ovmf.SNPSecrets:
			g.update(PageSecrets, uint64(s.GPA), nil)
		case ovmf.CPUID:
			if vmm != EC2 {
				g.update(PageCPUID, uint64(s.GPA), nil)
			}
		case ovmf.SVSMCAA:
			g.emptyPages(PageZero, uint64(s.GPA), s.Size)
		case ovmf.SNPKernelHashes:
			if kernel == nil {
				g.emptyPages(PageZero, uint64(s.GPA), s.Size)
				continue
			}
			page, err := hashesPage(fw, s, kernel)
			if err != nil {
				return err
			}
			g.what = "kernel hashes"
			g.normalPages(uint64(s.GPA), page)
			usedKernel = true
		}
	}
	if vmm == EC2 {
		for _, s := range fw.Sections {
			if s.Type == ovmf.CPUID {
				g.what = "metadata CPUID (EC2: last)"
				g.update(PageCPUID, uint64(s.GPA), nil)
			}
		}
	}
	if kernel != nil && !usedKernel {
		return fmt.Errorf("%w: the firmware's SEV metadata has no SNP_KERNEL_HASHES section, so under SEV-SNP the launch digest cannot bind --kernel, --initrd or --append (use an OvmfPkg/AmdSev/AmdSevX64 build and QEMU's kernel-hashes=on, or measure without --kernel)", ErrNoKernelHashes)
	}
	return nil
}

// hashesPage builds the page QEMU measures for the SNP_KERNEL_HASHES
// section: zeros with the hashes table at the SEV_HASH_TABLE_RV offset.
func hashesPage(fw *ovmf.Firmware, s ovmf.Section, k *KernelHashes) ([]byte, error) {
	if s.Size != pageSize {
		return nil, fmt.Errorf("SNP_KERNEL_HASHES section is %#x bytes, want one page", s.Size)
	}
	ht := fw.HashTable
	if ht == nil {
		return nil, fmt.Errorf("%w: the firmware has an SNP_KERNEL_HASHES section but no SEV_HASH_TABLE_RV entry", ErrNoKernelHashes)
	}
	if ht.Base&^(pageSize-1) != s.GPA || ht.Size < hashTableSize || ht.Base%pageSize+hashTableSize > pageSize {
		return nil, fmt.Errorf("SEV_HASH_TABLE_RV (base %#x, size %#x) does not fit in the SNP_KERNEL_HASHES page at %#x", ht.Base, ht.Size, s.GPA)
	}
	page := make([]byte, pageSize)
	t := k.Table()
	copy(page[ht.Base%pageSize:], t[:])
	return page, nil
}

// vmsas measures one VMSA per vCPU: the BSP's, then the APs' (identical).
func (l *Launch) vmsas(g *gctx, n int) error {
	bsp, ap, err := l.vmsaPages(l.GuestFeatures)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		g.what = fmt.Sprintf("VMSA vCPU %d", i)
		if i == 0 {
			g.vmsaPage(bsp)
		} else {
			g.vmsaPage(ap)
		}
	}
	return nil
}

// VMSAs returns the VMSA pages the launch measures: the boot processor's,
// and the application processors' (nil for one vCPU), as
// sev-snp-measure's --dump-vmsa writes them. SEV-SNP uses GuestFeatures as
// SEV_FEATURES, SEV-ES zero; SEV and the OVMF hash have no VMSA.
func (l *Launch) VMSAs() (bsp, ap []byte, err error) {
	switch l.Mode {
	case ModeSNP:
		return l.vmsaPages(l.GuestFeatures)
	case ModeSEVES:
		return l.vmsaPages(0)
	}
	return nil, nil, fmt.Errorf("mode %s measures no VMSA this way", l.Mode)
}

func (l *Launch) vmsaPages(features uint64) (bsp, ap []byte, err error) {
	st := stateFor(l.VMM, l.Profile, l.VCPUSig)
	bsp = resetVMSA(st, 0xfffffff0, true, features)
	if l.VCPUs > 1 {
		if l.Firmware.ResetEIP == 0 {
			return nil, nil, errors.New("firmware has no SEV-ES reset block (SEV_ES_RESET_BLOCK): application processors cannot start, so only 1 vCPU can be measured")
		}
		ap = resetVMSA(st, l.Firmware.ResetEIP, false, features)
	}
	return bsp, ap, nil
}

// sevDigest computes SEV and SEV-ES measurements: SHA-256 over the firmware,
// the padded hashes table when a kernel is given, and (SEV-ES) the VMSAs.
// fwState, when set, is a marshalled SHA-256 state after the firmware bytes.
func (l *Launch) sevDigest(fwState []byte) ([]byte, error) {
	h := sha256.New()
	part := func(what string, b []byte) {
		h.Write(b)
		if l.Explain != nil {
			c := sha256.Sum256(b)
			l.Explain(Step{What: what, Contents: c[:], Digest: runningSHA256(h)})
		}
	}
	if fwState != nil {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(fwState); err != nil {
			return nil, err
		}
	} else {
		part("firmware", l.Image)
	}
	if l.Kernel != nil {
		if l.Firmware.HashTable == nil {
			return nil, fmt.Errorf("%w: the firmware has no SEV hashes table (SEV_HASH_TABLE_RV), so the %s measurement cannot bind --kernel, --initrd or --append (use an OvmfPkg/AmdSev/AmdSevX64 build with kernel-hashes=on)", ErrNoKernelHashes, l.Mode)
		}
		t := l.Kernel.Table()
		part("kernel hashes table", t[:])
	}
	if l.Mode == ModeSEVES {
		bsp, ap, err := l.vmsaPages(0)
		if err != nil {
			return nil, err
		}
		for i := 0; i < l.VCPUs; i++ {
			if i == 0 {
				part("VMSA vCPU 0", bsp)
			} else {
				part(fmt.Sprintf("VMSA vCPU %d", i), ap)
			}
		}
	}
	return h.Sum(nil), nil
}

// runningSHA256 returns the digest of what h has consumed so far, without
// disturbing h.
func runningSHA256(h hash.Hash) []byte {
	st, _ := h.(encoding.BinaryMarshaler).MarshalBinary()
	c := sha256.New()
	c.(encoding.BinaryUnmarshaler).UnmarshalBinary(st)
	return c.Sum(nil)
}

// svsmDigest measures Coconut SVSM + OVMF as the pre-IGVM Coconut QEMU fork
// loads them: OVMF at 4 GiB - len, the variable store below it, the SVSM
// below that; OVMF pages, SVSM pages, the SVSM's own metadata with QEMU
// rules, then one SVSM VMSA per vCPU.
func (l *Launch) svsmDigest() ([]byte, error) {
	if l.SVSM == nil || l.SVSMImage == nil {
		return nil, errors.New("mode snp:svsm needs the SVSM image")
	}
	if len(l.SVSMImage)%pageSize != 0 || l.VarsSize%pageSize != 0 {
		return nil, fmt.Errorf("SVSM image (%d bytes) and vars size (%d) must be whole 4 KiB pages", len(l.SVSMImage), l.VarsSize)
	}
	info, ok := l.SVSM.Entry(ovmf.SVSMInfoGUID)
	if !ok || len(info) < 4 {
		return nil, errors.New("SVSM image has no SVSM_INFO entry (a789a612-0597-4c4b-a49f-cbb1fe9d1ddd) in its footer table")
	}
	ovmfGPA := uint64(1<<32) - uint64(len(l.Image))
	if l.VarsSize+uint64(len(l.SVSMImage)) > ovmfGPA {
		return nil, errors.New("SVSM image and variable store do not fit below the firmware")
	}
	svsmGPA := ovmfGPA - l.VarsSize - uint64(len(l.SVSMImage))
	g := &gctx{explain: l.Explain}
	g.what = "firmware"
	g.normalPages(ovmfGPA, l.Image)
	g.what = "SVSM"
	g.normalPages(svsmGPA, l.SVSMImage)
	if err := l.metadata(g, l.SVSM, QEMU, nil); err != nil {
		return nil, err
	}
	rip := svsmGPA + uint64(binary.LittleEndian.Uint32(info))
	vmsa := svsmVMSA(l.VCPUSig, rip)
	for i := 0; i < l.VCPUs; i++ {
		g.what = fmt.Sprintf("VMSA vCPU %d", i)
		g.vmsaPage(vmsa)
	}
	return g.ld[:], nil
}
