package gpu

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/cvmkit/cvmkit/measure/gpu/spdm"
)

// ErrNonce marks a report whose request nonce is not the expected one.
var ErrNonce = errors.New("nonce mismatch")

// NonceError is the ErrNonce a verification returns: the nonce the report
// answers and the one expected, so that callers need not read the wire
// format.
type NonceError struct {
	Got, Want []byte
}

func (e *NonceError) Error() string {
	return fmt.Sprintf("%v: the report answers nonce %x, expected %x (a replayed or foreign report)", ErrNonce, e.Got, e.Want)
}

func (e *NonceError) Unwrap() error { return ErrNonce }

// VerifiedReport is a report whose SPDM signature, attestation-key chain and
// FWID were verified.
type VerifiedReport struct {
	*spdm.Report
	Chain *Chain
	// HWModel is the device identity certificate's common name, NVIDIA's
	// "hwmodel" claim ("GH100 A01 GSP BROM").
	HWModel string
	// Product is the chip the chain names, in the RIMs' spelling (GH100,
	// GB100, LS10).
	Product string
	// CertFWID is the FWID in the attestation-key certificate.
	CertFWID []byte
	// FWIDChecked says the report carried an FWID field and it equals
	// CertFWID. Reports from drivers before 550 and NVSwitch reports carry
	// none; their binding rests on the signature alone.
	FWIDChecked bool
}

// ReportOptions says how a report is verified.
type ReportOptions struct {
	ChainOptions
	// Root replaces the pinned NVIDIA Device Identity CA (tests only).
	Root *x509.Certificate
	// Nonce, when set, must equal the request's nonce.
	Nonce []byte
}

// ParseCertificates reads every PEM CERTIFICATE block of a chain file, in
// order (leaf first for NVIDIA chains).
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w certificate chain: PEM block %d is %q, not CERTIFICATE", ErrMalformed, len(certs)+1, blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w certificate chain: certificate %d: %v", ErrMalformed, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w certificate chain: no PEM certificate found", ErrMalformed)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w certificate chain: text after the last certificate", ErrMalformed)
	}
	return certs, nil
}

// VerifyReport parses a report and verifies, in this order: the device
// certificate chain to the pinned NVIDIA Device Identity CA at opts.At, the
// report's ECDSA P-384 signature over SHA-384 of the request and the
// response up to the signature with the leaf (attestation key), that the
// report's FWID (when it carries one) equals the FWID in the leaf certificate, and the nonce when
// one is expected.
func VerifyReport(report []byte, certs []*x509.Certificate, opts ReportOptions) (*VerifiedReport, error) {
	r, err := spdm.ParseReport(report)
	if err != nil {
		return nil, err
	}
	root := opts.Root
	if root == nil {
		if root, err = DeviceRoot(); err != nil {
			return nil, err
		}
	}
	chain, err := verifyChain(certs, root, opts.ChainOptions)
	if err != nil {
		return nil, fmt.Errorf("device certificate chain: %w", err)
	}
	leaf := chain.Certs[0]
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return nil, fmt.Errorf("attestation report %w: the attestation key %q is not ECDSA P-384", ErrSignature, leaf.Subject.CommonName)
	}
	h := sha512.Sum384(r.Signed)
	sr, ss := new(big.Int).SetBytes(r.Signature[:48]), new(big.Int).SetBytes(r.Signature[48:])
	if !ecdsa.Verify(pub, h[:], sr, ss) {
		return nil, fmt.Errorf("attestation report %w: the ECDSA P-384 signature does not verify with the attestation key %q: the report was changed, or the chain belongs to another GPU", ErrSignature, leaf.Subject.CommonName)
	}
	v := &VerifiedReport{Report: r, Chain: chain}
	if len(chain.Certs) > 1 {
		v.HWModel = chain.Certs[1].Subject.CommonName
		v.Product = strings.ReplaceAll(strings.Fields(v.HWModel + " ?")[0], "_", "")
	}
	if v.CertFWID, err = certFWID(leaf); err != nil {
		return nil, fmt.Errorf("attestation-key certificate %q: %w", leaf.Subject.CommonName, err)
	}
	if fw, ok := r.Field(spdm.OpaqueFWID); ok {
		if subtle.ConstantTimeCompare(fw, v.CertFWID) != 1 {
			return nil, fmt.Errorf("attestation report %w: FWID %x differs from the attestation-key certificate's %x", ErrSignature, fw, v.CertFWID)
		}
		v.FWIDChecked = true
	}
	if opts.Nonce != nil && subtle.ConstantTimeCompare(opts.Nonce, r.Nonce[:]) != 1 {
		return nil, &NonceError{Got: append([]byte(nil), r.Nonce[:]...), Want: opts.Nonce}
	}
	return v, nil
}

// TCG DICE extensions carrying the firmware ID (TCG DICE Attestation
// Architecture §6.1): Hopper certificates use the 2.23.133.5.4.1 arc with a
// (version, subjectPublicKeyInfo, FWID) sequence; Blackwell uses
// tcg-dice-TcbInfo 2.23.133.5.4.1.1 with fwids in field [6].
var (
	oidDICECompositeID = asn1.ObjectIdentifier{2, 23, 133, 5, 4, 1}
	oidDICETcbInfo     = asn1.ObjectIdentifier{2, 23, 133, 5, 4, 1, 1}
)

type fwidASN struct {
	HashAlg asn1.ObjectIdentifier
	Digest  []byte
}

type compositeIDASN struct {
	Version int
	SPKI    asn1.RawValue
	FWID    fwidASN
}

// certFWID extracts the firmware ID from an attestation-key certificate.
func certFWID(c *x509.Certificate) ([]byte, error) {
	for _, ext := range c.Extensions {
		switch {
		case ext.Id.Equal(oidDICECompositeID):
			var id compositeIDASN
			if rest, err := asn1.Unmarshal(ext.Value, &id); err != nil || len(rest) != 0 {
				return nil, fmt.Errorf("%w DICE FWID extension: %v", ErrMalformed, err)
			}
			return id.FWID.Digest, nil
		case ext.Id.Equal(oidDICETcbInfo):
			var seq asn1.RawValue
			if rest, err := asn1.Unmarshal(ext.Value, &seq); err != nil || len(rest) != 0 || seq.Tag != asn1.TagSequence {
				return nil, fmt.Errorf("%w DICE TcbInfo extension", ErrMalformed)
			}
			for b := seq.Bytes; len(b) > 0; {
				var f asn1.RawValue
				rest, err := asn1.Unmarshal(b, &f)
				if err != nil {
					return nil, fmt.Errorf("%w DICE TcbInfo extension: %v", ErrMalformed, err)
				}
				b = rest
				if f.Class != asn1.ClassContextSpecific || f.Tag != 6 {
					continue
				}
				var first fwidASN
				if _, err := asn1.Unmarshal(f.Bytes, &first); err != nil {
					return nil, fmt.Errorf("%w DICE TcbInfo fwids: %v", ErrMalformed, err)
				}
				return first.Digest, nil
			}
			return nil, fmt.Errorf("%w DICE TcbInfo extension has no fwids", ErrMalformed)
		}
	}
	return nil, fmt.Errorf("%w: no TCG DICE FWID extension (2.23.133.5.4.1)", ErrMalformed)
}

// Evidence is one GPU's evidence from a serialized evidence file.
type Evidence struct {
	Arch string
	UUID string
	// Nonce is the nonce the file says the evidence answers ("" if none).
	Nonce     string
	Report    []byte
	CertChain []byte
}

type evidenceItem struct {
	Arch        string `json:"arch"`
	UUID        string `json:"uuid"`
	Nonce       string `json:"nonce"`
	Evidence    string `json:"evidence"`
	Certificate string `json:"certificate"`
}

// ParseEvidence reads the serialized multi-GPU evidence formats in use:
// NVIDIA's attestation SDK (a JSON array of {arch, nonce, evidence,
// certificate}), NRAS requests ({nonce, arch, evidence_list: [{evidence,
// certificate}]}) and Trustee ({device_evidence_list: [{arch, uuid,
// evidence, certificate}]}). Evidence is base64 or hex, certificates base64
// of the PEM chain.
func ParseEvidence(data []byte) ([]Evidence, error) {
	var items []evidenceItem
	var fileNonce, fileArch string
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("[")):
		if err := strictJSON(trimmed, &items); err != nil {
			return nil, err
		}
	case bytes.HasPrefix(trimmed, []byte("{")):
		var obj struct {
			Nonce   string         `json:"nonce"`
			Arch    string         `json:"arch"`
			List    []evidenceItem `json:"evidence_list"`
			Devices []evidenceItem `json:"device_evidence_list"`
			Claims  string         `json:"claims_version"`
		}
		if err := strictJSON(trimmed, &obj); err != nil {
			return nil, err
		}
		if obj.List != nil && obj.Devices != nil {
			return nil, fmt.Errorf("%w evidence: both evidence_list and device_evidence_list", ErrMalformed)
		}
		items = append(obj.List, obj.Devices...)
		fileNonce, fileArch = obj.Nonce, obj.Arch
	default:
		return nil, fmt.Errorf("%w evidence: not a JSON array or object", ErrMalformed)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w evidence: no GPU in the file", ErrMalformed)
	}
	var out []Evidence
	for i, it := range items {
		e := Evidence{Arch: it.Arch, UUID: it.UUID, Nonce: it.Nonce}
		if e.Arch == "" {
			e.Arch = fileArch
		}
		if e.Nonce == "" {
			e.Nonce = fileNonce
		}
		var err error
		if e.Report, err = decodeBlob(it.Evidence); err != nil {
			return nil, fmt.Errorf("%w evidence: GPU %d: evidence: %v", ErrMalformed, i, err)
		}
		if e.CertChain, err = base64.StdEncoding.DecodeString(it.Certificate); err != nil {
			if !strings.Contains(it.Certificate, "-----BEGIN") {
				return nil, fmt.Errorf("%w evidence: GPU %d: certificate is neither base64 nor PEM", ErrMalformed, i)
			}
			e.CertChain = []byte(it.Certificate)
		}
		out = append(out, e)
	}
	return out, nil
}

func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w evidence: %v", ErrMalformed, err)
	}
	if d.More() {
		return fmt.Errorf("%w evidence: data after the JSON value", ErrMalformed)
	}
	return nil
}

// decodeBlob decodes hex (even length, hex digits only) or else base64.
func decodeBlob(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty")
	}
	if len(s)%2 == 0 && hexDigitsRE.MatchString(s) {
		return hex.DecodeString(s)
	}
	return base64.StdEncoding.DecodeString(s)
}
