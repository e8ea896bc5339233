package cli

import (
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/measure/ovmf"
	"github.com/cvmkit/cvmkit/measure/qemu"
	"github.com/cvmkit/cvmkit/measure/snp"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/policy"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/spf13/cobra"
)

// snpFlags are sev-snp-measure's flags, with the same names and meanings,
// plus cvmkit's own (lists for matrices, --profile, --explain, ID blocks).
type snpFlags struct {
	mode, ovmf, kernel, initrd, appendArg        string
	appendSet                                    bool
	vcpus                                        []int
	vcpuTypes, vmmTypes                          []string
	vcpuSig, vcpuFamily, vcpuModel, vcpuStepping string
	guestFeatures, snpOVMFHash, svsm             string
	varsSize                                     string
	varsFile, outputFormat, profile              string
	explain                                      bool
	dumpVMSA                                     string

	policy, hostData                    string
	idKey, authorKey, familyID, imageID string
	guestSVN                            uint32
	idBlockDir, sevCheckDir             string
}

func (a *app) measureSNPCmd() *cobra.Command {
	f := &snpFlags{}
	cmd := &cobra.Command{
		Use:   "snp --ovmf FILE [flags]",
		Short: "Compute AMD SEV-SNP, SEV-ES and SEV launch digests",
		Long: `Compute the launch digest AMD's secure processor puts in the MEASUREMENT field
of an SEV-SNP attestation report (or the SEV-ES / SEV launch measurement input),
for OVMF firmware launched by QEMU, Amazon EC2 or Google Compute Engine.

The flags are sev-snp-measure's, with the same names and meanings, so scripts
can switch tools. In addition --vcpus, --vcpu-type and --vmm-type take lists
(1,2,4 or repeated flags) and print one digest per combination; the firmware is
hashed once for the whole matrix.

The digest binds the kernel, initrd and command line only with firmware that has
an SNP_KERNEL_HASHES section (edk2 OvmfPkg/AmdSev/AmdSevX64 builds) and QEMU's
kernel-hashes=on; with other firmware --kernel is an error.

--profile selects the VMSA of an older host stack: qemu-preinit2 (QEMU before
9.1 or a host kernel before 6.10, without KVM_SEV_INIT2) or ec2-rdx0 (EC2 before
April 2026). --explain prints every page update (GPA, page type, contents hash,
digest after) so you can find where a mismatch starts. The algorithm and its
references are in docs/measure-snp.md.`,
		Example: `  # The digest for 4 vCPUs of QEMU's EPYC-Milan model:
  cvmkit measure snp --ovmf OVMF.fd --vcpus 4 --vcpu-type EPYC-Milan

  # Kernel, initrd and command line bound through the AmdSev firmware:
  cvmkit measure snp --ovmf OVMF.amdsev.fd --vcpus 2 --vcpu-type EPYC-Genoa \
      --kernel vmlinuz --initrd initrd.img --append "console=ttyS0"

  # A matrix, with every assumption, as JSON:
  cvmkit measure snp --ovmf OVMF.fd --vcpus 1,2,4,8 --vcpu-type EPYC-v4,EPYC-Milan,EPYC-Genoa --json

  # The firmware part once, then digests without the firmware file's pages:
  cvmkit measure snp --mode snp:ovmf-hash --ovmf OVMF.fd
  cvmkit measure snp --ovmf OVMF.fd --snp-ovmf-hash <hex> --vcpus 4 --vcpu-type EPYC-v4`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.appendSet = cmd.Flags().Changed("append")
			return a.runMeasureSNP(f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.mode, "mode", "snp", "snp, seves, sev, snp:ovmf-hash or snp:svsm")
	fl.StringVar(&f.ovmf, "ovmf", "", "OVMF firmware file (required)")
	fl.IntSliceVar(&f.vcpus, "vcpus", nil, "number of vCPUs; a list gives a matrix (1,2,4)")
	fl.StringSliceVar(&f.vcpuTypes, "vcpu-type", nil, "QEMU -cpu model(s): EPYC, EPYC-v1…v4, EPYC-Rome, EPYC-Milan, EPYC-Genoa, EPYC-Turin and their -vN")
	fl.StringVar(&f.vcpuSig, "vcpu-sig", "", "vCPU signature (CPUID 1 EAX), instead of --vcpu-type, e.g. 0xa00f11")
	fl.StringVar(&f.vcpuFamily, "vcpu-family", "", "vCPU family, with --vcpu-model and --vcpu-stepping, instead of --vcpu-type")
	fl.StringVar(&f.vcpuModel, "vcpu-model", "", "vCPU model")
	fl.StringVar(&f.vcpuStepping, "vcpu-stepping", "", "vCPU stepping")
	fl.StringSliceVar(&f.vmmTypes, "vmm-type", []string{"QEMU"}, "VMM(s): QEMU, ec2, gce")
	fl.StringVar(&f.kernel, "kernel", "", "kernel file given to QEMU -kernel (needs kernel-hashes firmware)")
	fl.StringVar(&f.initrd, "initrd", "", "initrd file given to -initrd (with --kernel)")
	fl.StringVar(&f.appendArg, "append", "", "kernel command line given to -append (with --kernel)")
	fl.StringVar(&f.guestFeatures, "guest-features", "0x1", "SEV_FEATURES of the VMSAs (snp mode)")
	fl.StringVar(&f.snpOVMFHash, "snp-ovmf-hash", "", "precomputed snp:ovmf-hash (hex) to seed the digest instead of hashing the firmware pages")
	fl.StringVar(&f.svsm, "svsm", "", "Coconut SVSM image (mode snp:svsm)")
	fl.StringVar(&f.varsSize, "vars-size", "", "size of the OVMF variable store (mode snp:svsm)")
	fl.StringVar(&f.varsFile, "vars-file", "", "OVMF variable store file, for its size (mode snp:svsm)")
	fl.StringVar(&f.outputFormat, "output-format", "hex", "hex or base64")
	fl.StringVar(&f.profile, "profile", "current", "VMSA profile: current, qemu-preinit2 or ec2-rdx0")
	fl.BoolVar(&f.explain, "explain", false, "print every page update of the computation")
	fl.StringVar(&f.dumpVMSA, "dump-vmsa", "", "write each measured VMSA page into this new folder (NAME.vmsaI.bin per vCPU I), as sev-snp-measure --dump-vmsa does")
	fl.StringVar(&f.policy, "policy", "0x30000", "SNP guest policy, for the ID block and the go-sev-guest policy")
	fl.StringVar(&f.hostData, "host-data", "", "HOST_DATA (32 bytes hex) the host sets, for the go-sev-guest policy")
	fl.StringVar(&f.idKey, "id-key", "", "ID key (PEM, P-384): also make an ID block and ID auth block for each digest")
	fl.StringVar(&f.authorKey, "author-key", "", "author key (PEM, P-384) that signs the ID key (with --id-key)")
	fl.StringVar(&f.familyID, "family-id", "", "ID block family ID (16 bytes hex; default zeros)")
	fl.StringVar(&f.imageID, "image-id", "", "ID block image ID (16 bytes hex; default zeros)")
	fl.Uint32Var(&f.guestSVN, "guest-svn", 0, "ID block guest SVN")
	fl.StringVar(&f.idBlockDir, "id-block-dir", "", "write NAME.id-block.bin and NAME.id-auth.bin for each digest into this folder")
	fl.StringVar(&f.sevCheckDir, "sev-check-dir", "", "write a go-sev-guest check policy NAME.binpb and NAME.textproto for each digest into this folder")
	completeMeasureSNP(cmd)
	return cmd
}

// measureSNP computes what cvmkit measure snp prints, without printing.
func (a *app) measureSNP(f *snpFlags) (*refvalues.SNP, []snp.Entry, []refvalues.SNPStep, error) {
	usage := func(format string, args ...any) error {
		return outcome.UsageError(fmt.Errorf(format, args...), "see cvmkit measure snp --help")
	}
	mode, err := snp.ParseMode(f.mode)
	if err != nil {
		return nil, nil, nil, outcome.UsageError(err)
	}
	if f.ovmf == "" {
		return nil, nil, nil, usage("--ovmf is required")
	}
	var vmms []snp.VMM
	for _, s := range f.vmmTypes {
		v, err := snp.ParseVMM(s)
		if err != nil {
			return nil, nil, nil, outcome.UsageError(err)
		}
		vmms = append(vmms, v)
	}
	if mode == snp.ModeSVSM {
		for _, v := range vmms {
			if v != snp.QEMU {
				return nil, nil, nil, outcome.UsageError(fmt.Errorf("--mode snp:svsm with --vmm-type %s: an SVSM launch is measured for QEMU only (sev-snp-measure refuses it too)", v),
					"use --vmm-type QEMU with --mode snp:svsm, or --mode snp for "+string(v))
			}
		}
	}
	profile, err := parseProfileFor(f.profile, vmms)
	if err != nil {
		return nil, nil, nil, outcome.UsageError(err)
	}
	features, err := strconv.ParseUint(f.guestFeatures, 0, 64)
	if err != nil {
		return nil, nil, nil, usage("--guest-features %q is not a number (write it like 0x1)", f.guestFeatures)
	}
	needVMSA := mode != snp.ModeSEV && mode != snp.ModeOVMFHash
	if needVMSA && len(f.vcpus) == 0 {
		return nil, nil, nil, usage("--vcpus is required for mode %s", mode)
	}
	for _, n := range f.vcpus {
		if n < 1 || n > 512 {
			return nil, nil, nil, usage("--vcpus %d: want 1 to 512", n)
		}
	}
	cpus, err := parseCPUs(f)
	if err != nil {
		return nil, nil, nil, err
	}
	if needVMSA && len(cpus) == 0 && containsVMM(vmms, snp.QEMU) {
		return nil, nil, nil, usage("QEMU puts the vCPU signature in each VMSA: give --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping")
	}
	if f.kernel == "" && (f.initrd != "" || f.appendSet) {
		return nil, nil, nil, usage("--initrd and --append are measured only with --kernel")
	}
	if f.kernel != "" {
		// QEMU reads -append before the guest starts and exits on some.
		if err := qemu.CheckCmdline(f.appendArg); err != nil {
			return nil, nil, nil, outcome.UsageError(fmt.Errorf("--append: %w", err))
		}
	}

	res := refvalues.SNP{Mode: string(mode), Profile: profileName(profile)}
	isSNP := mode == snp.ModeSNP || mode == snp.ModeSVSM
	if isSNP {
		res.GuestFeatures = fmt.Sprintf("%#x", features)
	}
	lp, err := parseLaunchPolicy(f, isSNP)
	if err != nil {
		return nil, nil, nil, err
	}
	if lp != nil {
		res.Policy = fmt.Sprintf("%#x", lp.policy)
	} else if isSNP {
		// Recorded for the policies made from this document later.
		p, err := strconv.ParseUint(f.policy, 0, 64)
		if err != nil {
			return nil, nil, nil, usage("--policy %q is not a number (write it like 0x30000)", f.policy)
		}
		res.Policy = fmt.Sprintf("%#x", p)
	}
	if f.hostData != "" {
		h, err := hex.DecodeString(strings.TrimPrefix(f.hostData, "0x"))
		if err != nil || len(h) != 32 {
			return nil, nil, nil, usage("--host-data must be 32 bytes of hex")
		}
		res.HostData = hex.EncodeToString(h)
	}
	image, fd, err := readInput(f.ovmf, "--ovmf", ovmf.MaxSize)
	if err != nil {
		return nil, nil, nil, err
	}
	res.Firmware = fd
	fw, err := ovmf.Parse(image)
	if err != nil {
		return nil, nil, nil, outcome.InputError(fmt.Errorf("firmware %q: %w", f.ovmf, err), "give the OVMF.fd that QEMU maps below 4 GiB (for split flash, the code and vars files concatenated)")
	}
	_, res.KernelHashes = fw.Section(ovmf.SNPKernelHashes)
	l := snp.Launch{Mode: mode, Profile: profile, GuestFeatures: features, Firmware: fw, Image: image}
	if f.snpOVMFHash != "" {
		h, err := hex.DecodeString(strings.TrimPrefix(f.snpOVMFHash, "0x"))
		if err != nil || len(h) != snp.DigestSize {
			return nil, nil, nil, usage("--snp-ovmf-hash must be %d bytes of hex (the output of --mode snp:ovmf-hash)", snp.DigestSize)
		}
		l.OVMFHash, res.OVMFHash = h, hex.EncodeToString(h)
	}
	if f.kernel != "" {
		k, err := a.kernelHashes(f, &res)
		if err != nil {
			return nil, nil, nil, err
		}
		l.Kernel = k
	}
	if mode == snp.ModeSVSM {
		if err := a.svsmInputs(f, &l, &res); err != nil {
			return nil, nil, nil, err
		}
	} else if f.svsm != "" || f.varsSize != "" || f.varsFile != "" {
		return nil, nil, nil, usage("--svsm, --vars-size and --vars-file are for --mode snp:svsm")
	}
	if !needVMSA {
		f.vcpus = []int{0}
	}
	var steps []refvalues.SNPStep
	if f.explain {
		l.Explain = func(s snp.Step) {
			st := refvalues.SNPStep{What: s.What, Contents: hex.EncodeToString(s.Contents), Digest: hex.EncodeToString(s.Digest)}
			if s.Type != 0 {
				st.GPA, st.Type = fmt.Sprintf("%#x", s.GPA), s.Type.String()
			}
			steps = append(steps, st)
		}
	}
	if len(cpus) == 0 {
		cpus = []snp.CPU{{}}
	}
	var entries []snp.Entry
	if mode == snp.ModeSVSM {
		// One SVSM launch per vCPU type and count (QEMU only).
		for _, c := range cpus {
			for _, n := range f.vcpus {
				l.VMM, l.VCPUSig, l.VCPUs = snp.QEMU, c.Sig, n
				d, err := l.Digest()
				if err != nil {
					return nil, nil, nil, measureError(f.ovmf, err)
				}
				entries = append(entries, snp.Entry{VMM: snp.QEMU, CPU: c, VCPUs: n, Digest: d})
			}
		}
	} else {
		entries, err = snp.Matrix(l, vmms, cpus, f.vcpus)
		if err != nil {
			return nil, nil, nil, measureError(f.ovmf, err)
		}
	}
	for _, e := range entries {
		se := refvalues.SNPEntry{Name: e.Name(), VMM: string(e.VMM), VCPUs: e.VCPUs, Digest: hex.EncodeToString(e.Digest)}
		if needVMSA && (e.VMM == snp.QEMU) {
			se.VCPUType, se.VCPUSig = e.CPU.Name, fmt.Sprintf("%#x", e.CPU.Sig)
		}
		if lp != nil {
			if err := lp.apply(e, &se); err != nil {
				return nil, nil, nil, err
			}
		}
		res.Measurements = append(res.Measurements, se)
	}
	if f.dumpVMSA != "" {
		if !needVMSA || mode == snp.ModeSVSM {
			return nil, nil, nil, usage("--dump-vmsa is for modes snp and seves")
		}
		files := map[string][]byte{}
		for _, e := range entries {
			v := l
			v.VMM, v.VCPUSig, v.VCPUs = e.VMM, e.CPU.Sig, e.VCPUs
			bsp, ap, err := v.VMSAs()
			if err != nil {
				return nil, nil, nil, measureError(f.ovmf, err)
			}
			for i := 0; i < e.VCPUs; i++ {
				page := ap
				if i == 0 {
					page = bsp
				}
				files[fmt.Sprintf("%s.vmsa%d.bin", e.Name(), i)] = page
			}
		}
		if err := atomicfile.Dir(f.dumpVMSA, func(tmp string) error {
			_, err := writeFiles(tmp, files)
			return err
		}); err != nil {
			return nil, nil, nil, err
		}
	}
	if f.explain && len(res.Measurements) > 0 {
		res.Measurements[len(res.Measurements)-1].Steps = steps
		if len(res.Measurements) > 1 {
			return nil, nil, nil, usage("--explain works on one digest at a time: give one vCPU count, type and VMM")
		}
	}
	return &res, entries, steps, nil
}

func (a *app) runMeasureSNP(f *snpFlags) error {
	usage := func(format string, args ...any) error {
		return outcome.UsageError(fmt.Errorf(format, args...), "see cvmkit measure snp --help")
	}
	resp, entries, steps, err := a.measureSNP(f)
	if err != nil {
		return err
	}
	res := *resp
	format := func(d []byte) (string, error) {
		switch f.outputFormat {
		case "hex":
			return hex.EncodeToString(d), nil
		case "base64":
			return base64.StdEncoding.EncodeToString(d), nil
		}
		return "", usage("--output-format %q: want hex or base64", f.outputFormat)
	}
	if _, err := format(nil); err != nil {
		return err
	}
	return a.emit(res, func(w io.Writer) {
		if f.explain {
			fmt.Fprintf(w, "%-14s %-10s %-96s %-96s  %s\n", "GPA", "PAGE TYPE", "CONTENTS (SHA-384; SHA-256 for SEV/SEV-ES)", "LAUNCH DIGEST AFTER", "WHAT")
			for _, s := range steps {
				fmt.Fprintf(w, "%-14s %-10s %-96s %s  %s\n", or(s.GPA, "-"), or(s.Type, "-"), or(s.Contents, "-"), s.Digest, s.What)
			}
		}
		for i, e := range entries {
			d, _ := format(e.Digest)
			name := ""
			if len(entries) > 1 {
				name = fmt.Sprintf("%-28s ", e.Name())
			}
			fmt.Fprintf(w, "%s%s\n", name, d)
			if m := res.Measurements[i]; m.QEMUObject != "" {
				fmt.Fprintf(w, "%s%s\n", name, m.QEMUObject)
			}
		}
	})
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func containsVMM(vs []snp.VMM, v snp.VMM) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

func profileName(p snp.Profile) string {
	if p == snp.ProfileCurrent {
		return "current"
	}
	return string(p)
}

// parseProfileFor checks the profile against every VMM of the matrix.
func parseProfileFor(s string, vmms []snp.VMM) (snp.Profile, error) {
	var p snp.Profile
	for _, v := range vmms {
		q, err := snp.ParseProfile(s, v)
		if err != nil {
			return "", err
		}
		p = q
	}
	return p, nil
}

// parseCPUs turns --vcpu-type, --vcpu-sig or --vcpu-family/model/stepping
// into signatures; they are alternatives.
func parseCPUs(f *snpFlags) ([]snp.CPU, error) {
	fms := f.vcpuFamily != "" || f.vcpuModel != "" || f.vcpuStepping != ""
	n := 0
	for _, b := range []bool{len(f.vcpuTypes) > 0, f.vcpuSig != "", fms} {
		if b {
			n++
		}
	}
	if n > 1 {
		return nil, outcome.UsageError(errors.New("give the vCPU as one of --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping"))
	}
	var cpus []snp.CPU
	for _, t := range f.vcpuTypes {
		sig, err := snp.CPUSignature(t)
		if err != nil {
			return nil, outcome.UsageError(err)
		}
		cpus = append(cpus, snp.CPU{Name: t, Sig: sig})
	}
	if f.vcpuSig != "" {
		sig, err := strconv.ParseUint(f.vcpuSig, 0, 32)
		if err != nil {
			return nil, outcome.UsageError(fmt.Errorf("--vcpu-sig %q is not a 32-bit number", f.vcpuSig), "write it like 0xa00f11")
		}
		cpus = append(cpus, snp.CPU{Sig: uint32(sig)})
	}
	if fms {
		var v [3]int
		for i, s := range []string{f.vcpuFamily, f.vcpuModel, f.vcpuStepping} {
			x, err := strconv.ParseInt(s, 0, 32)
			if err != nil {
				return nil, outcome.UsageError(errors.New("--vcpu-family, --vcpu-model and --vcpu-stepping go together, as numbers"))
			}
			v[i] = int(x)
		}
		sig, err := snp.Signature(v[0], v[1], v[2])
		if err != nil {
			return nil, outcome.UsageError(err)
		}
		cpus = append(cpus, snp.CPU{Sig: sig})
	}
	return cpus, nil
}

// kernelHashes hashes --kernel, --initrd and --append for the hashes table.
func (a *app) kernelHashes(f *snpFlags, res *refvalues.SNP) (*snp.KernelHashes, error) {
	kf, kd, err := openInput(f.kernel, "--kernel")
	if err != nil {
		return nil, err
	}
	defer kf.Close()
	var ir io.Reader
	if f.initrd != "" {
		inf, id, err := openInput(f.initrd, "--initrd")
		if err != nil {
			return nil, err
		}
		defer inf.Close()
		ir, res.Initrd = inf, &id
	}
	k, err := snp.HashKernel(kf, ir, f.appendArg)
	if err != nil {
		return nil, fmt.Errorf("hashing kernel and initrd: %w", err)
	}
	kd.SHA256 = hex.EncodeToString(k.Kernel[:])
	res.Kernel = &kd
	if res.Initrd == nil {
		// Without -initrd QEMU hashes an empty initrd; say so.
		res.Initrd = &refvalues.File{}
	}
	res.Initrd.SHA256 = hex.EncodeToString(k.Initrd[:])
	res.Cmdline = &refvalues.SNPCmd{Value: f.appendArg, SHA256: hex.EncodeToString(k.Cmdline[:])}
	return &k, nil
}

func (a *app) svsmInputs(f *snpFlags, l *snp.Launch, res *refvalues.SNP) error {
	if f.svsm == "" {
		return outcome.UsageError(errors.New("--mode snp:svsm needs --svsm"))
	}
	img, sd, err := readInput(f.svsm, "--svsm", ovmf.MaxSize)
	if err != nil {
		return err
	}
	svsm, err := ovmf.Parse(img)
	if err != nil {
		return outcome.InputError(fmt.Errorf("SVSM image %q: %w", f.svsm, err))
	}
	switch {
	case f.varsSize != "" && f.varsFile != "":
		return outcome.UsageError(errors.New("give --vars-size or --vars-file, not both"))
	case f.varsSize != "":
		n, err := strconv.ParseUint(f.varsSize, 0, 64)
		if err != nil {
			return outcome.UsageError(fmt.Errorf("--vars-size %q is not a number of bytes", f.varsSize))
		}
		l.VarsSize = n
	case f.varsFile != "":
		fi, err := os.Stat(f.varsFile)
		if err != nil {
			return outcome.InputError(fmt.Errorf("--vars-file: %w", err))
		}
		l.VarsSize = uint64(fi.Size())
	default:
		return outcome.UsageError(errors.New("--mode snp:svsm needs --vars-size or --vars-file"))
	}
	l.SVSM, l.SVSMImage, res.SVSM, res.VarsSize = svsm, img, &sd, l.VarsSize
	return nil
}

// measureError classifies a measurement error: the inputs cannot give the
// requested measurement (the firmware lacks what it needs).
func measureError(firmware string, err error) error {
	return outcome.InputError(fmt.Errorf("firmware %q: %w", firmware, err))
}

// launchPolicy is what --policy, --host-data and the ID block flags add to
// each digest: an ID block and ID auth block, and a go-sev-guest policy.
type launchPolicy struct {
	policy            uint64
	hostData          []byte
	idKey, authorKey  *ecdsa.PrivateKey
	familyID, imageID [16]byte
	guestSVN          uint32
	idBlockDir        string
	sevCheckDir       string
}

// parseLaunchPolicy reads the flags; it returns nil when none of the outputs
// that need them is asked for.
func parseLaunchPolicy(f *snpFlags, isSNP bool) (*launchPolicy, error) {
	if f.idKey == "" && f.sevCheckDir == "" {
		if f.authorKey != "" || f.familyID != "" || f.imageID != "" || f.guestSVN != 0 || f.idBlockDir != "" {
			return nil, outcome.UsageError(errors.New("--author-key, --family-id, --image-id, --guest-svn and --id-block-dir need --id-key"))
		}
		return nil, nil
	}
	if !isSNP {
		return nil, outcome.UsageError(errors.New("ID blocks and go-sev-guest policies are for SEV-SNP launch digests (--mode snp or snp:svsm)"))
	}
	p, err := strconv.ParseUint(f.policy, 0, 64)
	if err != nil {
		return nil, outcome.UsageError(fmt.Errorf("--policy %q is not a number", f.policy), "write it like 0x30000")
	}
	if err := snp.CheckPolicy(p); err != nil {
		return nil, outcome.UsageError(err)
	}
	lp := &launchPolicy{policy: p, guestSVN: f.guestSVN, idBlockDir: f.idBlockDir, sevCheckDir: f.sevCheckDir}
	if f.hostData != "" {
		if lp.hostData, err = hex.DecodeString(f.hostData); err != nil || len(lp.hostData) != 32 {
			return nil, outcome.UsageError(errors.New("--host-data must be 32 bytes of hex (64 digits)"))
		}
	}
	for _, x := range []struct {
		flag, val string
		dst       *[16]byte
	}{{"--family-id", f.familyID, &lp.familyID}, {"--image-id", f.imageID, &lp.imageID}} {
		if x.val == "" {
			continue
		}
		b, err := hex.DecodeString(strings.TrimPrefix(x.val, "0x"))
		if err != nil || len(b) != 16 {
			return nil, outcome.UsageError(fmt.Errorf("%s must be 16 bytes of hex (32 digits)", x.flag))
		}
		copy(x.dst[:], b)
	}
	if f.idKey != "" {
		if lp.idKey, err = readP384Key(f.idKey, "--id-key"); err != nil {
			return nil, err
		}
	} else if f.authorKey != "" || f.familyID != "" || f.imageID != "" || f.guestSVN != 0 || f.idBlockDir != "" {
		return nil, outcome.UsageError(errors.New("--author-key, --family-id, --image-id, --guest-svn and --id-block-dir need --id-key"))
	}
	if f.authorKey != "" {
		if lp.authorKey, err = readP384Key(f.authorKey, "--author-key"); err != nil {
			return nil, err
		}
	}
	return lp, nil
}

func readP384Key(path, flag string) (*ecdsa.PrivateKey, error) {
	b, _, err := readInput(path, flag, 1<<20)
	if err != nil {
		return nil, err
	}
	k, err := snp.ParseP384PrivateKey(b)
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("%s %q: %w", flag, path, err), "make one with: openssl ecparam -name secp384r1 -genkey -noout -out key.pem")
	}
	return k, nil
}

// apply makes the ID block and the go-sev-guest policy of one digest.
func (lp *launchPolicy) apply(e snp.Entry, se *refvalues.SNPEntry) error {
	name := e.Name()
	chk := policy.SEVCheck{Measurement: e.Digest, Policy: lp.policy, HostData: lp.hostData}
	if lp.idKey != nil {
		b := &snp.IDBlock{FamilyID: lp.familyID, ImageID: lp.imageID, GuestSVN: lp.guestSVN, Policy: lp.policy}
		copy(b.LD[:], e.Digest)
		auth, err := snp.IDAuth(b, lp.idKey, lp.authorKey)
		if err != nil {
			return err
		}
		idd, _ := snp.KeyDigest(&lp.idKey.PublicKey)
		se.IDBlock = base64.StdEncoding.EncodeToString(b.Bytes())
		se.IDAuth = base64.StdEncoding.EncodeToString(auth)
		se.IDKeyDigest = hex.EncodeToString(idd[:])
		se.QEMUObject = "id-block=" + se.IDBlock + ",id-auth=" + se.IDAuth
		chk.IDBlock, chk.FamilyID, chk.ImageID, chk.GuestSVN, chk.IDKeyDigest = true, lp.familyID[:], lp.imageID[:], lp.guestSVN, idd[:]
		if lp.authorKey != nil {
			ad, _ := snp.KeyDigest(&lp.authorKey.PublicKey)
			se.AuthorKeyDigest = hex.EncodeToString(ad[:])
			se.QEMUObject += ",author-key-enabled=on"
			chk.AuthorKeyDigest = ad[:]
		}
		if lp.idBlockDir != "" {
			files, err := writeFiles(lp.idBlockDir, map[string][]byte{name + ".id-block.bin": b.Bytes(), name + ".id-auth.bin": auth})
			if err != nil {
				return err
			}
			se.Files = append(se.Files, files...)
		}
	}
	if lp.sevCheckDir != "" {
		cfg, err := policy.SEVCheckConfig(chk)
		if err != nil {
			return err
		}
		bin, text, err := policy.Encode(cfg, name)
		if err != nil {
			return err
		}
		files, err := writeFiles(lp.sevCheckDir, map[string][]byte{name + ".binpb": bin, name + ".textproto": text})
		if err != nil {
			return err
		}
		se.Files = append(se.Files, files...)
	}
	return nil
}

// writeFiles writes each file atomically into dir (created if missing) and
// returns their paths in name order.
func writeFiles(dir string, files map[string][]byte) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating output folder: %w", err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := atomicfile.WriteFile(p, files[n], 0o644); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
