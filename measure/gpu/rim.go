// Package gpu verifies NVIDIA's GPU Reference Integrity Manifests (RIMs) and
// checks GPU attestation reports against the golden values they carry.
//
// A RIM is an ISO/IEC 19770-2 SWID tag with the TCG RIM Information Model
// binding (TCG "Reference Integrity Manifest Information Model" 1.01),
// enveloped-signed with XMLDSig by a certificate chaining to NVIDIA's CoRIM
// signing root. Its Payload lists up to 64 measurement registers, each with
// one or more allowed SHA-384 values. A GPU attestation report is the SPDM
// 1.1 GET_MEASUREMENTS request and MEASUREMENTS response (DSP0274 §10.11)
// signed by the GPU's attestation key, whose chain ends at NVIDIA's Device
// Identity CA.
//
// Everything here is offline and takes its inputs as bytes and its time as a
// parameter. What cannot be checked offline (OCSP freshness without a
// supplied response, whether NVIDIA re-issued a RIM) is recorded, not
// assumed; see docs/gpu.md.
package gpu

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cvmkit/cvmkit/measure/gpu/spdm"

	"github.com/cvmkit/cvmkit/measure/gpu/xmldsig"

	"github.com/cvmkit/cvmkit/refvalues"
)

// Namespaces of the SWID tag and of its TCG and hash attributes.
const (
	nsSWID   = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
	nsRIM    = "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/"
	nsSHA384 = "http://www.w3.org/2001/04/xmlenc#sha384"
)

// ErrSignature marks a signature that does not verify, as opposed to a
// certificate chain that is not trusted: a RIM whose digest does not match
// its document, whose ECDSA signature fails or that breaks the strict
// profile (package xmldsig); a report whose SPDM signature fails or whose
// FWID differs from its certificate's.
var ErrSignature = xmldsig.ErrSignature

// ErrMalformed marks a RIM or report that cannot be parsed or does not
// follow its format.
var ErrMalformed = spdm.ErrMalformed // one sentinel for RIMs and reports

// Kind is what a RIM describes.
type Kind = refvalues.RIMKind

// RIM kinds.
const (
	KindVBIOS      Kind = "vbios"
	KindDriver     Kind = "driver"
	KindSwitchBIOS Kind = "switch_bios"
)

// MaxRegisters is the number of measurement registers of Hopper and
// Blackwell GPUs (RIM indices 0..63, SPDM block indices 1..64).
const MaxRegisters = 64

// Measurement is one Payload/Resource of a RIM.
type Measurement struct {
	// Index is the RIM index, 0-based. The SPDM measurement block holding
	// the register is Index+1.
	Index  int
	Name   string
	Active bool
	// Size is the digest size in bytes (48 for SHA-384).
	Size int
	// Alternatives are the allowed values, Hash0..HashN-1 in order. An
	// all-zero alternative is a real golden value.
	Alternatives [][]byte
}

// RIM is a verified Reference Integrity Manifest. Every field is read from
// the bytes the signature covers.
type RIM struct {
	// SHA256 is the digest of the file as given.
	SHA256 string
	TagID  string
	// Name is SoftwareIdentity/@name (the chip, like GH100).
	Name       string
	TagVersion string
	Kind       Kind
	// Version is Meta/@colloquialVersion as signed: VBIOS versions in
	// NVIDIA's uppercase hex form ("96.00.5E.00.01"), driver versions as
	// released ("550.144.03").
	Version        string
	Product        string
	Edition        string
	Revision       string
	ManufacturerID string // Meta/@FirmwareManufacturerId, NVIDIA's "oemid" claim
	// Measurements lists every Resource, active or not, by index.
	Measurements []Measurement
	Signer       *Chain
}

// Active returns the active measurements.
func (r *RIM) Active() []Measurement {
	var out []Measurement
	for _, m := range r.Measurements {
		if m.Active {
			out = append(out, m)
		}
	}
	return out
}

// RIMOptions says how a RIM is verified.
type RIMOptions struct {
	ChainOptions
	// Root replaces the pinned NVIDIA CoRIM root. Tests use it; a release
	// never should.
	Root *x509.Certificate
}

// VerifyRIM parses a RIM, verifies its XML signature under the strict
// profile, verifies the signer's chain to the pinned root at opts.At, and
// returns the manifest as read from the signed bytes only, so that content
// outside what the signature covers (an XML signature-wrapping forgery)
// can never become a golden value.
func VerifyRIM(data []byte, opts RIMOptions) (*RIM, error) {
	root := opts.Root
	if root == nil {
		var err error
		if root, err = RIMRoot(); err != nil {
			return nil, err
		}
	}
	doc, err := xmldsig.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w RIM: %v", ErrMalformed, err)
	}
	if !doc.Is(nsSWID, "SoftwareIdentity") {
		return nil, fmt.Errorf("%w RIM: the document element is <%s> in %q, not an ISO 19770-2 SoftwareIdentity", ErrMalformed, doc.QName(), doc.Space)
	}
	var chain *Chain
	sd, err := xmldsig.Verify(doc, func(certs []*x509.Certificate) (err error) {
		chain, err = verifyChain(certs, root, opts.ChainOptions)
		return err
	})
	if err != nil {
		return nil, err
	}
	// Read the manifest back from exactly the canonical bytes that were
	// digested, not from the tree the signature was found in.
	signed, err := xmldsig.Parse(sd.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w RIM: signed content: %v", ErrMalformed, err)
	}
	rim, err := parseSWID(signed)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	rim.SHA256 = hex.EncodeToString(sum[:])
	rim.Signer = chain
	return rim, nil
}

var (
	driverVersionRE = regexp.MustCompile(`^[0-9]{1,4}\.[0-9]{1,4}(\.[0-9]{1,4})?$`)
	hexDigitsRE     = regexp.MustCompile(`^[0-9A-Fa-f]*$`)
	hashAttrRE      = regexp.MustCompile(`^Hash([0-9]+)$`)
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w RIM: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// parseSWID reads a RIM's fields from its (signature-less) SWID tree.
func parseSWID(doc *xmldsig.Element) (*RIM, error) {
	if !doc.Is(nsSWID, "SoftwareIdentity") {
		return nil, malformed("the document element is not a SoftwareIdentity")
	}
	r := &RIM{}
	r.TagID, _ = doc.Attr("tagId")
	r.Name, _ = doc.Attr("name")
	r.TagVersion, _ = doc.Attr("tagVersion")
	if r.TagID == "" {
		return nil, malformed("SoftwareIdentity has no tagId")
	}
	var meta, payload *xmldsig.Element
	for _, c := range doc.Children {
		switch v := c.(type) {
		case xmldsig.Text:
			if strings.TrimSpace(string(v)) != "" {
				return nil, malformed("SoftwareIdentity holds text %q", xmldsig.Truncate(string(v), 40))
			}
		case *xmldsig.Element:
			switch {
			case v.Is(nsSWID, "Entity"):
			case v.Is(nsSWID, "Meta"):
				if meta != nil {
					return nil, malformed("more than one Meta element")
				}
				meta = v
			case v.Is(nsSWID, "Payload"):
				if payload != nil {
					return nil, malformed("more than one Payload element")
				}
				payload = v
			default:
				return nil, malformed("unexpected element <%s> (line %d) in SoftwareIdentity: a GPU RIM holds Entity, Meta, Payload and its Signature", v.QName(), v.Line)
			}
		}
	}
	if meta == nil || payload == nil {
		return nil, malformed("a RIM needs a Meta and a Payload element")
	}
	metaAttr := func(space, name string) string {
		for _, a := range meta.Attrs {
			if a.Space == space && a.Local == name {
				return a.Value
			}
		}
		return ""
	}
	r.Version = metaAttr("", "colloquialVersion")
	r.Product = metaAttr("", "product")
	r.Edition = metaAttr("", "edition")
	r.Revision = metaAttr("", "revision")
	r.ManufacturerID = metaAttr(nsRIM, "FirmwareManufacturerId")
	if pt := metaAttr("", "PayloadType"); pt != "" && pt != "direct" {
		return nil, malformed("Meta PayloadType %q: only direct payloads are supported", pt)
	}
	if r.Product == "" {
		return nil, malformed("Meta has no product")
	}
	switch {
	case spdm.IsVBIOSVersion(r.Version) && strings.EqualFold(r.Edition, "SWITCH"):
		r.Kind = KindSwitchBIOS
	case spdm.IsVBIOSVersion(r.Version):
		r.Kind = KindVBIOS
	case driverVersionRE.MatchString(r.Version):
		r.Kind = KindDriver
	default:
		return nil, malformed("Meta colloquialVersion %q is neither a VBIOS version (like 96.00.5E.00.01) nor a driver version (like 550.144.03)", r.Version)
	}
	seen := map[int]bool{}
	for _, c := range payload.Children {
		switch v := c.(type) {
		case xmldsig.Text:
			if strings.TrimSpace(string(v)) != "" {
				return nil, malformed("Payload holds text")
			}
		case *xmldsig.Element:
			if !v.Is(nsSWID, "Resource") {
				return nil, malformed("unexpected <%s> in Payload (line %d)", v.QName(), v.Line)
			}
			m, err := parseResource(v)
			if err != nil {
				return nil, err
			}
			if seen[m.Index] {
				return nil, malformed("Resource index %d appears twice", m.Index)
			}
			seen[m.Index] = true
			r.Measurements = append(r.Measurements, m)
		}
	}
	if len(r.Active()) == 0 {
		return nil, malformed("the Payload has no active measurement")
	}
	sort.Slice(r.Measurements, func(i, j int) bool { return r.Measurements[i].Index < r.Measurements[j].Index })
	return r, nil
}

func parseResource(e *xmldsig.Element) (Measurement, error) {
	var m Measurement
	get := func(name string) string { v, _ := e.Attr(name); return v }
	if t := get("type"); t != "Measurement" {
		return m, malformed("Resource (line %d) has type %q, want Measurement", e.Line, t)
	}
	idx, err := strconv.Atoi(get("index"))
	if err != nil || idx < 0 || idx >= MaxRegisters {
		return m, malformed("Resource (line %d) index %q is not in 0..%d", e.Line, get("index"), MaxRegisters-1)
	}
	m.Index = idx
	m.Name = get("name")
	switch get("active") {
	case "True", "true":
		m.Active = true
	case "False", "false":
	default:
		return m, malformed("Resource %d: active=%q is neither True nor False", idx, get("active"))
	}
	size, err := strconv.Atoi(get("size"))
	if err != nil || size <= 0 || size > 64 {
		return m, malformed("Resource %d: size %q is not a digest size", idx, get("size"))
	}
	m.Size = size
	n, err := strconv.Atoi(get("alternatives"))
	if err != nil || n < 1 || n > 64 {
		return m, malformed("Resource %d: alternatives %q is not a count in 1..64", idx, get("alternatives"))
	}
	m.Alternatives = make([][]byte, n)
	for _, a := range e.Attrs {
		sm := hashAttrRE.FindStringSubmatch(a.Local)
		if sm == nil {
			continue
		}
		if a.Space != nsSHA384 {
			return m, malformed("Resource %d: %s is not in the SHA-384 namespace %q", idx, a.Local, nsSHA384)
		}
		k, err := strconv.Atoi(sm[1])
		if err != nil || k >= n || sm[1] != strconv.Itoa(k) {
			return m, malformed("Resource %d: %s does not fit alternatives=%d", idx, a.Local, n)
		}
		if len(a.Value) != 2*size || !hexDigitsRE.MatchString(a.Value) {
			return m, malformed("Resource %d: %s is not %d bytes of hex", idx, a.Local, size)
		}
		m.Alternatives[k], _ = hex.DecodeString(a.Value)
	}
	for k, v := range m.Alternatives {
		if v == nil {
			return m, malformed("Resource %d: Hash%d is missing (alternatives=%d)", idx, k, n)
		}
	}
	return m, nil
}

// FormatTime is how times appear in the reference values (RFC 3339, UTC,
// seconds).
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
