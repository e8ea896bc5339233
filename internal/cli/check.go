package cli

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cvmkit/cvmkit/evidence"
	"github.com/cvmkit/cvmkit/internal/fileio"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/cvmkit/cvmkit/verify"
	"github.com/spf13/cobra"
)

func (a *app) checkCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check evidence from a real VM against a release (SEV-SNP report, TDX quote)",
		Long: `Answer "does this VM run this release, and if not, what differs": verify the
evidence a confidential VM produced (its signature and certificate chain up to
the vendor roots pinned in cvmkit, offline, at --verify-at), then find the
release configuration it matches and compare every field the release fixes.

Run 'cvmkit verify DIR --key …' first: check reads the release's reference
values as they are. See docs/check.md.`,
		Example: `  cvmkit check snp dist --report report.bin --vcek vcek.der
  cvmkit check tdx dist --quote quote.dat`,
	}
	cmd.AddCommand(a.checkSNPCmd(), a.checkTDXCmd())
	return group(cmd)
}

// checkGPUFlags are the GPU evidence a CPU check can take in the same
// call, so that one command answers for a confidential AI VM.
type checkGPUFlags struct {
	evidence string
	nonce    hexFlag
}

func (g *checkGPUFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&g.evidence, "gpu-evidence", "", "NVIDIA GPU evidence JSON (attestation SDK, NRAS or Trustee format), checked against the release's gpu/gpu-reference.json as 'cvmkit gpu check' does")
	g.nonce.register(cmd, "gpu-nonce", "the nonce the verifier sent the GPUs, 64 hex digits")
}

// read reads the GPU evidence flags (nil without --gpu-evidence).
func (g *checkGPUFlags) read(cmd *cobra.Command) (*verify.GPUEvidence, error) {
	nonce, err := g.nonce.bytes(cmd, 32, 32)
	if err != nil {
		return nil, err
	}
	if g.evidence == "" {
		if nonce != nil {
			return nil, outcome.UsageError(errors.New("--gpu-nonce without --gpu-evidence"))
		}
		return nil, nil
	}
	items, err := readGPUEvidence("", "", g.evidence)
	if err != nil {
		return nil, err
	}
	return &verify.GPUEvidence{Items: items, Nonce: nonce}, nil
}

// hexFlag is a nonce flag: given, it must not be empty (an empty value
// would silently compare nothing).
type hexFlag struct{ name, value string }

func (f *hexFlag) register(cmd *cobra.Command, name, usage string) {
	f.name = name
	cmd.Flags().StringVar(&f.value, name, "", usage)
}

// bytes decodes the flag: nil when it was not given; an error when it was
// given empty, is not hex, or is not min..max bytes.
func (f *hexFlag) bytes(cmd *cobra.Command, min, max int) ([]byte, error) {
	if !cmd.Flags().Changed(f.name) {
		return nil, nil
	}
	v := strings.TrimSpace(f.value)
	if v == "" {
		return nil, outcome.UsageError(fmt.Errorf("--%s is empty: an empty nonce compares nothing", f.name), "give the nonce the verifier sent as hex, or leave the flag out to not compare one")
	}
	b, err := hex.DecodeString(v)
	if err != nil || len(b) < min || len(b) > max {
		want := fmt.Sprintf("%d bytes", max)
		if min != max {
			want = fmt.Sprintf("%d to %d bytes", min, max)
		}
		return nil, outcome.UsageError(fmt.Errorf("--%s %q: want %s as hex", f.name, f.value, want), "give the nonce the verifier sent, e.g. --"+f.name+" $(cat nonce.hex)")
	}
	return b, nil
}

// evidenceFile is an evidence input named by a flag: its path ("" reads
// nothing), its size limit and where its bytes go.
type evidenceFile struct {
	path, flag string
	max        int64
	dst        *[]byte
}

// readEvidenceFiles reads each given input through its size limit.
func readEvidenceFiles(files ...evidenceFile) error {
	for _, f := range files {
		if f.path == "" {
			continue
		}
		b, err := fileio.ReadAll(f.path, f.flag, f.max)
		if err != nil {
			return err
		}
		*f.dst = b
	}
	return nil
}

func (a *app) checkSNPCmd() *cobra.Command {
	var report, vcek, product, roots string
	var nonce hexFlag
	var at verifyAtFlag
	var gpus checkGPUFlags
	cmd := &cobra.Command{
		Use:   "snp RELEASE_DIR --report FILE --vcek FILE",
		Short: "Check an SEV-SNP attestation report against a release",
		Long: `Verify an AMD SEV-SNP attestation report offline with go-sev-guest (the
report's signature with the VCEK or VLEK, the certificate up to the AMD ARK
and ASK pinned in cvmkit, valid at --verify-at), then find the configuration
of the release (measurements/snp-*.json) whose MEASUREMENT it carries and
compare the guest POLICY, HOST_DATA and ID block key digests where the release
fixes them, REPORTED_TCB against the release's minimum, and REPORT_DATA
against --nonce.

The report is the raw 1184-byte report (/dev/sev-guest, 'snpguest report'),
or go-sev-guest's Attestation protobuf, binary or text, which may carry the
certificates. The VCEK is AMD KDS's certificate for the chip and TCB, DER or
PEM ('snpguest fetch vcek').

Exit codes: 4 the report is not authentic; 5 no configuration has its
measurement, or a field differs; 6 only the TCB is older than the minimum.`,
		Example: `  cvmkit check snp dist --report report.bin --vcek vcek.der
  cvmkit check snp dist --report attestation.binpb --nonce 0011… --json
  cvmkit check snp dist --report report.bin --vcek vcek.pem --product Genoa --verify-at 2026-01-01`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if report == "" {
				return outcome.UsageError(errors.New("--report is required"), "give the attestation report, e.g. report.bin from 'snpguest report'")
			}
			o, err := evidenceOptions(cmd, &at, &nonce, &gpus)
			if err != nil {
				return err
			}
			ev := verify.SNPEvidence{Source: report, Product: product}
			if err := readEvidenceFiles(evidenceFile{report, "--report", evidence.MaxReportSize, &ev.Report},
				evidenceFile{vcek, "--vcek", evidence.MaxCertificateSize, &ev.VCEK}, evidenceFile{roots, "--amd-roots", evidence.MaxCertificateSize, &ev.Roots}); err != nil {
				return err
			}
			rel, err := readRelease(args[0])
			if err != nil {
				return err
			}
			res, err := verify.CheckSNP(cmd.Context(), rel, ev, o)
			return a.renderCheck(res, err)
		},
	}
	cmd.Flags().StringVar(&report, "report", "", "the attestation report: raw (1184 bytes) or a go-sev-guest Attestation protobuf")
	cmd.Flags().StringVar(&vcek, "vcek", "", "the VCEK (or VLEK) certificate, DER or PEM, from AMD's KDS")
	cmd.Flags().StringVar(&product, "product", "", "the product line (Milan, Genoa, Turin) when the report does not say it")
	nonce.register(cmd, "nonce", "the REPORT_DATA the verifier asked for, hex (up to 64 bytes; the rest must be zero)")
	cmd.Flags().StringVar(&roots, "amd-roots", "", "PEM ASK+ARK to trust instead of the pinned AMD roots (private or test chains only)")
	at.register(cmd, "the certificates")
	gpus.register(cmd)
	return cmd
}

// evidenceOptions reads the flags every check takes: the verification
// time, the report-data nonce and the GPU evidence.
func evidenceOptions(cmd *cobra.Command, at *verifyAtFlag, nonce *hexFlag, gpus *checkGPUFlags) (verify.EvidenceOptions, error) {
	var o verify.EvidenceOptions
	var err error
	if o.At, err = at.time(); err != nil {
		return o, err
	}
	if o.Nonce, err = nonce.bytes(cmd, 1, 64); err != nil {
		return o, err
	}
	o.GPU, err = gpus.read(cmd)
	return o, err
}

// renderCheck prints a check's result (when there is one) and returns the
// error its exit code comes from.
func (a *app) renderCheck(res *verify.EvidenceCheck, err error) error {
	if res == nil {
		return err
	}
	if eerr := a.emit(res, func(w io.Writer) { printCheck(w, res) }); eerr != nil {
		return eerr
	}
	return err
}

func printCheck(w io.Writer, res *verify.EvidenceCheck) {
	if res.Release != "" {
		fmt.Fprintf(w, "release        %s\n", refvalues.DisplayPath(res.Release))
	}
	fmt.Fprintf(w, "evidence       %s\n", refvalues.DisplayPath(res.Evidence))
	fmt.Fprintf(w, "authentic      %s\n", res.Authentic)
	if m := res.Match; m != nil {
		if m.Configuration != "" {
			fmt.Fprintf(w, "configuration  %s\n", m.Configuration)
		}
		if b := res.Binding; b != nil {
			fmt.Fprintf(w, "binds          %s\n", strings.Join(b.Binds, ", "))
			if len(b.Unbound) > 0 {
				fmt.Fprintf(w, "unbound        %s\n", strings.Join(b.Unbound, ", "))
				for _, u := range b.Unbound {
					fmt.Fprintf(w, "  %-12s %s\n", u, b.Why[u])
				}
			}
		}
		fmt.Fprintf(w, "\n%-18s %-12s %s\n", "FIELD", "RESULT", "GOT / WANT")
		for _, f := range m.Fields {
			r := "ok"
			switch {
			case !f.OK:
				r = "DIFFERS"
			case strings.HasPrefix(f.Want, evidence.NotCompared):
				r = "not compared"
			}
			fmt.Fprintf(w, "%-18s %-12s %s\n", f.Name, r, f.Got)
			if !f.OK || r == "not compared" {
				fmt.Fprintf(w, "%-18s %-12s %s\n", "", "want", f.Want)
			}
		}
	}
	if rp := res.Replay; rp != nil {
		fmt.Fprintf(w, "\nevent log      %d events replayed\n", rp.Events)
		for _, l := range rp.Lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	if res.GPU != nil {
		fmt.Fprintln(w)
		printGPUCheck(w, res.GPU)
	}
	fmt.Fprintf(w, "\n%s\n", res.Verdict)
}

// readRelease reads a release folder's documents for a check.
func readRelease(dir string) (*refvalues.Release, error) {
	r, err := refvalues.ReadRelease(dir)
	if err != nil {
		return nil, outcome.InputError(err)
	}
	return r, nil
}

func (a *app) checkTDXCmd() *cobra.Command {
	var quote, eventLog, roots, tcbInfo, qeIdentity, tcbChain string
	var nonce hexFlag
	var at verifyAtFlag
	var gpus checkGPUFlags
	cmd := &cobra.Command{
		Use:   "tdx RELEASE_DIR --quote FILE [--event-log CCEL]",
		Short: "Check an Intel TDX quote (and its CC event log) against a release",
		Long: `Verify an Intel TDX quote offline with go-tdx-guest (the quote's signature by
the quoting enclave's attestation key, the QE report, and the PCK certificate
chain in the quote up to the Intel SGX root CA pinned in cvmkit, valid at
--verify-at), then find the configuration of the release
(measurements/tdx-*.json) whose MRTD it carries and compare RTMR0–3 where the
release computed them, XFAM, the DEBUG attribute and REPORTDATA (--nonce).

With --event-log (the CC event log: /sys/firmware/acpi/tables/data/CCEL in the
guest), the log is replayed: it must fold to the quote's RTMRs (so it is the
log this TD measured), and its events are compared with the events the
release predicted; the first differing event is named with what it means.

The quote is Intel's binary format version 4 (configfs-tsm's outblob, the
QGS's answer) or a go-tdx-guest QuoteV4 protobuf.

Exit codes: 4 the quote is not authentic; 5 no configuration has its MRTD, or
a register or event differs; 6 only the DEBUG attribute is set.`,
		Example: `  cvmkit check tdx dist --quote quote.dat
  cvmkit check tdx dist --quote quote.dat --event-log CCEL --nonce 0011… --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if quote == "" {
				return outcome.UsageError(errors.New("--quote is required"), "give the TD quote, e.g. the outblob of a configfs-tsm report")
			}
			o, err := evidenceOptions(cmd, &at, &nonce, &gpus)
			if err != nil {
				return err
			}
			ev := verify.TDXEvidence{Source: quote}
			if err := readEvidenceFiles(evidenceFile{quote, "--quote", evidence.MaxQuoteSize, &ev.Quote},
				evidenceFile{roots, "--intel-roots", evidence.MaxCertificateSize, &ev.Roots}, evidenceFile{eventLog, "--event-log", evidence.MaxEventLogSize, &ev.EventLog}); err != nil {
				return err
			}
			if ev.Collateral, err = readCollateral(tcbInfo, qeIdentity, tcbChain); err != nil {
				return err
			}
			rel, err := readRelease(args[0])
			if err != nil {
				return err
			}
			res, err := verify.CheckTDX(cmd.Context(), rel, ev, o)
			return a.renderCheck(res, err)
		},
	}
	cmd.Flags().StringVar(&quote, "quote", "", "the TD quote: Intel's version 4 binary format or a go-tdx-guest QuoteV4 protobuf")
	cmd.Flags().StringVar(&eventLog, "event-log", "", "the TD's CC event log (CCEL data) to replay and compare")
	nonce.register(cmd, "nonce", "the REPORTDATA the verifier asked for, hex (up to 64 bytes; the rest must be zero)")
	cmd.Flags().StringVar(&tcbInfo, "tcb-info", "", "Intel PCS TDX TCB info for the platform (the JSON body of /tdx/certification/v4/tcb?fmspc=…)")
	cmd.Flags().StringVar(&qeIdentity, "qe-identity", "", "Intel PCS TD quoting enclave identity (the JSON body of /tdx/certification/v4/qe/identity)")
	cmd.Flags().StringVar(&tcbChain, "tcb-signing-chain", "", "the issuer chain PCS sends with them (PEM: Intel SGX TCB Signing, then the root)")
	cmd.Flags().StringVar(&roots, "intel-roots", "", "PEM root CA to trust instead of the pinned Intel SGX root (private or test chains only)")
	at.register(cmd, "the PCK certificate chain (and the GPU chains)")
	gpus.register(cmd)
	return cmd
}

// readCollateral reads the three collateral files, all or none.
func readCollateral(tcbInfo, qeIdentity, chain string) (*evidence.TDXCollateral, error) {
	if tcbInfo == "" && qeIdentity == "" && chain == "" {
		return nil, nil
	}
	if tcbInfo == "" || qeIdentity == "" || chain == "" {
		return nil, outcome.UsageError(errors.New("give --tcb-info, --qe-identity and --tcb-signing-chain together"))
	}
	c := &evidence.TDXCollateral{}
	for _, f := range []struct {
		flag, path string
		dst        *[]byte
	}{{"--tcb-info", tcbInfo, &c.TCBInfo}, {"--qe-identity", qeIdentity, &c.QEIdentity}, {"--tcb-signing-chain", chain, &c.IssuerChain}} {
		b, err := fileio.ReadAll(f.path, f.flag, evidence.MaxCollateralSize)
		if err != nil {
			return nil, err
		}
		*f.dst = b
	}
	return c, nil
}
