package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/cvmkit/cvmkit/measure/tdx"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/spf13/cobra"
)

func (a *app) measureTDXReplayCmd() *cobra.Command {
	f := &tdxFlags{}
	cmd := &cobra.Command{
		Use:   "replay LOG [--firmware FILE …]",
		Short: "Replay a TDX CC event log to RTMR values and compare it with the prediction",
		Long: `Parse a CC event log (the CCEL ACPI table's log area in TCG2 crypto-agile form,
as Linux exposes it at /sys/firmware/acpi/tables/data/CCEL) and replay it to
RTMR0–3.

Given the launch inputs (the same flags as cvmkit measure tdx), it also predicts the
log, compares the two register by register and event by event, and names the first
event that differs and what that most likely means (memory size, ACPI tables,
kernel, command line, edk2 release …). Exit code 5 when they differ.`,
		Example: `  # In the guest: copy the log out
  cat /sys/firmware/acpi/tables/data/CCEL > ccel.bin

  # Replay it alone:
  cvmkit measure tdx replay ccel.bin

  # Compare it with what cvmkit predicts:
  cvmkit measure tdx replay ccel.bin --firmware OVMF.fd --edk2-profile edk2-stable202502 \
      --memory 4G --acpi-tables tables.bin --kernel vmlinuz --initrd initrd.img --cmdline "console=ttyS0"`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runReplay(cmd.Context(), args[0], f)
		},
	}
	f.register(cmd)
	completeMeasureTDX(cmd)
	return cmd
}

func (a *app) runReplay(ctx context.Context, path string, f *tdxFlags) error {
	b, d, err := readInput(path, "event log", 64<<20)
	if err != nil {
		return err
	}
	log, err := tdx.ParseLog(b)
	if err != nil {
		return outcome.InputError(fmt.Errorf("event log %q: %w", path, err), "give the CCEL log area (/sys/firmware/acpi/tables/data/CCEL), not the CCEL table header")
	}
	res := tdx.NewLogReport(log, d)
	var mismatch bool
	if f.firmware != "" {
		pres, pred, err := a.predictTDX(ctx, f)
		if err != nil {
			return err
		}
		mismatch = res.Compare(log, pres, pred)
	}
	if err := a.emit(res, func(w io.Writer) { printReplay(w, res) }); err != nil {
		return err
	}
	if mismatch {
		first := res.First[0]
		return &outcome.MismatchError{Subject: "event log " + path, Register: fmt.Sprintf("RTMR%d event %d", first.RTMR, first.Index), Want: describePredicted(first.Predicted), Got: describeLogged(first.Logged)}
	}
	return nil
}

func describePredicted(e *refvalues.TDXEvent) string {
	if e == nil {
		return "no event"
	}
	return fmt.Sprintf("%s %q %s", e.Type, e.Description, e.Digest)
}

func describeLogged(e *tdx.LoggedEvent) string {
	if e == nil {
		return "no event"
	}
	return e.Type + " " + e.Digest
}

func printReplay(w io.Writer, res *tdx.LogReport) {
	for i, r := range res.RTMR {
		status := ""
		if res.Match != nil {
			switch m := res.Match[i]; {
			case m == nil:
				status = "  (not predicted)"
			case *m:
				status = "  matches the prediction"
			default:
				status = "  DIFFERS from the prediction"
			}
		}
		fmt.Fprintf(w, "RTMR%d %s%s\n", i, r, status)
	}
	for _, d := range res.First {
		fmt.Fprintf(w, "\nRTMR%d: first difference at event %d\n  predicted: %s\n  logged:    %s\n  meaning:   %s\n", d.RTMR, d.Index, describePredicted(d.Predicted), describeLogged(d.Logged), d.Meaning)
	}
}
