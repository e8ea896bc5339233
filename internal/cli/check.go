package cli

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cvmkit/cvmkit/evidence"
	"github.com/cvmkit/cvmkit/measure/gpu"
	"github.com/cvmkit/cvmkit/measure/tdx"
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
	evidence, nonce string
}

func (g *checkGPUFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&g.evidence, "gpu-evidence", "", "NVIDIA GPU evidence JSON (attestation SDK, NRAS or Trustee format), checked against the release's gpu/gpu-reference.json as 'cvmkit gpu check' does")
	cmd.Flags().StringVar(&g.nonce, "gpu-nonce", "", "the nonce the verifier sent the GPUs, 64 hex digits")
}

// check verifies the GPU evidence against the release's GPU reference
// values (see gpu check); the error is the first GPU's failure.
func (g *checkGPUFlags) check(dir string, at time.Time) (*gpu.CheckResult, error) {
	if g.evidence == "" {
		if g.nonce != "" {
			return nil, outcome.UsageError(errors.New("--gpu-nonce without --gpu-evidence"))
		}
		return nil, nil
	}
	var wantNonce []byte
	if g.nonce != "" {
		var err error
		if wantNonce, err = decodeHexFlag(g.nonce, 32); err != nil {
			return nil, outcome.UsageError(fmt.Errorf("--gpu-nonce: %w", err), "give the 32-byte nonce as 64 hex digits")
		}
	}
	refFile := filepath.Join(dir, filepath.FromSlash(refvalues.GPUPath))
	if _, err := os.Stat(refFile); err != nil {
		return nil, outcome.InputError(fmt.Errorf("%s has no %s: the release has no GPU reference values", dir, refvalues.GPUPath), "give gpu.rims in the release config")
	}
	ref, err := readReference(refFile)
	if err != nil {
		return nil, err
	}
	items, err := readGPUEvidence("", "", g.evidence)
	if err != nil {
		return nil, err
	}
	res, _, err := gpu.CheckAll(items, ref, wantNonce, gpu.ChainOptions{At: at})
	return res, err
}

func (a *app) checkSNPCmd() *cobra.Command {
	var report, vcek, product, nonce, roots string
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
			t, err := at.time()
			if err != nil {
				return err
			}
			o := evidence.SNPOptions{Product: product, At: t}
			raw, err := os.ReadFile(report)
			if err != nil {
				return outcome.InputError(fmt.Errorf("--report %q: %w", report, unwrapPath(err)))
			}
			att, err := evidence.ParseSNPReport(raw)
			if err != nil {
				return outcome.InputError(fmt.Errorf("--report %q: %w", report, err))
			}
			if vcek != "" {
				if o.VCEK, err = os.ReadFile(vcek); err != nil {
					return outcome.InputError(fmt.Errorf("--vcek %q: %w", vcek, unwrapPath(err)))
				}
			}
			if roots != "" {
				if o.Roots, err = os.ReadFile(roots); err != nil {
					return outcome.InputError(fmt.Errorf("--amd-roots %q: %w", roots, unwrapPath(err)))
				}
			}
			n, err := reportDataNonce(nonce)
			if err != nil {
				return err
			}
			docs, release, err := readRelease(args[0], "snp")
			if err != nil {
				return err
			}
			refs, err := evidence.SNPReferences(docs)
			if err != nil {
				return err
			}
			res := verify.EvidenceCheck{Release: release, Evidence: report}
			if err := evidence.VerifySNP(cmd.Context(), att, o); err != nil {
				return a.notAuthentic(&res, "not authentic", fmt.Sprintf("--report %q", report), err, "give the VCEK of the chip and TCB that signed it (snpguest fetch vcek), and --product for a version 2 report of a Genoa or Turin")
			}
			res.Authentic = fmt.Sprintf("signed by the chip's %s, chain to the AMD roots pinned in cvmkit, valid at %s", signerName(att.GetReport().GetSignerInfo()), t.UTC().Format("2006-01-02T15:04:05Z"))
			res.Match = evidence.MatchSNP(att.GetReport(), refs, n)
			if res.GPU, res.GPUErr = gpus.check(args[0], t); res.GPU == nil && res.GPUErr != nil {
				return res.GPUErr
			}
			return a.finishCheck(&res)
		},
	}
	cmd.Flags().StringVar(&report, "report", "", "the attestation report: raw (1184 bytes) or a go-sev-guest Attestation protobuf")
	cmd.Flags().StringVar(&vcek, "vcek", "", "the VCEK (or VLEK) certificate, DER or PEM, from AMD's KDS")
	cmd.Flags().StringVar(&product, "product", "", "the product line (Milan, Genoa, Turin) when the report does not say it")
	cmd.Flags().StringVar(&nonce, "nonce", "", "the REPORT_DATA the verifier asked for, hex (up to 64 bytes; the rest must be zero)")
	cmd.Flags().StringVar(&roots, "amd-roots", "", "PEM ASK+ARK to trust instead of the pinned AMD roots (private or test chains only)")
	at.register(cmd, "the certificates")
	gpus.register(cmd)
	return cmd
}

// reportDataNonce reads --nonce: the report data the verifier asked for.
func reportDataNonce(nonce string) ([]byte, error) {
	if nonce == "" {
		return nil, nil
	}
	n, err := hex.DecodeString(nonce)
	if err != nil || len(n) > 64 {
		return nil, outcome.UsageError(fmt.Errorf("--nonce %q: want at most 64 bytes as hex", nonce), "give the nonce the verifier sent, e.g. --nonce $(cat nonce.hex)")
	}
	return n, nil
}

// notAuthentic reports evidence whose signature or chain did not verify:
// the result (with the reason) on stdout, exit code 4.
// The error names input (the flag and file) when given.
func (a *app) notAuthentic(res *verify.EvidenceCheck, verdict, input string, err error, hint string) error {
	res.Authentic, res.Verdict = err.Error(), verdict
	if eerr := a.emit(res, func(w io.Writer) { printCheck(w, res) }); eerr != nil {
		return eerr
	}
	if input != "" {
		err = fmt.Errorf("%s: %w", input, err)
	}
	return outcome.SignatureError(err, hint)
}

func signerName(info uint32) string {
	if (info>>2)&7 == 1 {
		return "VLEK"
	}
	return "VCEK"
}

// finishCheck prints the result and maps it to an exit code.
func (a *app) finishCheck(res *verify.EvidenceCheck) error {
	err := res.Decide()
	if eerr := a.emit(res, func(w io.Writer) { printCheck(w, res) }); eerr != nil {
		return eerr
	}
	return err
}

func printCheck(w io.Writer, res *verify.EvidenceCheck) {
	if res.Release != "" {
		fmt.Fprintf(w, "release        %s\n", res.Release)
	}
	fmt.Fprintf(w, "evidence       %s\n", res.Evidence)
	fmt.Fprintf(w, "authentic      %s\n", res.Authentic)
	if m := res.Match; m != nil {
		if m.Configuration != "" {
			fmt.Fprintf(w, "configuration  %s\n", m.Configuration)
		}
		fmt.Fprintf(w, "\n%-18s %-9s %s\n", "FIELD", "RESULT", "GOT / WANT")
		for _, f := range m.Fields {
			r := "ok"
			if !f.OK {
				r = "DIFFERS"
			}
			fmt.Fprintf(w, "%-18s %-9s %s\n", f.Name, r, f.Got)
			if !f.OK {
				fmt.Fprintf(w, "%-18s %-9s %s\n", "", "want", f.Want)
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

// readRelease reads a release folder's documents for a check of platform
// ("snp" or "tdx") and its name@version from the image lock ("" without).
func readRelease(dir, platform string) (*refvalues.Release, string, error) {
	r, err := refvalues.ReadRelease(dir)
	if err != nil {
		return nil, "", outcome.InputError(err)
	}
	n := len(r.SNP)
	if platform == "tdx" {
		n = len(r.TDX)
	}
	if n == 0 {
		name := map[string]string{"snp": "SEV-SNP", "tdx": "TDX"}[platform]
		return nil, "", outcome.InputError(fmt.Errorf("%s has no measurements/%s-*.json: not a release with %s configurations", dir, platform, name),
			"give the folder 'cvmkit release' wrote, with platforms."+platform+" in its config")
	}
	name := ""
	if r.Lock != nil {
		name = r.Lock.Release
	}
	return r, name, nil
}

func (a *app) checkTDXCmd() *cobra.Command {
	var quote, eventLog, nonce, roots, tcbInfo, qeIdentity, tcbChain string
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
			t, err := at.time()
			if err != nil {
				return err
			}
			raw, err := os.ReadFile(quote)
			if err != nil {
				return outcome.InputError(fmt.Errorf("--quote %q: %w", quote, unwrapPath(err)))
			}
			q, err := evidence.ParseTDXQuote(raw)
			if err != nil {
				return outcome.InputError(fmt.Errorf("--quote %q: %w", quote, err))
			}
			o := evidence.TDXOptions{At: t}
			if roots != "" {
				b, err := os.ReadFile(roots)
				if err != nil {
					return outcome.InputError(fmt.Errorf("--intel-roots %q: %w", roots, unwrapPath(err)))
				}
				o.Roots = x509.NewCertPool()
				if !o.Roots.AppendCertsFromPEM(b) {
					return outcome.InputError(fmt.Errorf("--intel-roots %q: no PEM certificate", roots))
				}
			}
			n, err := reportDataNonce(nonce)
			if err != nil {
				return err
			}
			rel, release, err := readRelease(args[0], "tdx")
			if err != nil {
				return err
			}
			refs, docs, err := evidence.TDXReferences(rel)
			if err != nil {
				return err
			}
			res := verify.EvidenceCheck{Release: release, Evidence: quote}
			if err := evidence.VerifyTDX(cmd.Context(), q, o); err != nil {
				return a.notAuthentic(&res, "not authentic", fmt.Sprintf("--quote %q", quote), err, "give the quote exactly as the TD produced it, and --verify-at inside its PCK certificates' validity")
			}
			res.Authentic = fmt.Sprintf("signed by the quoting enclave, PCK chain to the Intel SGX root CA pinned in cvmkit, valid at %s", t.UTC().Format("2006-01-02T15:04:05Z"))
			res.Match = evidence.MatchTDX(q, refs, n)
			coll, err := readCollateral(tcbInfo, qeIdentity, tcbChain)
			if err != nil {
				return err
			}
			if coll == nil {
				res.Authentic += " (the TCB status is not evaluated: give --tcb-info, --qe-identity and --tcb-signing-chain)"
			} else {
				err := evidence.CheckTDXCollateral(cmd.Context(), q, coll, o)
				switch {
				case errors.Is(err, evidence.ErrNotAuthentic):
					return a.notAuthentic(&res, "the collateral is not authentic or not current", "", err, "give the TCB info and QE identity PCS served for this platform, current at --verify-at")
				case err != nil:
					res.Match.Fields = append(res.Match.Fields, evidence.Field{Name: "TCB_STATUS", Got: strings.TrimPrefix(err.Error(), evidence.ErrTCBStatus.Error()+": "), Want: "UpToDate in Intel's collateral", Policy: true})
				default:
					res.Match.Fields = append(res.Match.Fields, evidence.Field{Name: "TCB_STATUS", Got: "UpToDate", Want: "UpToDate in Intel's collateral", OK: true, Policy: true})
				}
			}
			if eventLog != "" {
				b, err := os.ReadFile(eventLog)
				if err != nil {
					return outcome.InputError(fmt.Errorf("--event-log %q: %w", eventLog, unwrapPath(err)))
				}
				log, err := tdx.ParseLog(b)
				if err != nil {
					return outcome.InputError(fmt.Errorf("--event-log %q: %w", eventLog, err))
				}
				var doc *refvalues.TDX
				for i := range refs {
					if refs[i].Name == res.Match.Configuration {
						doc = docs[i]
					}
				}
				res.Replay = tdx.ReplayAgainst(log, q.GetTdQuoteBody().GetRtmrs(), doc)
			}
			if res.GPU, res.GPUErr = gpus.check(args[0], t); res.GPU == nil && res.GPUErr != nil {
				return res.GPUErr
			}
			return a.finishCheck(&res)
		},
	}
	cmd.Flags().StringVar(&quote, "quote", "", "the TD quote: Intel's version 4 binary format or a go-tdx-guest QuoteV4 protobuf")
	cmd.Flags().StringVar(&eventLog, "event-log", "", "the TD's CC event log (CCEL data) to replay and compare")
	cmd.Flags().StringVar(&nonce, "nonce", "", "the REPORTDATA the verifier asked for, hex (up to 64 bytes; the rest must be zero)")
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
		b, _, err := readInput(f.path, f.flag, 16<<20)
		if err != nil {
			return nil, err
		}
		*f.dst = b
	}
	return c, nil
}
