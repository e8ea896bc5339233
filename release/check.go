package release

import (
	"fmt"
	"os"
	"strings"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/firmware"
	"github.com/cvmkit/cvmkit/measure/ovmf"
	"github.com/cvmkit/cvmkit/measure/snp"
	"github.com/cvmkit/cvmkit/measure/tdx"
)

// Checks of a release config against what the measure packages accept,
// which config (a base package) cannot make itself: 'cvmkit config
// validate' reports them with the config's own problems, all at once.

// PlatformProblems checks the platform matrices against what the measure
// packages accept: vCPU type names and VMSA profiles.
func PlatformProblems(c *config.Config) []config.Problem {
	var ps []config.Problem
	for i, s := range c.Platforms.SNP {
		p := fmt.Sprintf("platforms.snp[%d]", i)
		for j, t := range s.VCPUTypes {
			if _, err := snp.CPUSignature(t); err != nil {
				ps = append(ps, c.Problem(fmt.Sprintf("%s.vcpuTypes[%d]", p, j), fmt.Sprintf("unknown vCPU type %q", t), strings.TrimSpace(config.Suggest(t, snp.CPUTypes())+" known types: "+strings.Join(snp.CPUTypes(), ", "))))
			}
		}
		if _, err := snp.ParseProfile(s.Profile, snp.VMM(s.VMM)); err != nil {
			ps = append(ps, c.Problem(p+".profile", err.Error(), "see docs/measure-snp.md, \"Profiles for older host stacks\""))
		}
	}
	for i, t := range c.Platforms.TDX {
		if t.QEMUVersion != "" {
			if _, err := tdx.ParseQEMUVersion(t.QEMUVersion); err != nil {
				ps = append(ps, c.Problem(fmt.Sprintf("platforms.tdx[%d].qemuVersion", i), err.Error(), "give the QEMU release of the host, such as 10.1.0"))
			}
		}
		if t.EDK2Profile == "" {
			continue
		}
		if _, err := tdx.ParseProfile(t.EDK2Profile); err != nil {
			ps = append(ps, c.Problem(fmt.Sprintf("platforms.tdx[%d].edk2Profile", i), err.Error(), "see docs/measure-tdx.md, \"edk2 profiles\""))
		}
	}
	return ps
}

// FirmwareProblems parses each firmware named by an SNP configuration and
// checks that it can measure what the configuration asks for.
func FirmwareProblems(c *config.Config) []config.Problem {
	var ps []config.Problem
	parsed := map[string]*ovmf.Firmware{}
	recipes := map[string]firmware.Recipe{}
	for i, f := range c.Firmware {
		if f.Build != nil {
			r, err := FirmwareRecipe(f)
			if err != nil {
				ps = append(ps, c.Problem(fmt.Sprintf("firmware[%d].build.recipe", i), err.Error(), "run 'cvmkit firmware list'; pin the digest the recipe builds"))
				continue
			}
			recipes[f.Name] = r
		}
		img, err := os.ReadFile(c.Resolve(f.Path))
		if os.IsNotExist(err) && f.Build != nil {
			continue // release builds it; its recipe says what it measures
		}
		if err == nil {
			var fw *ovmf.Firmware
			if fw, err = ovmf.Parse(img); err == nil {
				parsed[f.Name] = fw
				continue
			}
		}
		ps = append(ps, c.Problem(fmt.Sprintf("firmware[%d].path", i), fmt.Sprintf("firmware %q: %v", f.Path, err), "give an OVMF image (OVMF.fd)"))
	}
	for i, t := range c.Platforms.TDX {
		f := c.FirmwareByName(t.Firmware)
		if f == nil || parsed[t.Firmware] == nil {
			continue
		}
		img, _ := os.ReadFile(c.Resolve(f.Path))
		if _, err := ovmf.ParseTDVF(img); err != nil {
			ps = append(ps, c.Problem(fmt.Sprintf("platforms.tdx[%d].firmware", i), fmt.Sprintf("firmware %q cannot launch a TD: %v", t.Firmware, err), "use the whole OVMF.fd of a TDX-capable build"))
		}
	}
	for i, s := range c.Platforms.SNP {
		p := fmt.Sprintf("platforms.snp[%d]", i)
		fw := parsed[s.Firmware]
		if r, ok := recipes[s.Firmware]; ok && fw == nil {
			if s.KernelHashes && !r.KernelHashes {
				ps = append(ps, c.Problem(p+".kernelHashes", fmt.Sprintf("firmware %q (recipe %s) has no SNP_KERNEL_HASHES section: kernel-hashes=on cannot bind the kernel, initrd and command line under SEV-SNP", s.Firmware, r.Name), "use the amdsev recipe, or set kernelHashes: false"))
			}
			continue
		}
		if fw == nil {
			continue
		}
		if _, ok := fw.Section(ovmf.SNPKernelHashes); s.KernelHashes && !ok && s.Mode != "sev" && s.Mode != "seves" {
			ps = append(ps, c.Problem(p+".kernelHashes", fmt.Sprintf("firmware %q has no SNP_KERNEL_HASHES section: kernel-hashes=on cannot bind the kernel, initrd and command line under SEV-SNP", s.Firmware), "use an OvmfPkg/AmdSev/AmdSevX64 build, or set kernelHashes: false"))
		}
		if s.KernelHashes && (s.Mode == "sev" || s.Mode == "seves") && fw.HashTable == nil {
			ps = append(ps, c.Problem(p+".kernelHashes", fmt.Sprintf("firmware %q has no SEV hashes table", s.Firmware), "use an OvmfPkg/AmdSev/AmdSevX64 build, or set kernelHashes: false"))
		}
		if !fw.HasSEVMetadata && s.Mode != "sev" && s.Mode != "seves" {
			ps = append(ps, c.Problem(p+".firmware", fmt.Sprintf("firmware %q has no SEV metadata: it cannot launch an SEV-SNP guest", s.Firmware), "use a full OVMF.fd build, not a variable store or a non-SEV build"))
		}
	}
	return ps
}

// Unbound is a configuration whose launch values will leave parts of the
// image unbound, decided from the config, the firmware and the kernel
// before anything is built: what the policies stage's binding check
// (policy.FromReferenceValues) will find.
type Unbound struct {
	// Path is the configuration's place in the config
	// ("platforms.snp[0]"); Name its name.
	Path, Name string
	// Parts are what is unbound: kernel, initrd, cmdline, rootfs.
	Parts []string
	Why   string
}

func (u Unbound) String() string {
	return fmt.Sprintf("%s (%s) leaves %s unbound: %s", u.Path, u.Name, strings.Join(u.Parts, ", "), u.Why)
}

// PredictUnbound says which configurations of c will leave parts of the
// image unbound, reading the firmware (does it have the SEV-SNP
// kernel-hashes table?) and the kernel (does its EFI stub measure RTMR2?).
// Inputs that cannot be read are skipped: the input checks report them.
func PredictUnbound(c *config.Config) []Unbound {
	var out []Unbound
	rootfs := strings.Contains(c.Image.Cmdline, "{{.Root}}")
	boot := func() []string { return []string{"kernel", "initrd", "cmdline", "rootfs"} }
	params := func() []string { return []string{"initrd", "cmdline", "rootfs"} }
	// hasHashes says whether the firmware has the SEV-SNP kernel-hashes
	// table: read from its bytes, or from its recipe when release is yet
	// to build it; known is false when neither can be read.
	type facts struct{ known, hashes bool }
	fwCache := map[string]facts{}
	hasHashes := func(name string) facts {
		if f, ok := fwCache[name]; ok {
			return f
		}
		var ff facts
		if f := c.FirmwareByName(name); f != nil {
			img, err := os.ReadFile(c.Resolve(f.Path))
			if err == nil {
				if fw, err := ovmf.Parse(img); err == nil {
					_, ff.hashes = fw.Section(ovmf.SNPKernelHashes)
					ff.known = true
				}
			} else if f.Build != nil {
				if r, err := FirmwareRecipe(*f); err == nil {
					ff = facts{true, r.KernelHashes}
				}
			}
		}
		fwCache[name] = ff
		return ff
	}
	for i, s := range c.Platforms.SNP {
		u := Unbound{Path: fmt.Sprintf("platforms.snp[%d]", i), Name: s.Name}
		fw := hasHashes(s.Firmware)
		switch {
		case !fw.known:
			continue
		case !s.KernelHashes:
			u.Parts, u.Why = boot(), "kernelHashes is not set, so the launch digest binds the firmware only (QEMU kernel-hashes=on with a firmware that has the SEV-SNP kernel-hashes table binds the kernel, initrd and command line)"
		case !fw.hashes && s.Mode != "sev" && s.Mode != "seves":
			u.Parts, u.Why = boot(), fmt.Sprintf("firmware %q has no SEV-SNP kernel-hashes table, so the launch digest binds the firmware only", s.Firmware)
		}
		if len(u.Parts) == 0 && !rootfs {
			u.Parts, u.Why = []string{"rootfs"}, "image.cmdline has no {{.Root}}: the measured command line does not carry the dm-verity root hash"
		}
		if len(u.Parts) > 0 {
			out = append(out, u)
		}
	}
	var kernel *tdx.KernelInfo
	kernelRead := false
	for i, t := range c.Platforms.TDX {
		u := Unbound{Path: fmt.Sprintf("platforms.tdx[%d]", i), Name: t.Name}
		switch {
		case t.EDK2Profile == "":
			u.Parts, u.Why = boot(), "no edk2Profile, so RTMR1 and RTMR2 are not computed and MRTD binds the firmware only"
		case t.GuestMeasuresRTMR2 != nil && !*t.GuestMeasuresRTMR2:
			u.Parts, u.Why = params(), "RTMR2 stays zero: guestMeasuresRTMR2 is false, so it binds neither the command line nor the initrd"
		case t.GuestMeasuresRTMR2 == nil:
			if !kernelRead {
				kernelRead = true
				if b, err := os.ReadFile(c.Resolve(c.Image.Kernel.Path)); err == nil {
					if ki, err := tdx.ReadKernelInfo(b); err == nil {
						kernel = ki
					}
				}
			}
			if kernel != nil && !kernel.MeasuresCC {
				u.Parts, u.Why = params(), "RTMR2 stays zero: "+kernel.Reason
			}
		}
		if len(u.Parts) == 0 && !rootfs {
			u.Parts, u.Why = []string{"rootfs"}, "image.cmdline has no {{.Root}}: the measured command line does not carry the dm-verity root hash"
		}
		if len(u.Parts) > 0 {
			out = append(out, u)
		}
	}
	return out
}

// BindingProblems is PredictUnbound as config problems, for a config that
// asks for key-authority policies without allowUnbound: what the
// policies stage would refuse after building, encrypting and measuring.
func BindingProblems(c *config.Config, allow bool) []config.Problem {
	if allow || c.KeyAuthorities.AllowUnbound || len(c.KeyAuthorities.Targets) == 0 {
		return nil
	}
	var ps []config.Problem
	for _, u := range PredictUnbound(c) {
		ps = append(ps, c.Problem(u.Path, fmt.Sprintf("configuration %s would leave %s unbound: %s; key-authority policies would release the model key to a VM running any of them", u.Name, strings.Join(u.Parts, ", "), u.Why), UnboundHint))
	}
	return ps
}
