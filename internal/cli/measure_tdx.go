package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/measure/ovmf"
	"github.com/cvmkit/cvmkit/measure/qemu"
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
	fl.StringVar(&f.kernelBlob, "kernel-blob", "", "qemu-patched or unpatched; default: unpatched for QEMU 10+ with edk2 202502+, else qemu-patched")
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

// predictTDX reads the inputs named by the flags and computes MRTD and the
// RTMR prediction.
func (a *app) predictTDX(ctx context.Context, f *tdxFlags) (*refvalues.TDX, *tdx.Prediction, error) {
	usage := func(format string, args ...any) error {
		return outcome.UsageError(fmt.Errorf(format, args...), "see cvmkit measure tdx --help")
	}
	if f.firmware == "" {
		return nil, nil, usage("--firmware is required")
	}
	res := &refvalues.TDX{SecureBoot: f.secureBoot, VCPUs: f.vcpus, QEMUVersion: f.qemuVersion, NotComputed: []refvalues.TDXNotComputed{}, Events: []refvalues.TDXEvent{}}
	if f.xfam != "" {
		x, err := strconv.ParseUint(f.xfam, 0, 64)
		if err != nil {
			return nil, nil, usage("--xfam %q: want a 64-bit number such as 0x642e7", f.xfam)
		}
		res.XFAM = fmt.Sprintf("%#x", x)
	}
	orders := tdx.PageOrders
	res.PageOrderSource = "both candidates (give --page-order or --qemu-version to choose)"
	qemuMajor := 0
	if f.qemuVersion != "" {
		parts := strings.Split(f.qemuVersion, ".")
		m, err := strconv.Atoi(parts[0])
		if err != nil || len(parts) > 3 || m < 6 {
			return nil, nil, usage("--qemu-version %q: want a QEMU version such as 8.2.2 or 9.2.0", f.qemuVersion)
		}
		qemuMajor = m
		orders = []tdx.PageOrder{tdx.PageOrderForQEMU(m)}
		res.PageOrderSource = "QEMU " + f.qemuVersion
	}
	if f.pageOrder != "" {
		o, err := tdx.ParsePageOrder(f.pageOrder)
		if err != nil {
			return nil, nil, outcome.UsageError(err)
		}
		if f.qemuVersion != "" && o != orders[0] {
			return nil, nil, usage("--page-order %s contradicts --qemu-version %s (%s)", o, f.qemuVersion, orders[0])
		}
		orders, res.PageOrderSource = []tdx.PageOrder{o}, "--page-order"
	}
	var memory int64
	if f.memory != "" {
		var err error
		if memory, err = config.ParseSize(f.memory); err != nil || memory < 32<<20 {
			return nil, nil, usage("--memory %q: give the guest memory with a unit, such as 2G", f.memory)
		}
		if memory%(1<<20) != 0 {
			return nil, nil, usage("--memory %q: QEMU takes whole MiB", f.memory)
		}
		res.Memory = memory
	}
	image, fd, err := readInput(f.firmware, "--firmware", ovmf.MaxSize)
	if err != nil {
		return nil, nil, err
	}
	res.Firmware = fd
	td, err := ovmf.ParseTDVF(image)
	if err != nil {
		return nil, nil, outcome.InputError(fmt.Errorf("firmware %q: %w", f.firmware, err), "give the whole OVMF.fd built with TDX support (IntelTdxX64 or OvmfPkgX64), the file QEMU loads with -bios")
	}
	for _, s := range td.Sections {
		res.Sections = append(res.Sections, refvalues.TDVFSection{DataOffset: s.DataOffset, RawDataSize: s.RawDataSize, MemoryAddress: s.MemoryAddress,
			MemoryDataSize: s.MemoryDataSize, Type: s.Type.String(), Attributes: s.Attributes})
	}
	for _, o := range orders {
		m, err := tdx.MRTD(ctx, image, td, o)
		if err != nil {
			return nil, nil, err
		}
		res.MRTD = append(res.MRTD, refvalues.MRTD{PageOrder: string(o), Value: hex.EncodeToString(m[:])})
	}

	in := tdx.Inputs{Image: image, TDVF: td, Memory: uint64(memory)}
	profileGiven := f.profile != ""
	if profileGiven {
		if in.Profile, err = tdx.ParseProfile(f.profile); err != nil {
			return nil, nil, outcome.UsageError(err)
		}
		res.Profile = string(in.Profile)
	}
	if f.kernel == "" && (f.initrd != "" || f.cmdline != "") {
		return nil, nil, usage("--initrd and --cmdline are measured only with --kernel")
	}
	if f.acpiTables != "" {
		b, d, err := readInput(f.acpiTables, "--acpi-tables", 64<<20)
		if err != nil {
			return nil, nil, err
		}
		in.ACPITables, res.ACPITables = b, &d
	}
	if f.kernel != "" {
		b, d, err := readInput(f.kernel, "--kernel", 512<<20)
		if err != nil {
			return nil, nil, err
		}
		in.Kernel, res.Kernel = b, &d
		// Whether RTMR2 holds the command line and initrd depends on the
		// guest kernel: read it, never assume it.
		info, err := tdx.ReadKernelInfo(b)
		switch {
		case f.guestCC.set:
			in.GuestMeasuresCC, res.GuestCCSource, res.GuestCCGiven = f.guestCC.value, or(f.guestCC.source, "--guest-measures-rtmr2"), true
			if err == nil {
				res.KernelVersion = info.Version
			}
		case err != nil:
			return nil, nil, outcome.InputError(fmt.Errorf("--kernel %q: reading its version: %w", f.kernel, err),
				"give --guest-measures-rtmr2=true or =false to say whether its EFI stub measures into RTMR2 (Linux 6.9 and later do)")
		default:
			in.GuestMeasuresCC, res.GuestCCSource, res.KernelVersion = info.MeasuresCC, info.Reason, info.Version
		}
		guestCC := in.GuestMeasuresCC
		res.GuestCC = &guestCC
		if f.initrd != "" {
			b, d, err := readInput(f.initrd, "--initrd", 4<<30)
			if err != nil {
				return nil, nil, err
			}
			in.Initrd, in.HasInitrd, res.Initrd = b, true, &d
		}
		in.Cmdline = f.cmdline
	}
	in.KernelBlob = tdx.KernelPatched
	switch f.kernelBlob {
	case "":
		if qemuMajor >= 10 && in.Profile != "" && in.Profile != tdx.Edk2Stable202408 {
			in.KernelBlob = tdx.KernelUnpatched
		}
	case string(tdx.KernelPatched), string(tdx.KernelUnpatched):
		in.KernelBlob = tdx.KernelBlob(f.kernelBlob)
	default:
		return nil, nil, usage("--kernel-blob %q: want qemu-patched or unpatched", f.kernelBlob)
	}
	if f.kernel != "" {
		res.KernelBlob = string(in.KernelBlob)
	}
	if in.KernelBlob == tdx.KernelPatched && f.kernel != "" && memory == 0 {
		return nil, nil, usage("QEMU's kernel patch depends on the memory size: give --memory (or --kernel-blob unpatched for QEMU 10+ with edk2 202502+)")
	}
	cfv, ok := td.Section(ovmf.TDVFCFV)
	if !ok {
		return nil, nil, outcome.InputError(fmt.Errorf("firmware %q has no CFV section in its TDX metadata", f.firmware))
	}
	if in.SecureBoot, err = tdx.SecureBootFromStore(image[cfv.DataOffset:cfv.DataOffset+cfv.RawDataSize], tdx.SecureBootState(f.secureBoot)); err != nil {
		return nil, nil, outcome.InputError(fmt.Errorf("firmware %q: %w", f.firmware, err))
	}
	for _, s := range f.rtmr3 {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != tdx.DigestSize {
			return nil, nil, usage("--rtmr3-extend %q: want 48 bytes of hex", s)
		}
		in.RTMR3 = append(in.RTMR3, [tdx.DigestSize]byte(b))
	}

	var pred *tdx.Prediction
	if profileGiven {
		if pred, err = tdx.Predict(in); err != nil {
			if errors.Is(err, qemu.ErrInvalidVGA) {
				return nil, nil, outcome.UsageError(fmt.Errorf("--cmdline: %w", err))
			}
			return nil, nil, outcome.InputError(err)
		}
		for i, r := range pred.RTMR {
			if r != nil {
				s := hex.EncodeToString(r[:])
				res.RTMR[i] = &s
			} else {
				res.NotComputed = append(res.NotComputed, refvalues.TDXNotComputed{RTMR: i, Reason: pred.NotComputable[i]})
			}
		}
		for _, e := range pred.Events {
			res.Events = append(res.Events, refvalues.TDXEvent{RTMR: e.RTMR, Type: tdx.EventTypeName(e.Type), Description: e.Description, Digest: hex.EncodeToString(e.Digest[:])})
		}
		res.UKI = pred.UKI
		if f.kernel != "" {
			res.Cmdline = &refvalues.TDXCmd{Value: f.cmdline, LoadOptions: pred.LoadOptions}
		}
	} else {
		for i := 0; i < 3; i++ {
			res.NotComputed = append(res.NotComputed, refvalues.TDXNotComputed{RTMR: i, Reason: "which events the firmware logs depends on its edk2 release: give --edk2-profile"})
		}
		// The firmware never touches RTMR3.
		var r3 [tdx.DigestSize]byte
		for _, d := range in.RTMR3 {
			tdx.Extend(&r3, d)
		}
		s := hex.EncodeToString(r3[:])
		res.RTMR[3] = &s
	}
	if f.eventLogOut != "" {
		if pred == nil {
			return nil, nil, usage("--event-log-out needs --edk2-profile")
		}
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

// writeTDXChecks writes a go-tdx-guest policy per MRTD candidate, named
// tdx-<page order>.
func writeTDXChecks(dir string, res *refvalues.TDX) ([]string, error) {
	var rtmrs [4][]byte
	for i, r := range res.RTMR {
		if r != nil {
			rtmrs[i], _ = hex.DecodeString(*r)
		}
	}
	// The values themselves as canonical JSON (RFC 8785: sorted keys, no
	// whitespace; every value is ASCII hex or null), for consumers that pin
	// them without go-tdx-guest.
	values := map[string]any{"edk2_profile": res.Profile}
	mrtds := map[string]string{}
	for _, m := range res.MRTD {
		mrtds[m.PageOrder] = m.Value
	}
	values["mrtd"] = mrtds
	for i, r := range res.RTMR {
		values[fmt.Sprintf("rtmr%d", i)] = r
	}
	canonical, err := json.Marshal(values)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"tdx-values.json": canonical}
	for _, m := range res.MRTD {
		mrtd, _ := hex.DecodeString(m.Value)
		cfg, err := policy.TDXCheckConfig(policy.TDXCheck{MRTD: mrtd, RTMRs: rtmrs})
		if err != nil {
			return nil, err
		}
		bin, text, err := policy.Encode(cfg, "tdx "+m.PageOrder)
		if err != nil {
			return nil, err
		}
		files["tdx-"+m.PageOrder+".binpb"], files["tdx-"+m.PageOrder+".textproto"] = bin, text
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
