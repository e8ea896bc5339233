package snp

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// VMSA field offsets in the 4 KiB save area (AMD64 APM vol. 2, table B-4
// "VMSA Layout, State Save Area for SEV-ES"; Linux struct sev_es_save_area).
const (
	offES, offCS, offSS, offDS, offFS, offGS = 0x000, 0x010, 0x020, 0x030, 0x040, 0x050
	offGDTR, offLDTR, offIDTR, offTR         = 0x060, 0x070, 0x080, 0x090
	offEFER                                  = 0x0d0
	offCR4, offCR0                           = 0x148, 0x158
	offDR7, offDR6, offRFLAGS, offRIP        = 0x160, 0x168, 0x170, 0x178
	offGPAT                                  = 0x268
	offRDX                                   = 0x310
	offSEVFeatures                           = 0x3b0
	offXCR0                                  = 0x3e8
	offMXCSR                                 = 0x408
	offX87FCW                                = 0x410
)

// VMM is the virtual machine monitor whose vCPU reset state goes into the VMSAs.
type VMM string

const (
	QEMU VMM = "qemu"
	EC2  VMM = "ec2"
	GCE  VMM = "gce"
)

// ParseVMM accepts sev-snp-measure's spellings (QEMU, qemu, ec2, gce).
func ParseVMM(s string) (VMM, error) {
	switch v := VMM(strings.ToLower(s)); v {
	case QEMU, EC2, GCE:
		return v, nil
	}
	return "", fmt.Errorf("unknown VMM type %q; want QEMU, ec2 or gce", s)
}

// Profile selects the VMSA initial state of a host stack. Each VMM's
// default is the current one; older stacks reset vCPUs differently and so
// give other digests for the same firmware.
type Profile string

const (
	// ProfileCurrent is the VMM's current behaviour: for QEMU, KVM with
	// KVM_SEV_INIT2 (Linux 6.10+ host, QEMU 9.1+), which sets the x87 FCW
	// to 0x37f and MXCSR to 0x1f80; for EC2, RDX = 0x600 (since 2026-04).
	ProfileCurrent Profile = ""
	// ProfileQEMUPreInit2 is QEMU on hosts before KVM_SEV_INIT2 (the
	// KVM_SEV_INIT/KVM_SEV_ES_INIT path: Linux before 6.10, or QEMU before
	// 9.1): FCW and MXCSR are left 0. sev-snp-measure before 0.0.10.
	ProfileQEMUPreInit2 Profile = "qemu-preinit2"
	// ProfileEC2RDX0 is EC2 before its 2026-04 change, with RDX = 0 in the
	// VMSA. sev-snp-measure 0.0.12 and earlier.
	ProfileEC2RDX0 Profile = "ec2-rdx0"
)

// Profiles lists the named profiles with the VMM each applies to and the
// host stack it matches.
var Profiles = []struct {
	Name      Profile
	VMM       VMM
	HostStack string
}{
	{ProfileQEMUPreInit2, QEMU, "QEMU before 9.1 or a host kernel before 6.10 (no KVM_SEV_INIT2): x87 FCW and MXCSR are 0 in the VMSA"},
	{ProfileEC2RDX0, EC2, "Amazon EC2 before April 2026: RDX is 0 in the VMSA instead of 0x600"},
}

// ParseProfile checks that a profile name exists and fits the VMM.
func ParseProfile(s string, vmm VMM) (Profile, error) {
	if s == "" || s == "current" {
		return ProfileCurrent, nil
	}
	for _, p := range Profiles {
		if string(p.Name) == s {
			if p.VMM != vmm {
				return "", fmt.Errorf("VMSA profile %q is for VMM %s, not %s", s, p.VMM, vmm)
			}
			return p.Name, nil
		}
	}
	return "", fmt.Errorf("unknown VMSA profile %q; want current, %s or %s", s, ProfileQEMUPreInit2, ProfileEC2RDX0)
}

// vmsaState is what differs between VMMs and host stacks in the initial
// VMSA of each vCPU.
type vmsaState struct {
	csAttrBSP, csAttrAP uint16
	ssAttr, trAttr      uint16
	gPAT                uint64
	rdx                 uint64
	mxcsr               uint32
	fcw                 uint16
}

func stateFor(vmm VMM, p Profile, sig uint32) vmsaState {
	s := vmsaState{csAttrBSP: 0x9b, csAttrAP: 0x9b, ssAttr: 0x93, trAttr: 0x8b, gPAT: 0x0007040600070406}
	switch vmm {
	case QEMU:
		// QEMU puts the CPUID signature in RDX (x86_cpu_reset: env->regs[R_EDX] = env->cpuid_version).
		s.rdx = uint64(sig)
		if p != ProfileQEMUPreInit2 {
			s.mxcsr, s.fcw = 0x1f80, 0x37f // KVM_SEV_INIT2 syncs the FPU reset state into the VMSA
		}
	case EC2:
		// EC2's VMM: BSP code segment not accessed, SS and TR attributes differ.
		s.csAttrBSP, s.ssAttr, s.trAttr = 0x9a, 0x92, 0x83
		if p != ProfileEC2RDX0 {
			s.rdx = 0x600
		}
	case GCE:
		s.gPAT = 0x00070106
		s.rdx = 0x600
	}
	return s
}

func putSeg(b []byte, off int, sel, attr uint16, limit uint32, base uint64) {
	binary.LittleEndian.PutUint16(b[off:], sel)
	binary.LittleEndian.PutUint16(b[off+2:], attr)
	binary.LittleEndian.PutUint32(b[off+4:], limit)
	binary.LittleEndian.PutUint64(b[off+8:], base)
}

// resetVMSA builds the VMSA of a vCPU leaving reset at eip, in real mode
// (x86 reset state: CS.sel 0xf000, CS.base = eip & 0xffff0000, RIP = eip &
// 0xffff). The BSP starts at 0xfffffff0; APs at the firmware's SEV-ES reset
// vector.
func resetVMSA(s vmsaState, eip uint32, bsp bool, features uint64) []byte {
	b := make([]byte, pageSize)
	csAttr := s.csAttrAP
	if bsp {
		csAttr = s.csAttrBSP
	}
	putSeg(b, offES, 0, 0x93, 0xffff, 0)
	putSeg(b, offCS, 0xf000, csAttr, 0xffff, uint64(eip&0xffff0000))
	putSeg(b, offSS, 0, s.ssAttr, 0xffff, 0)
	putSeg(b, offDS, 0, 0x93, 0xffff, 0)
	putSeg(b, offFS, 0, 0x93, 0xffff, 0)
	putSeg(b, offGS, 0, 0x93, 0xffff, 0)
	putSeg(b, offGDTR, 0, 0, 0xffff, 0)
	putSeg(b, offLDTR, 0, 0x82, 0xffff, 0)
	putSeg(b, offIDTR, 0, 0, 0xffff, 0)
	putSeg(b, offTR, 0, s.trAttr, 0xffff, 0)
	binary.LittleEndian.PutUint64(b[offEFER:], 0x1000) // SVME
	binary.LittleEndian.PutUint64(b[offCR4:], 0x40)    // MCE
	binary.LittleEndian.PutUint64(b[offCR0:], 0x10)    // ET
	binary.LittleEndian.PutUint64(b[offDR7:], 0x400)
	binary.LittleEndian.PutUint64(b[offDR6:], 0xffff0ff0)
	binary.LittleEndian.PutUint64(b[offRFLAGS:], 0x2)
	binary.LittleEndian.PutUint64(b[offRIP:], uint64(eip&0xffff))
	binary.LittleEndian.PutUint64(b[offGPAT:], s.gPAT)
	binary.LittleEndian.PutUint64(b[offRDX:], s.rdx)
	binary.LittleEndian.PutUint64(b[offSEVFeatures:], features)
	binary.LittleEndian.PutUint64(b[offXCR0:], 0x1)
	binary.LittleEndian.PutUint32(b[offMXCSR:], s.mxcsr)
	binary.LittleEndian.PutUint16(b[offX87FCW:], s.fcw)
	return b
}

// svsmVMSA builds the VMSA the Coconut-SVSM QEMU fork (pre-IGVM) gives
// every vCPU: 32-bit protected mode with flat segments, entering the SVSM
// at rip. Its SEV_FEATURES is fixed at SNPActive and its x87 FCW is 0, as
// on the hardware that produced the reference values.
func svsmVMSA(sig uint32, rip uint64) []byte {
	b := make([]byte, pageSize)
	putSeg(b, offES, 16, 0xc93, 0xffffffff, 0)
	putSeg(b, offCS, 8, 0xc9b, 0xffffffff, 0)
	putSeg(b, offSS, 16, 0xc93, 0xffffffff, 0)
	putSeg(b, offDS, 16, 0xc93, 0xffffffff, 0)
	putSeg(b, offFS, 16, 0xc93, 0xffffffff, 0)
	putSeg(b, offGS, 0, 0x93, 0xffff, 0)
	putSeg(b, offGDTR, 0, 0, 0xffff, 0)
	putSeg(b, offLDTR, 0, 0x82, 0xffff, 0)
	putSeg(b, offIDTR, 0, 0, 0xffff, 0)
	putSeg(b, offTR, 0, 0x8b, 0xffff, 0)
	binary.LittleEndian.PutUint64(b[offEFER:], 0x1000)
	binary.LittleEndian.PutUint64(b[offCR4:], 0x40)
	binary.LittleEndian.PutUint64(b[offCR0:], 0x11) // PE | ET
	binary.LittleEndian.PutUint64(b[offDR7:], 0x400)
	binary.LittleEndian.PutUint64(b[offDR6:], 0xffff0ff0)
	binary.LittleEndian.PutUint64(b[offRFLAGS:], 0x2)
	binary.LittleEndian.PutUint64(b[offRIP:], rip)
	binary.LittleEndian.PutUint64(b[offGPAT:], 0x0007040600070406)
	binary.LittleEndian.PutUint64(b[offRDX:], uint64(sig))
	binary.LittleEndian.PutUint64(b[offSEVFeatures:], 0x1)
	binary.LittleEndian.PutUint64(b[offXCR0:], 0x1)
	binary.LittleEndian.PutUint32(b[offMXCSR:], 0x1f80)
	return b
}
