package verify

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cvmkit/cvmkit/evidence"
	"github.com/cvmkit/cvmkit/measure/gpu"
	"github.com/cvmkit/cvmkit/measure/tdx"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/policy"
	"github.com/cvmkit/cvmkit/refvalues"
	sevabi "github.com/google/go-sev-guest/abi"
)

// EarliestVerifyTime is the earliest time evidence is verified at: no
// certificate of AMD's, Intel's or NVIDIA's attestation chains predates
// it, so an earlier time is a mistake (Go's zero time among them, which
// the verification libraries would silently take as "now").
var EarliestVerifyTime = time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)

// CheckVerifyTime refuses a verification time that is not a real one.
func CheckVerifyTime(at time.Time) error {
	if at.Before(EarliestVerifyTime) {
		return fmt.Errorf("verification time %s is before %s, earlier than any attestation certificate: give the time the evidence was produced at, or now",
			at.UTC().Format(time.RFC3339), EarliestVerifyTime.Format(time.DateOnly))
	}
	return nil
}

// EvidenceOptions are what every evidence check takes besides the evidence.
type EvidenceOptions struct {
	// At is the time certificates must be valid at (required: the check
	// reads no clock).
	At time.Time
	// Nonce, when not nil, is what the report data must start with (the
	// rest zero); it must not be empty.
	Nonce []byte
	// GPU, when set, is GPU evidence checked in the same call against the
	// release's GPU reference values.
	GPU *GPUEvidence
}

// GPUEvidence is the GPUs' evidence of a confidential AI VM.
type GPUEvidence struct {
	Items []gpu.Item
	// Nonce, when not nil, is the 32-byte nonce the verifier sent the GPUs.
	Nonce []byte
}

// SNPEvidence is an SEV-SNP attestation report and what verifies it.
type SNPEvidence struct {
	// Source names the report in results ("report.bin").
	Source string
	// Report is the raw 1184-byte report or a go-sev-guest Attestation
	// protobuf (binary or text).
	Report []byte
	// VCEK is the report's signing certificate (VCEK or VLEK), DER or PEM;
	// nil uses the one in the Attestation.
	VCEK []byte
	// Product is the product line when the report does not say it.
	Product string
	// Roots, when set, is an ASK+ARK (PEM) trusted instead of the AMD
	// roots pinned in go-sev-guest (private or test chains).
	Roots []byte
}

// TDXEvidence is an Intel TDX quote and what verifies it.
type TDXEvidence struct {
	// Source names the quote in results ("quote.dat").
	Source string
	// Quote is Intel's version 4 quote or a go-tdx-guest QuoteV4 protobuf.
	Quote []byte
	// Roots, when set, are PEM root certificates trusted instead of the
	// pinned Intel SGX root CA (private or test chains).
	Roots []byte
	// Collateral, when set, is Intel's PCS collateral to evaluate the
	// platform's TCB status with.
	Collateral *evidence.TDXCollateral
	// EventLog, when set, is the TD's CC event log (CCEL) to replay.
	EventLog []byte
}

// CheckSNP answers "does this VM run this release" for an SEV-SNP report:
// it verifies the report (signature and chain, offline, at o.At), finds the
// release configuration whose measurement it carries and compares every
// field the release fixes, checks the GPU evidence with it, and says what
// the matched configuration binds.
//
// The result is nil only for input errors (evidence that cannot be read,
// a release without SEV-SNP configurations). The error carries the exit
// outcome: outcome.SignatureError for evidence that is not authentic, an
// *outcome.MismatchError or outcome.PolicyError for a difference.
func CheckSNP(ctx context.Context, rel *refvalues.Release, ev SNPEvidence, o EvidenceOptions) (*EvidenceCheck, error) {
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	if len(rel.SNP) == 0 {
		return nil, noConfigurations(rel, "snp", "SEV-SNP")
	}
	refs, err := evidence.SNPReferences(rel)
	if err != nil {
		return nil, err
	}
	res := &EvidenceCheck{Release: releaseName(rel), Evidence: ev.Source, VerifiedAt: o.At.UTC().Format(time.RFC3339)}
	att, perr := evidence.ParseSNPReport(ev.Report)
	if perr != nil {
		// A raw report whose fields do not parse: with its VCEK, its
		// signature tells a changed report (not authentic) from a
		// genuine one cvmkit cannot read.
		if len(ev.Report) == sevabi.ReportSize && ev.VCEK != nil {
			if err := evidence.VerifySNPRawSignature(ev.Report, ev.VCEK); err != nil {
				return res.notAuthentic(fmt.Errorf("%w (and its fields do not parse: %v)", err, perr),
					"the report was changed after the chip signed it, or the VCEK is another chip's")
			}
		}
		return nil, outcome.InputError(fmt.Errorf("%s: %w", ev.Source, perr), snpParseHint(ev))
	}
	opts := evidence.SNPOptions{VCEK: ev.VCEK, Product: ev.Product, At: o.At, Roots: ev.Roots}
	if err := evidence.VerifySNP(ctx, att, opts); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return res.notAuthentic(err, "give the VCEK of the chip and TCB that signed it (snpguest fetch vcek), and the product line for a version 2 report of a Genoa or Turin")
	}
	roots := "the AMD roots pinned in cvmkit (go-sev-guest's ARK and ASK)"
	if ev.Roots != nil {
		roots = "the given AMD roots (" + fingerprints(ev.Roots) + "), not the pinned ones"
	}
	res.Authentic = fmt.Sprintf("signed by the chip's %s, chain to %s, valid at %s", snpSigner(att.GetReport().GetSignerInfo()), roots, res.VerifiedAt)
	res.Match = evidence.MatchSNP(att.GetReport(), refs, o.Nonce)
	return res.finish(rel, o)
}

// CheckTDX answers "does this VM run this release" for a TDX quote: it
// verifies the quote (offline, at o.At), evaluates the collateral when
// given, finds the configuration whose MRTD it carries and compares the
// RTMRs, XFAM, attributes and nonce, replays the event log when given,
// checks the GPU evidence with it, and says what the configuration binds.
// Results and errors as CheckSNP.
func CheckTDX(ctx context.Context, rel *refvalues.Release, ev TDXEvidence, o EvidenceOptions) (*EvidenceCheck, error) {
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	if len(rel.TDX) == 0 {
		return nil, noConfigurations(rel, "tdx", "TDX")
	}
	refs, docs, err := evidence.TDXReferences(rel)
	if err != nil {
		return nil, err
	}
	q, err := evidence.ParseTDXQuote(ev.Quote)
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("%s: %w", ev.Source, err))
	}
	var log *tdx.Log
	if ev.EventLog != nil {
		if log, err = tdx.ParseLog(ev.EventLog); err != nil {
			return nil, outcome.InputError(fmt.Errorf("event log: %w", err))
		}
	}
	opts := evidence.TDXOptions{At: o.At}
	roots := "the Intel SGX root CA pinned in cvmkit"
	if ev.Roots != nil {
		opts.Roots = x509.NewCertPool()
		if !opts.Roots.AppendCertsFromPEM(ev.Roots) {
			return nil, outcome.InputError(errors.New("the Intel roots given hold no PEM certificate"))
		}
		roots = "the given root CA (" + fingerprints(ev.Roots) + "), not the pinned Intel SGX root CA"
	}
	res := &EvidenceCheck{Release: releaseName(rel), Evidence: ev.Source, VerifiedAt: o.At.UTC().Format(time.RFC3339)}
	if err := evidence.VerifyTDX(ctx, q, opts); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return res.notAuthentic(err, "give the quote exactly as the TD produced it, and a verification time inside its PCK certificates' validity")
	}
	res.Authentic = fmt.Sprintf("signed by the quoting enclave, PCK chain to %s, valid at %s", roots, res.VerifiedAt)
	res.Match = evidence.MatchTDX(q, refs, o.Nonce)
	if ev.Collateral == nil {
		res.Authentic += " (the TCB status is not evaluated: no PCS collateral was given)"
	} else {
		err := evidence.CheckTDXCollateral(ctx, q, ev.Collateral, opts)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, evidence.ErrNotAuthentic):
			res.Authentic += "; the collateral is not: " + err.Error()
			res.Verdict = "the collateral is not authentic or not current"
			return res, outcome.SignatureError(err, "give the TCB info and QE identity PCS served for this platform, current at the verification time")
		case err != nil:
			res.Match.Fields = append(res.Match.Fields, evidence.Field{Name: "TCB_STATUS", Got: strings.TrimPrefix(err.Error(), evidence.ErrTCBStatus.Error()+": "), Want: "UpToDate in Intel's collateral", Policy: true})
		default:
			res.Match.Fields = append(res.Match.Fields, evidence.Field{Name: "TCB_STATUS", Got: "UpToDate", Want: "UpToDate in Intel's collateral", OK: true, Policy: true})
		}
	}
	if log != nil {
		var doc *refvalues.TDX
		for i := range refs {
			if refs[i].Name == res.Match.Configuration {
				doc = docs[i]
			}
		}
		res.Replay = tdx.ReplayAgainst(log, q.GetTdQuoteBody().GetRtmrs(), doc)
	}
	return res.finish(rel, o)
}

// checkOptions refuses options no check can run with.
func checkOptions(o EvidenceOptions) error {
	if o.At.IsZero() {
		return outcome.UsageError(errors.New("no verification time: EvidenceOptions.At is required"))
	}
	if err := CheckVerifyTime(o.At); err != nil {
		return outcome.UsageError(err)
	}
	if o.Nonce != nil && len(o.Nonce) == 0 {
		return outcome.UsageError(errors.New("an empty nonce compares nothing: give the nonce the verifier sent, or none"))
	}
	if len(o.Nonce) > 64 {
		return outcome.UsageError(fmt.Errorf("a %d-byte nonce: report data holds at most 64 bytes", len(o.Nonce)))
	}
	if g := o.GPU; g != nil {
		if g.Nonce != nil && len(g.Nonce) != 32 {
			return outcome.UsageError(fmt.Errorf("a %d-byte GPU nonce: the GPUs answer a 32-byte nonce", len(g.Nonce)))
		}
		if len(g.Items) == 0 {
			return outcome.InputError(errors.New("the GPU evidence holds no GPU"))
		}
	}
	return nil
}

// finish checks the GPUs, says what the matched configuration binds, and
// decides.
func (res *EvidenceCheck) finish(rel *refvalues.Release, o EvidenceOptions) (*EvidenceCheck, error) {
	if o.GPU != nil {
		if rel.GPU == nil {
			return nil, outcome.InputError(fmt.Errorf("%s has no %s: the release has no GPU reference values to check GPU evidence against", releaseName(rel), refvalues.GPUPath), "give gpu.rims in the release config")
		}
		if err := gpu.ValidateReference(rel.GPU); err != nil {
			return nil, outcome.InputError(fmt.Errorf("%s: %w", refvalues.GPUPath, err))
		}
		var firstErr error
		res.GPU, _, firstErr = gpu.CheckAll(o.GPU.Items, rel.GPU, o.GPU.Nonce, gpu.ChainOptions{At: o.At})
		if res.GPU == nil {
			return nil, firstErr
		}
		res.GPUErr = firstErr
	}
	if m := res.Match; m.Configuration != "" {
		res.Binding = bindingOf(rel, m)
	}
	return res, res.Decide()
}

// bindingOf is what the matched configuration binds, by the same analysis
// the release's bindings.json comes from.
func bindingOf(rel *refvalues.Release, m *evidence.Match) *refvalues.Binding {
	_, bindings, err := policy.FromReferenceValues(rel)
	if err != nil {
		return nil
	}
	name := m.Configuration
	if m.Entry != "" {
		name += "." + m.Entry
	}
	for i := range bindings {
		if bindings[i].Configuration == name {
			return &bindings[i]
		}
	}
	return nil
}

// notAuthentic is the result for evidence whose signature or chain does
// not verify.
func (res *EvidenceCheck) notAuthentic(err error, hint string) (*EvidenceCheck, error) {
	res.Authentic, res.Verdict = err.Error(), "not authentic"
	return res, outcome.SignatureError(fmt.Errorf("%s: %w", res.Evidence, err), hint)
}

func snpSigner(info uint32) string {
	if si, err := sevabi.ParseSignerInfo(info); err == nil && si.SigningKey == sevabi.VlekReportSigner {
		return "VLEK"
	}
	return "VCEK"
}

func snpParseHint(ev SNPEvidence) string {
	if ev.VCEK == nil {
		return "give the raw report from /dev/sev-guest or snpguest, or go-sev-guest's Attestation protobuf; with the VCEK, cvmkit also says whether its signature verifies"
	}
	return "its signature verifies: this is a genuine report in a form cvmkit cannot read (a newer report version?)"
}

// fingerprints names PEM certificates by subject and SHA-256, for results
// that must say which roots were trusted.
func fingerprints(pemBytes []byte) string {
	var out []string
	for rest := pemBytes; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		sum := sha256.Sum256(b.Bytes)
		name := "certificate"
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			name = fmt.Sprintf("%q", c.Subject.CommonName)
		}
		out = append(out, name+" sha256:"+hex.EncodeToString(sum[:]))
	}
	if len(out) == 0 {
		sum := sha256.Sum256(pemBytes)
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return strings.Join(out, ", ")
}

func releaseName(rel *refvalues.Release) string {
	if rel.Lock != nil {
		return rel.Lock.Release
	}
	return ""
}

func noConfigurations(rel *refvalues.Release, platform, name string) error {
	return outcome.InputError(fmt.Errorf("%s has no measurements/%s-*.json: not a release with %s configurations", rel.Name, platform, name),
		"give the folder 'cvmkit release' wrote, with platforms."+platform+" in its config")
}

// EvidenceCheck answers "does this VM run this release, and if not, what
// differs" ('cvmkit check snp|tdx --json'): the evidence's authenticity
// (and the time and roots it was verified with), the configuration it
// matches, what that configuration binds, the event-log replay and the
// GPUs checked with it.
type EvidenceCheck struct {
	Release  string `json:"release,omitempty"`
	Evidence string `json:"evidence"`
	// Authentic says how the evidence was verified (signer, roots, time),
	// or why it is not authentic.
	Authentic string `json:"authentic"`
	// VerifiedAt is the time the certificates were checked at (RFC 3339).
	VerifiedAt string          `json:"verified_at"`
	Match      *evidence.Match `json:"match"`
	// Binding is what the matched configuration's values bind and leave
	// unbound (as the release's bindings.json says).
	Binding *refvalues.Binding `json:"binding,omitempty"`
	// Replay is the CC event log's replay (TDX, with an event log).
	Replay *tdx.Replay `json:"replay,omitempty"`
	// GPU is the GPU evidence checked in the same call.
	GPU     *gpu.CheckResult `json:"gpu,omitempty"`
	Verdict string           `json:"verdict"`
	// GPUErr is the first GPU's failure, the exit status when the CPU
	// evidence matches.
	GPUErr error `json:"-"`
}

// Decide sets the verdict and returns the outcome the exit code comes from:
// nil when everything matches; an outcome.PolicyError when only policy
// fields (the TCB, DEBUG) fail; else an *outcome.MismatchError naming the
// first field (or the event log) that differs.
//
// A match of a configuration that leaves parts of the image unbound says
// so: the evidence then shows the VM runs the release's firmware (and what
// else is bound), not that it runs the release's kernel, initrd, command
// line or root filesystem.
func (res *EvidenceCheck) Decide() error {
	m := res.Match
	gpuNote := ""
	if res.GPU != nil {
		if res.GPU.OK {
			gpuNote = fmt.Sprintf(", with %d GPU(s) matching its GPU reference values", len(res.GPU.GPUs))
		} else {
			gpuNote = "; a GPU does not match its GPU reference values"
		}
	}
	replayOK := res.Replay == nil || res.Replay.OK()
	switch {
	case m.OK() && replayOK:
		if b := res.Binding; b != nil && len(b.Unbound) > 0 {
			res.Verdict = fmt.Sprintf("this VM matches %s (%s) in what that configuration binds: %s; it does not bind %s, so this does not show the VM runs the release's %s (see bindings.json)",
				orRelease(res.Release), m.Configuration, strings.Join(b.Binds, ", "), strings.Join(b.Unbound, ", "), strings.Join(b.Unbound, ", ")) + gpuNote
		} else {
			res.Verdict = "this VM runs " + orRelease(res.Release) + " (" + m.Configuration + ")" + gpuNote
		}
	case m.Configuration == "":
		res.Verdict = "no configuration of " + orRelease(res.Release) + " has this measurement" + gpuNote
	default:
		var bad []string
		for _, f := range m.Fields {
			if !f.OK {
				bad = append(bad, f.Name)
			}
		}
		if !replayOK {
			bad = append(bad, "event log")
		}
		res.Verdict = fmt.Sprintf("matches %s by measurement, but %s differ", m.Configuration, strings.Join(bad, ", ")) + gpuNote
	}
	switch {
	case m.OK() && replayOK:
		return res.GPUErr
	case m.PolicyOnly() && replayOK:
		// A GPU that is not authentic or differs outweighs a policy
		// refusal of the CPU evidence.
		if c := outcome.ExitCode(res.GPUErr); c == outcome.Signature || c == outcome.Mismatch {
			return res.GPUErr
		}
		return outcome.PolicyError(errors.New(res.Verdict), policyHint(m))
	}
	return firstBad(res)
}

// policyHint says what to do about the policy fields that fail.
func policyHint(m *evidence.Match) string {
	for _, f := range m.Fields {
		if !f.OK && (f.Name == "POLICY.DEBUG" || f.Name == "TD_ATTRIBUTES") {
			return "the VM was launched with debugging enabled (the host can read and change its memory): launch it without the DEBUG policy bit or attribute"
		}
	}
	return "the machine's firmware is older than the release's minimumTCB: update it, or lower the minimum in cvmkit.yaml"
}

// firstBad is the first differing field (or event) as the error the exit
// code comes from.
func firstBad(res *EvidenceCheck) error {
	for _, f := range res.Match.Fields {
		if !f.OK {
			return &outcome.MismatchError{Subject: res.Evidence, Register: f.Name, Want: f.Want, Got: f.Got}
		}
	}
	return &outcome.MismatchError{Subject: res.Evidence, Register: "event log", Want: "a log that replays to the quote and holds the predicted events", Got: strings.Join(res.Replay.Differences, "; ")}
}

func orRelease(r string) string {
	if r == "" {
		return "the release"
	}
	return "release " + r
}
