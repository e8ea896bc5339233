package gpu

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cvmkit/cvmkit/measure/gpu/spdm"
	"github.com/cvmkit/cvmkit/outcome"
)

// Item is one GPU's attestation evidence to check: the report (SPDM
// request and response), the device certificate chain (PEM), and the nonce
// an evidence file carried.
type Item struct {
	Source, Arch, UUID string
	Nonce              []byte
	Report, Chain      []byte
}

// CheckResult is the verdict on every GPU of a node (`cvmkit gpu check
// --json`).
type CheckResult struct {
	OK   bool        `json:"ok"`
	GPUs []GPUResult `json:"gpus"`
}

// GPUResult is one GPU's verdict and what it was judged on.
type GPUResult struct {
	Index  int    `json:"index"`
	Source string `json:"source"`
	Arch   string `json:"arch,omitempty"`
	UUID   string `json:"uuid,omitempty"`
	// Device is the GPU's device identity (its identity certificate's
	// serial number).
	Device        string      `json:"device,omitempty"`
	OK            bool        `json:"ok"`
	Error         string      `json:"error,omitempty"`
	HWModel       string      `json:"hwmodel,omitempty"`
	Product       string      `json:"product,omitempty"`
	DriverVersion string      `json:"driver_version,omitempty"`
	VBIOSVersion  string      `json:"vbios_version,omitempty"`
	VBIOSRIMID    string      `json:"vbios_rim_id,omitempty"`
	Nonce         string      `json:"nonce,omitempty"`
	NonceChecked  bool        `json:"nonce_checked"`
	FWIDChecked   bool        `json:"fwid_checked"`
	Chain         []string    `json:"chain,omitempty"`
	Revocation    string      `json:"revocation,omitempty"`
	Warnings      []string    `json:"warnings,omitempty"`
	Comparison    *Comparison `json:"comparison,omitempty"`
}

// Check judges one GPU's evidence against reference values (go-sev-guest's
// verify-then-validate order): the device chain and report signature, the
// FWID, the nonce (wantNonce, else the evidence's), then every active
// register of the matching RIMs and the version allow-lists. Errors are
// typed: a signature or chain failure is an outcome.SignatureError, a
// register or nonce difference an *outcome.MismatchError, a version the
// reference does not allow an outcome.PolicyError.
func Check(i int, it Item, ref *Reference, wantNonce []byte, opts ChainOptions) (GPUResult, *Chain, error) {
	g := GPUResult{Index: i, Source: it.Source, Arch: it.Arch, UUID: it.UUID}
	certs, err := ParseCertificates(it.Chain)
	if err != nil {
		return g, nil, Classify(err, it.Source)
	}
	ropts := ReportOptions{ChainOptions: opts, Nonce: wantNonce}
	if ropts.Nonce == nil {
		ropts.Nonce = it.Nonce
	}
	v, err := VerifyReport(it.Report, certs, ropts)
	if ne := (*NonceError)(nil); errors.As(err, &ne) {
		return g, nil, &outcome.MismatchError{Subject: "GPU report " + it.Source, Register: "nonce", Want: fmt.Sprintf("%x", ne.Want), Got: fmt.Sprintf("%x", ne.Got)}
	}
	if err != nil {
		return g, nil, Classify(err, it.Source)
	}
	g.HWModel, g.Product, g.DriverVersion, g.VBIOSVersion, g.VBIOSRIMID = v.HWModel, v.Product, v.DriverVersion(), v.VBIOSVersion(), v.VBIOSRIMID()
	g.Device = deviceID(v.Chain)
	if it.Arch != "" {
		// The evidence's own "arch" is a claim next to the signed report:
		// it must name the chip the device certificate does.
		want, known := archOf(v.Product)
		if !known || !strings.EqualFold(it.Arch, want) {
			return g, v.Chain, &outcome.MismatchError{Subject: "GPU report " + it.Source, Register: "arch", Want: orUnknown(want, v.Product), Got: it.Arch}
		}
	}
	g.Nonce, g.NonceChecked, g.FWIDChecked = fmt.Sprintf("%x", v.Nonce), ropts.Nonce != nil, v.FWIDChecked
	for _, c := range v.Chain.Certs {
		g.Chain = append(g.Chain, c.Subject.CommonName)
	}
	g.Revocation = v.Chain.Revocation
	if v.Trailing > 0 {
		g.Warnings = append(g.Warnings, fmt.Sprintf("%d zero byte(s) after the signature were ignored (a capture artefact)", v.Trailing))
	}
	if !g.NonceChecked {
		g.Warnings = append(g.Warnings, "nonce not checked (no --nonce): freshness is not established")
	}
	c := Compare(v, ref)
	g.Comparison = c
	if mm := c.Mismatches(); len(mm) > 0 {
		m := mm[0]
		return g, v.Chain, &outcome.MismatchError{Subject: "GPU report " + it.Source, Register: fmt.Sprintf("RIM index %d (SPDM block %d, %s)", m.RIMIndex, m.SPDMIndex, m.Source),
			Want: "one of the reference's values", Got: orNoBlock(m.Runtime) + fmt.Sprintf(" (%d of %d registers differ)", len(mm), len(c.Indices))}
	}
	for _, x := range []struct {
		ok      *bool
		what, v string
	}{{c.VBIOSAllowed, "VBIOS", g.VBIOSVersion}, {c.DriverAllowed, "driver", g.DriverVersion}} {
		if x.ok != nil && !*x.ok {
			return g, v.Chain, outcome.PolicyError(fmt.Errorf("GPU report %s: %s version %s is not in the reference", it.Source, x.what, x.v),
				"add the RIM of that version to the reference ('cvmkit gpu reference --rim …'), or update the GPU")
		}
	}
	g.OK = true
	return g, v.Chain, nil
}

// MaxEvidenceSize bounds a GPU evidence file: about 10 KiB per GPU.
const MaxEvidenceSize = 16 << 20

// MaxGPUs bounds the GPUs of one evidence file: NVIDIA's largest
// confidential-computing nodes have 8 GPUs and 4 NVSwitches; the bound
// leaves room for larger nodes and keeps hostile evidence bounded.
const MaxGPUs = 256

// deviceID names the physical device a verified chain belongs to: the
// serial number of its device identity certificate (the chain's second
// certificate, "… GSP BROM" or "… FSP BROM", which NVIDIA provisions per
// chip), or the certificate's SHA-256 when it has no serial number
// attribute.
func deviceID(c *Chain) string {
	if c == nil || len(c.Certs) < 2 {
		return ""
	}
	id := c.Certs[1]
	if id.Subject.SerialNumber != "" {
		return id.Subject.SerialNumber
	}
	return Fingerprint(id)
}

// archOf is the architecture name NVIDIA's evidence formats ("arch":
// HOPPER, BLACKWELL, LS10) use for the chip the device certificate names
// (GH100, GB100, LS10).
func archOf(product string) (string, bool) {
	switch {
	case strings.HasPrefix(product, "GH1"):
		return "HOPPER", true
	case strings.HasPrefix(product, "GB1"), strings.HasPrefix(product, "GB2"):
		return "BLACKWELL", true
	case strings.HasPrefix(product, "LS10"):
		return "LS10", true
	}
	return "", false
}

func orUnknown(arch, product string) string {
	if arch == "" {
		return "the architecture of " + product + " (not known to cvmkit)"
	}
	return arch + " (the device certificate's chip " + product + ")"
}

func orNoBlock(s string) string {
	if s == "" {
		return "no block"
	}
	return s
}

// CheckAll checks every GPU of a node with Check: the result lists each
// GPU, the error is the first GPU's failure, and the chains checked are
// returned (for OCSP responses that must have answered for one).
//
// Each GPU must appear once: evidence that repeats a device (the same
// device identity certificate) is refused, so that one GPU's report
// cannot be counted as several. At most MaxGPUs are checked.
func CheckAll(items []Item, ref *Reference, wantNonce []byte, opts ChainOptions) (*CheckResult, []*Chain, error) {
	if len(items) > MaxGPUs {
		return nil, nil, outcome.InputError(fmt.Errorf("the evidence holds %d GPUs, more than the %d one node can have", len(items), MaxGPUs))
	}
	res := &CheckResult{OK: true}
	var firstErr error
	var chains []*Chain
	seen := map[string]int{}
	for i, it := range items {
		g, chain, err := Check(i, it, ref, wantNonce, opts)
		if chain != nil {
			chains = append(chains, chain)
		}
		if first, dup := seen[g.Device]; dup && g.Device != "" {
			g.OK = false
			err = &outcome.MismatchError{Subject: "GPU report " + it.Source, Register: "device identity",
				Want: "a GPU that appears once in the evidence", Got: fmt.Sprintf("the same GPU as GPU %d (device %s)", first, g.Device)}
		} else if g.Device != "" {
			seen[g.Device] = i
		}
		if err != nil {
			g.Error = err.Error()
			if firstErr == nil {
				firstErr = err
			}
		}
		res.OK = res.OK && g.OK
		res.GPUs = append(res.GPUs, g)
	}
	return res, chains, firstErr
}

// ParseItems reads an evidence file (NVIDIA attestation SDK, NRAS or
// Trustee JSON) into the GPUs to check, named source[i].
func ParseItems(b []byte, source string) ([]Item, error) {
	ev, err := ParseEvidence(b)
	if err != nil {
		return nil, err
	}
	var out []Item
	for i, e := range ev {
		it := Item{Source: fmt.Sprintf("%s[%d]", source, i), Arch: e.Arch, UUID: e.UUID, Report: e.Report, Chain: e.CertChain}
		if e.Nonce != "" {
			n, err := spdm.DecodeReport([]byte(e.Nonce))
			if err != nil || len(n) != 32 {
				return nil, fmt.Errorf("GPU %d: nonce: %q is not 32 bytes of hex", i, e.Nonce)
			}
			it.Nonce = n
		}
		out = append(out, it)
	}
	return out, nil
}
