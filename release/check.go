package release

import (
	"fmt"
	"os"
	"strings"

	"github.com/cvmkit/cvmkit/config"
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
	for i, f := range c.Firmware {
		img, err := os.ReadFile(c.Resolve(f.Path))
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
		fw := parsed[s.Firmware]
		if fw == nil {
			continue
		}
		p := fmt.Sprintf("platforms.snp[%d]", i)
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
