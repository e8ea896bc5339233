package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/internal/fileio"
	"github.com/cvmkit/cvmkit/measure/ovmf"
	"github.com/cvmkit/cvmkit/measure/tdx"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/policy"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/spf13/cobra"
)

// tdxFlags are the launch inputs of a TD, shared by measure tdx and
// measure tdx replay.
type tdxFlags struct {
	firmware, pageOrder, qemuVersion, memory string
	vcpus                                    int
	kernel, initrd, cmdline, acpiTables      string
	profile, kernelBlob, secureBoot          string
	// guestCC is --guest-measures-rtmr2: unset means read it from the
	// kernel's version.
	guestCC                  optionalBool
	rtmr3                    []string
	tdxCheckDir, eventLogOut string
	xfam                     string
}

func (f *tdxFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.firmware, "firmware", "", "TDVF/OVMF firmware given to QEMU -bios (required)")
	fl.StringVar(&f.pageOrder, "page-order", "", "single-pass (QEMU 9+) or two-pass (QEMU 8.x); default: from --qemu-version, else both")
	fl.StringVar(&f.qemuVersion, "qemu-version", "", "the host's QEMU version, e.g. 9.2.0: selects the page order and how the kernel is loaded")
	fl.StringVar(&f.memory, "memory", "", "guest memory as given to QEMU -m, e.g. 2G (needed for RTMR0 and the kernel patch)")
	fl.IntVar(&f.vcpus, "vcpus", 0, "vCPU count (recorded; the ACPI tables must be for this count)")
	fl.StringVar(&f.kernel, "kernel", "", "kernel given to -kernel: a bzImage or a UKI")
	fl.StringVar(&f.initrd, "initrd", "", "initrd given to -initrd")
	fl.StringVar(&f.cmdline, "cmdline", "", "kernel command line given to -append")
	fl.StringVar(&f.acpiTables, "acpi-tables", "", "QEMU's etc/acpi/tables blob for this VM shape (needed for RTMR0)")
	fl.StringVar(&f.profile, "edk2-profile", "", "edk2 release of the firmware: edk2-stable202408.01, edk2-stable202502 (202411–202502), edk2-stable202505, edk2-stable202508 (or a release tag)")
	fl.StringVar(&f.kernelBlob, "kernel-blob", "", "qemu-patched or unpatched; default: decided from --qemu-version and --edk2-profile (docs/measure-tdx.md)")
	fl.StringVar(&f.secureBoot, "secure-boot", "absent", "SecureBoot variable: absent (firmware without secure boot), disabled or enabled; keys come from the firmware's variable store")
	fl.Var(&f.guestCC, "guest-measures-rtmr2", "whether the guest kernel's EFI stub measures the command line and initrd into RTMR2 (default: read from the kernel's version, true from Linux 6.9)")
	fl.Lookup("guest-measures-rtmr2").NoOptDefVal = "true"
	fl.StringSliceVar(&f.rtmr3, "rtmr3-extend", nil, "SHA-384 digests (hex) the guest extends into RTMR3, in order")
	fl.StringVar(&f.xfam, "xfam", "0x642e7", "the TD's XFAM, recorded for key-authority policies (Trustee's EAR policy checks it); QEMU -cpu host on Sapphire/Emerald Rapids gives 0x642e7")
}

func (a *app) measureTDXCmd() *cobra.Command {
	f := &tdxFlags{}
	var explain bool
	cmd := &cobra.Command{
		Use:   "tdx --firmware FILE [flags]",
		Short: "Compute Intel TDX MRTD and RTMR0–3 for a QEMU direct kernel boot",
		Long: `Compute the values an Intel TDX quote carries for a TD that QEMU launches with
-bios FIRMWARE -kernel -initrd -append: MRTD from the firmware's TDX metadata, and
RTMR0–3 by predicting the event log that OVMF and the Linux EFI stub write.

MRTD depends on the order the host adds pages: single-pass (QEMU 9 and later) or
two-pass (QEMU 8.x). --page-order or --qemu-version chooses; with neither, both
candidates are printed.

RTMR0 covers the TD HOB (memory size), the variable store, Secure Boot variables,
QEMU's ACPI tables (--acpi-tables) and boot variables; RTMR1 the kernel (after
QEMU's setup header patch, which depends on the initrd and memory size, unless
--kernel-blob unpatched); RTMR2 the command line as the kernel receives it and the
initrd. Which events exist depends on the edk2 release (--edk2-profile), which is
always reported. A value that cannot be computed from the inputs is reported as
not computed, with the reason, never guessed. The method and its limits are in
docs/measure-tdx.md.`,
		Example: `  # MRTD for both page orders:
  cvmkit measure tdx --firmware OVMF.fd

  # Everything, for Debian trixie's OVMF under QEMU 9.2 with 4 GiB:
  cvmkit measure tdx --firmware OVMF.fd --qemu-version 9.2.0 --edk2-profile edk2-stable202502 \
      --memory 4G --vcpus 2 --acpi-tables acpi-tables.bin \
      --kernel vmlinuz --initrd initrd.img --cmdline "console=ttyS0" --json

  # go-tdx-guest policies, one per MRTD candidate:
  cvmkit measure tdx --firmware OVMF.fd --edk2-profile edk2-stable202502 --memory 2G \
      --acpi-tables t.bin --kernel vmlinuz --tdx-check-dir policies/`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, _, err := a.predictTDX(cmd.Context(), f)
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) {
				if explain {
					printTDXEvents(w, res)
				}
				printTDX(w, res)
			})
		},
	}
	f.register(cmd)
	completeMeasureTDX(cmd)
	cmd.Flags().BoolVar(&explain, "explain", false, "print the predicted event table (RTMR, type, digest, what it measures) before the registers")
	cmd.Flags().StringVar(&f.tdxCheckDir, "tdx-check-dir", "", "write a go-tdx-guest check policy per MRTD candidate (tdx-ORDER.binpb, .textproto) and the values as canonical JSON (tdx-values.json) into this folder")
	cmd.Flags().StringVar(&f.eventLogOut, "event-log-out", "", "write the predicted event log (TCG2 crypto-agile, SHA-384) to this file")
	cmd.AddCommand(a.measureTDXReplayCmd())
	return cmd
}

// printTDXEvents is --explain: every predicted event in extend order, the
// table measure tdx replay compares a real log with.
func printTDXEvents(w io.Writer, res *refvalues.TDX) {
	fmt.Fprintf(w, "%-5s %-3s %-32s %-96s  %s\n", "RTMR", "#", "EVENT TYPE", "DIGEST (SHA-384)", "WHAT")
	index := map[int]int{}
	for _, e := range res.Events {
		fmt.Fprintf(w, "%-5d %-3d %-32s %-96s  %s\n", e.RTMR, index[e.RTMR], e.Type, e.Digest, e.Description)
		index[e.RTMR]++
	}
	if len(res.Events) == 0 {
		fmt.Fprintln(w, "(no events predicted: give --edk2-profile, and --kernel for RTMR1/2)")
	}
	fmt.Fprintln(w)
}

func printTDX(w io.Writer, res *refvalues.TDX) {
	for _, m := range res.MRTD {
		fmt.Fprintf(w, "%-19s %s\n", "MRTD ("+m.PageOrder+")", m.Value)
	}
	reasons := map[int]string{}
	for _, n := range res.NotComputed {
		reasons[n.RTMR] = n.Reason
	}
	for i, r := range res.RTMR {
		if r != nil && i == 2 && res.GuestCC != nil && !*res.GuestCC {
			fmt.Fprintf(w, "%-19s %s (zero: %s)\n", "RTMR2", *r, res.GuestCCSource)
		} else if r != nil {
			fmt.Fprintf(w, "%-19s %s\n", fmt.Sprintf("RTMR%d", i), *r)
		} else {
			fmt.Fprintf(w, "%-19s not computed: %s\n", fmt.Sprintf("RTMR%d", i), reasons[i])
		}
	}
	if res.Profile != "" {
		fmt.Fprintf(w, "%-19s %s\n", "edk2 profile", res.Profile)
	}
}

// tdxSpec is the adapter from flags to a measurement spec: it parses the
// flags and reads the files they name.
func tdxSpec(f *tdxFlags) (*tdx.Spec, error) {
	usage := func(format string, args ...any) error {
		return outcome.UsageError(fmt.Errorf(format, args...), "see cvmkit measure tdx --help")
	}
	if f.firmware == "" {
		return nil, usage("--firmware is required")
	}
	s := &tdx.Spec{QEMUVersion: f.qemuVersion, VCPUs: f.vcpus, SecureBoot: tdx.SecureBootState(f.secureBoot), Cmdline: f.cmdline,
		Name: func(k string) string { return "--" + k }}
	if f.xfam != "" {
		x, err := strconv.ParseUint(f.xfam, 0, 64)
		if err != nil {
			return nil, usage("--xfam %q: want a 64-bit number such as 0x642e7", f.xfam)
		}
		s.XFAM = &x
	}
	if f.qemuVersion != "" {
		if _, err := tdx.ParseQEMUVersion(f.qemuVersion); err != nil {
			return nil, usage("--qemu-version %w", err)
		}
	}
	if f.pageOrder != "" {
		o, err := tdx.ParsePageOrder(f.pageOrder)
		if err != nil {
			return nil, outcome.UsageError(err)
		}
		if q, _ := tdx.ParseQEMUVersion(f.qemuVersion); f.qemuVersion != "" && o != tdx.PageOrderForQEMU(q.Major) {
			return nil, usage("--page-order %s contradicts --qemu-version %s (%s)", o, f.qemuVersion, tdx.PageOrderForQEMU(q.Major))
		}
		s.PageOrder = o
	}
	if f.memory != "" {
		var err error
		if s.Memory, err = config.ParseSize(f.memory); err != nil || s.Memory < 32<<20 {
			return nil, usage("--memory %q: give the guest memory with a unit, such as 2G", f.memory)
		}
		if s.Memory%(1<<20) != 0 {
			return nil, usage("--memory %q: QEMU takes whole MiB", f.memory)
		}
	}
	var err error
	if s.Firmware.Data, s.Firmware.File, err = readInput(f.firmware, "--firmware", ovmf.MaxSize); err != nil {
		return nil, err
	}
	if f.profile != "" {
		if s.Profile, err = tdx.ParseProfile(f.profile); err != nil {
			return nil, outcome.UsageError(err)
		}
	}
	if f.kernel == "" && (f.initrd != "" || f.cmdline != "") {
		return nil, usage("--initrd and --cmdline are measured only with --kernel")
	}
	read := func(path, flag string, max int64) (*tdx.Input, error) {
		if path == "" {
			return nil, nil
		}
		b, d, err := readInput(path, flag, max)
		if err != nil {
			return nil, err
		}
		return &tdx.Input{Data: b, File: d}, nil
	}
	if s.ACPITables, err = read(f.acpiTables, "--acpi-tables", 64<<20); err != nil {
		return nil, err
	}
	if s.Kernel, err = read(f.kernel, "--kernel", 512<<20); err != nil {
		return nil, err
	}
	if f.guestCC.set {
		v := f.guestCC.value
		s.GuestMeasuresRTMR2, s.GuestSource = &v, f.guestCC.source
	}
	if f.initrd != "" { // needed by its SHA-384 and size only: streamed
		d, err := fileio.Digest(f.initrd, "--initrd", 4<<30)
		if err != nil {
			return nil, err
		}
		s.Initrd = &tdx.Input{File: d}
	}
	switch f.kernelBlob {
	case "":
	case string(tdx.KernelPatched), string(tdx.KernelUnpatched):
		s.KernelBlob = tdx.KernelBlob(f.kernelBlob)
	default:
		return nil, usage("--kernel-blob %q: want qemu-patched or unpatched", f.kernelBlob)
	}
	for _, r := range f.rtmr3 {
		b, err := hex.DecodeString(r)
		if err != nil || len(b) != tdx.DigestSize {
			return nil, usage("--rtmr3-extend %q: want 48 bytes of hex", r)
		}
		s.RTMR3 = append(s.RTMR3, [tdx.DigestSize]byte(b))
	}
	return s, nil
}

// predictTDX reads the inputs named by the flags, computes MRTD and the
// RTMR prediction, and writes the files the flags ask for.
func (a *app) predictTDX(ctx context.Context, f *tdxFlags) (*refvalues.TDX, *tdx.Prediction, error) {
	spec, err := tdxSpec(f)
	if err != nil {
		return nil, nil, err
	}
	if f.eventLogOut != "" && spec.Profile == "" {
		return nil, nil, outcome.UsageError(errors.New("--event-log-out needs --edk2-profile"), "see cvmkit measure tdx --help")
	}
	res, pred, err := tdx.Measure(ctx, *spec)
	if err != nil {
		return nil, nil, err
	}
	if f.eventLogOut != "" {
		if err := atomicfile.WriteFile(f.eventLogOut, tdx.EncodeLog(pred.Events), 0o644); err != nil {
			return nil, nil, err
		}
		res.Files = append(res.Files, f.eventLogOut)
	}
	if f.tdxCheckDir != "" {
		files, err := writeTDXChecks(f.tdxCheckDir, res)
		if err != nil {
			return nil, nil, err
		}
		res.Files = append(res.Files, files...)
	}
	return res, pred, nil
}

// writeTDXChecks writes policy.TDXCheckFiles into dir.
func writeTDXChecks(dir string, res *refvalues.TDX) ([]string, error) {
	files, err := policy.TDXCheckFiles(res)
	if err != nil {
		return nil, err
	}
	return writeFiles(dir, files)
}

// optionalBool is a boolean flag whose absence is distinct from false
// (--guest-measures-rtmr2: unset means "read it from the input").
type optionalBool struct {
	set, value bool
	// source names where a value that was not a flag came from (a config
	// key or a release document).
	source string
}

func (b *optionalBool) String() string {
	if !b.set {
		return "auto"
	}
	return strconv.FormatBool(b.value)
}

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	b.set, b.value = true, v
	return nil
}

func (b *optionalBool) Type() string     { return "bool" }
func (b *optionalBool) IsBoolFlag() bool { return true }
