package cli

import (
	"context"
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
	"github.com/cvmkit/cvmkit/release"
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

// snpFlagNames names the settings of a measurement by their flags, for
// errors.
func snpFlagNames(key string) string {
	if key == "vcpu-type" {
		return "--vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping"
	}
	return "--" + key
}

// snpSpec is the adapter from flags to a measurement spec: it parses the
// flags and reads the files they name.
func (a *app) snpSpec(f *snpFlags) (*snp.Spec, error) {
	usage := func(format string, args ...any) error {
		return outcome.UsageError(fmt.Errorf(format, args...), "see cvmkit measure snp --help")
	}
	mode, err := snp.ParseMode(f.mode)
	if err != nil {
		return nil, outcome.UsageError(err)
	}
	if f.ovmf == "" {
		return nil, usage("--ovmf is required")
	}
	s := &snp.Spec{Mode: mode, VCPUs: f.vcpus, Explain: f.explain, DumpVMSA: f.dumpVMSA != "", CheckPolicy: f.sevCheckDir != "", Name: snpFlagNames}
	for _, v := range f.vmmTypes {
		vmm, err := snp.ParseVMM(v)
		if err != nil {
			return nil, outcome.UsageError(err)
		}
		s.VMMs = append(s.VMMs, vmm)
	}
	if s.Profile, err = snp.ProfileFor(f.profile, s.VMMs); err != nil {
		return nil, outcome.UsageError(err)
	}
	if s.GuestFeatures, err = strconv.ParseUint(f.guestFeatures, 0, 64); err != nil {
		return nil, usage("--guest-features %q is not a number (write it like 0x1)", f.guestFeatures)
	}
	if s.CPUs, err = parseCPUs(f); err != nil {
		return nil, err
	}
	if err := s.Check(); err != nil {
		return nil, err
	}
	if f.kernel == "" && (f.initrd != "" || f.appendSet) {
		return nil, usage("--initrd and --append are measured only with --kernel")
	}
	if s.Policy, err = strconv.ParseUint(f.policy, 0, 64); err != nil && (mode.IsSNP() || f.idKey != "" || f.sevCheckDir != "") {
		return nil, usage("--policy %q is not a number (write it like 0x30000)", f.policy)
	}
	if f.hostData != "" {
		if s.HostData, err = hex.DecodeString(strings.TrimPrefix(f.hostData, "0x")); err != nil || len(s.HostData) != 32 {
			return nil, usage("--host-data must be 32 bytes of hex (64 digits)")
		}
	}
	if s.ID, err = idKeysFromFlags(f); err != nil {
		return nil, err
	}
	if s.Firmware.Data, s.Firmware.File, err = readInput(f.ovmf, "--ovmf", ovmf.MaxSize); err != nil {
		return nil, err
	}
	if f.snpOVMFHash != "" {
		h, err := hex.DecodeString(strings.TrimPrefix(f.snpOVMFHash, "0x"))
		if err != nil || len(h) != snp.DigestSize {
			return nil, usage("--snp-ovmf-hash must be %d bytes of hex (the output of --mode snp:ovmf-hash)", snp.DigestSize)
		}
		s.OVMFHash = h
	}
	if f.kernel != "" {
		if err := qemu.CheckCmdline(f.appendArg); err != nil {
			return nil, outcome.UsageError(fmt.Errorf("--append: %w", err))
		}
		if s.Boot, err = hashBoot(f.kernel, f.initrd, f.appendArg); err != nil {
			return nil, err
		}
	}
	if mode == snp.ModeSVSM {
		if err := svsmFromFlags(f, s); err != nil {
			return nil, err
		}
	} else if f.svsm != "" || f.varsSize != "" || f.varsFile != "" {
		return nil, usage("--svsm, --vars-size and --vars-file are for --mode snp:svsm")
	}
	return s, nil
}

// measureSNP computes what cvmkit measure snp prints, without printing,
// and writes the files its flags ask for.
func (a *app) measureSNP(f *snpFlags) (*refvalues.SNP, []snp.Entry, []refvalues.SNPStep, error) {
	spec, err := a.snpSpec(f)
	if err != nil {
		return nil, nil, nil, err
	}
	res, err := snp.Measure(context.Background(), *spec)
	if err != nil {
		return nil, nil, nil, err
	}
	for i, e := range res.Entries {
		if err := writeSNPExtras(f, spec, e, res, i); err != nil {
			return nil, nil, nil, err
		}
	}
	if f.dumpVMSA != "" {
		if err := atomicfile.Dir(f.dumpVMSA, func(tmp string) error {
			_, err := writeFiles(tmp, res.VMSAs)
			return err
		}); err != nil {
			return nil, nil, nil, err
		}
	}
	return res.Doc, res.Entries, res.Steps, nil
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

// idKeysFromFlags reads the ID block flags; nil without --id-key.
func idKeysFromFlags(f *snpFlags) (*snp.IDKeys, error) {
	if f.idKey == "" {
		if f.authorKey != "" || f.familyID != "" || f.imageID != "" || f.guestSVN != 0 || f.idBlockDir != "" {
			return nil, outcome.UsageError(errors.New("--author-key, --family-id, --image-id, --guest-svn and --id-block-dir need --id-key"))
		}
		return nil, nil
	}
	id := &snp.IDKeys{GuestSVN: f.guestSVN}
	for _, x := range []struct {
		flag, val string
		dst       *[16]byte
	}{{"--family-id", f.familyID, &id.FamilyID}, {"--image-id", f.imageID, &id.ImageID}} {
		if x.val == "" {
			continue
		}
		b, err := hex.DecodeString(strings.TrimPrefix(x.val, "0x"))
		if err != nil || len(b) != 16 {
			return nil, outcome.UsageError(fmt.Errorf("%s must be 16 bytes of hex (32 digits)", x.flag))
		}
		copy(x.dst[:], b)
	}
	var err error
	if id.IDKey, err = release.ReadP384Key(f.idKey, "--id-key"); err != nil {
		return nil, err
	}
	if f.authorKey != "" {
		if id.AuthorKey, err = release.ReadP384Key(f.authorKey, "--author-key"); err != nil {
			return nil, err
		}
	}
	return id, nil
}

func svsmFromFlags(f *snpFlags, s *snp.Spec) error {
	if f.svsm == "" {
		return outcome.UsageError(errors.New("--mode snp:svsm needs --svsm"))
	}
	img, sd, err := readInput(f.svsm, "--svsm", ovmf.MaxSize)
	if err != nil {
		return err
	}
	s.SVSM = &snp.Input{Data: img, File: sd}
	switch {
	case f.varsSize != "" && f.varsFile != "":
		return outcome.UsageError(errors.New("give --vars-size or --vars-file, not both"))
	case f.varsSize != "":
		n, err := strconv.ParseUint(f.varsSize, 0, 64)
		if err != nil {
			return outcome.UsageError(fmt.Errorf("--vars-size %q is not a number of bytes", f.varsSize))
		}
		s.VarsSize = n
	case f.varsFile != "":
		fi, err := os.Stat(f.varsFile)
		if err != nil {
			return outcome.InputError(fmt.Errorf("--vars-file: %w", err))
		}
		s.VarsSize = uint64(fi.Size())
	default:
		return outcome.UsageError(errors.New("--mode snp:svsm needs --vars-size or --vars-file"))
	}
	return nil
}

// writeSNPExtras writes what --id-block-dir and --sev-check-dir ask for
// one digest, and lists the files in its entry.
func writeSNPExtras(f *snpFlags, spec *snp.Spec, e snp.Entry, res *snp.Result, i int) error {
	se := &res.Doc.Measurements[i]
	name := e.Name()
	if f.idBlockDir != "" {
		files, err := writeFiles(f.idBlockDir, map[string][]byte{name + ".id-block.bin": res.IDBlocks[i][0], name + ".id-auth.bin": res.IDBlocks[i][1]})
		if err != nil {
			return err
		}
		se.Files = append(se.Files, files...)
	}
	if f.sevCheckDir == "" {
		return nil
	}
	chk, err := res.Doc.Pins(*se, "the measurement")
	if err != nil {
		return err
	}
	checks, err := policy.SEVCheckFiles(name, chk)
	if err != nil {
		return err
	}
	files, err := writeFiles(f.sevCheckDir, checks)
	if err != nil {
		return err
	}
	se.Files = append(se.Files, files...)
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

// hashBoot streams the kernel and initrd once into their hashes-table
// entries (SHA-256, which is also the digest the document records).
func hashBoot(kernel, initrd, cmdline string) (*snp.Boot, error) {
	kf, kd, err := openInput(kernel, "--kernel")
	if err != nil {
		return nil, err
	}
	defer kf.Close()
	b := &snp.Boot{Kernel: kd, Cmdline: cmdline}
	var ir io.Reader
	if initrd != "" {
		inf, id, err := openInput(initrd, "--initrd")
		if err != nil {
			return nil, err
		}
		defer inf.Close()
		ir, b.Initrd = inf, &id
	}
	if b.Hashes, err = snp.HashKernel(kf, ir, cmdline); err != nil {
		return nil, fmt.Errorf("hashing kernel and initrd: %w", err)
	}
	return b, nil
}
