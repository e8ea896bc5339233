package snp

import (
	"crypto/sha256"
	"encoding"
	"fmt"
)

// CPU is a vCPU model: the name it was given by (QEMU's -cpu name, or empty
// for a raw signature) and its CPUID signature.
type CPU struct {
	Name string
	Sig  uint32
}

// Entry is one cell of a measurement matrix.
type Entry struct {
	VMM    VMM
	CPU    CPU
	VCPUs  int
	Digest []byte
}

// Name is a stable identifier for the entry, such as qemu-EPYC-v4-4vcpu,
// used for file names and policy names.
func (e Entry) Name() string {
	if e.VCPUs == 0 {
		return "firmware" // SEV and snp:ovmf-hash measure no vCPU state
	}
	cpu := e.CPU.Name
	if cpu == "" && e.VMM == QEMU {
		cpu = fmt.Sprintf("sig%06x", e.CPU.Sig)
	}
	if cpu == "" {
		return fmt.Sprintf("%s-%dvcpu", e.VMM, e.VCPUs)
	}
	return fmt.Sprintf("%s-%s-%dvcpu", e.VMM, cpu, e.VCPUs)
}

// Matrix computes the digest of base for every VMM × CPU × vCPU count, in
// that nesting order. The part shared by every entry is computed once: the
// SNP digest over the firmware pages (which then seeds each entry, exactly
// as ModeOVMFHash does), or the SHA-256 state after the firmware for SEV
// and SEV-ES. VMMs other than QEMU ignore the vCPU model, so they get one
// entry per vCPU count. With base.Explain set nothing is shared, so that
// every step is reported.
func Matrix(base Launch, vmms []VMM, cpus []CPU, vcpus []int) ([]Entry, error) {
	if len(vmms) == 0 || len(vcpus) == 0 {
		return nil, fmt.Errorf("a matrix needs at least one VMM and one vCPU count")
	}
	if len(cpus) == 0 {
		cpus = []CPU{{}}
	}
	var fwState []byte
	if base.Explain == nil {
		switch base.Mode {
		case ModeSNP:
			if base.OVMFHash == nil {
				seed := base
				seed.Mode = ModeOVMFHash
				h, err := seed.Digest()
				if err != nil {
					return nil, err
				}
				base.OVMFHash = h
			}
		case ModeSEV, ModeSEVES:
			if len(base.Image) != base.Firmware.Size {
				return nil, fmt.Errorf("the firmware image is needed for mode %s", base.Mode)
			}
			h := sha256.New()
			h.Write(base.Image)
			st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				return nil, err
			}
			fwState = st
		}
	}
	var out []Entry
	for _, vmm := range vmms {
		cs := cpus
		if vmm != QEMU || base.Mode == ModeSEV || base.Mode == ModeOVMFHash {
			cs = []CPU{{}} // the signature is not measured
		}
		ns := vcpus
		if base.Mode == ModeSEV || base.Mode == ModeOVMFHash {
			ns = []int{0} // no VMSAs
		}
		for _, c := range cs {
			for _, n := range ns {
				l := base
				l.VMM, l.VCPUSig, l.VCPUs = vmm, c.Sig, n
				var d []byte
				var err error
				if fwState != nil {
					if err = l.check(); err == nil {
						d, err = l.sevDigest(fwState)
					}
				} else {
					d, err = l.Digest()
				}
				if err != nil {
					return nil, err
				}
				out = append(out, Entry{VMM: vmm, CPU: c, VCPUs: n, Digest: d})
			}
		}
		if base.Mode == ModeSEV || base.Mode == ModeOVMFHash {
			break // the VMM is not measured either
		}
	}
	return out, nil
}
