package gpu

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// XML Signature identifiers of the one profile NVIDIA signs RIMs with
// (XMLDSig 1.1 §6; RFC 6931 §2.3.6 for ECDSA and §2.1.3 for SHA-384).
const (
	nsDSig         = "http://www.w3.org/2000/09/xmldsig#"
	algC14N11      = "http://www.w3.org/2006/12/xml-c14n11"
	algEnveloped   = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	algECDSASHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
	algSHA384      = "http://www.w3.org/2001/04/xmldsig-more#sha384"
)

// ErrSignature marks a signature that does not verify, as opposed to a
// certificate chain that is not trusted: a RIM whose digest does not match
// its document, whose ECDSA signature fails or that breaks the strict
// profile; a report whose SPDM signature fails or whose FWID differs from
// its certificate's.
var ErrSignature = errors.New("signature")

// signedDocument is what verifySignature hands on: the certificates in
// KeyInfo (leaf first) and the canonical bytes the digest covers, which is
// the only place measurements are read from.
type signedDocument struct {
	certs  []*x509.Certificate
	signed []byte
}

func sigErr(format string, args ...any) error {
	return fmt.Errorf("RIM %w: %s", ErrSignature, fmt.Sprintf(format, args...))
}

// verifySignature checks the enveloped XML signature of a RIM under the
// strict profile of docs/gpu.md and returns the bytes it covers. It does not
// judge the certificates: the signature is checked with the first
// X509Certificate's key, and the caller verifies that certificate's chain.
//
// The profile: the document element holds exactly one ds:Signature, as a
// direct child, and no other ds:Signature exists anywhere; SignedInfo has
// exactly CanonicalizationMethod c14n11, SignatureMethod ecdsa-sha384 and one
// Reference with URI="" whose transforms are exactly enveloped-signature
// then c14n11 and whose digest is SHA-384; SignatureValue is the raw 96-byte
// r‖s of RFC 6931 §2.3.6 (not DER); KeyInfo holds only X509Data with
// X509Certificate children; ds:Object and anything else is refused.
//
// trustCerts judges the KeyInfo certificates before the digest and the
// signature are checked (the order NVIDIA's verifiers report failures in).
func verifySignature(root *element, trustCerts func([]*x509.Certificate) error) (*signedDocument, error) {
	var sigs []*element
	walkElements(root, func(e *element) {
		if e.is(nsDSig, "Signature") {
			sigs = append(sigs, e)
		}
	})
	if len(sigs) != 1 {
		return nil, sigErr("the RIM must hold exactly one ds:Signature, it holds %d", len(sigs))
	}
	sig := sigs[0]
	if sig.parent != root {
		return nil, sigErr("ds:Signature (line %d) is not a child of the document element", sig.line)
	}
	if len(sig.attrs) != 0 {
		return nil, sigErr("ds:Signature has attributes; the profile allows none")
	}
	parts, err := children(sig, "SignedInfo", "SignatureValue", "KeyInfo")
	if err != nil {
		return nil, err
	}
	signedInfo, sigValue, keyInfo := parts[0], parts[1], parts[2]

	si, err := children(signedInfo, "CanonicalizationMethod", "SignatureMethod", "Reference")
	if err != nil {
		return nil, err
	}
	if err := algorithm(si[0], algC14N11); err != nil {
		return nil, err
	}
	if err := algorithm(si[1], algECDSASHA384); err != nil {
		return nil, err
	}
	ref := si[2]
	if uri, ok := ref.attr("URI"); !ok || uri != "" || len(ref.attrs) != 1 {
		return nil, sigErr(`ds:Reference must have exactly URI="" (the whole document); this profile refuses references to parts of it`)
	}
	rp, err := children(ref, "Transforms", "DigestMethod", "DigestValue")
	if err != nil {
		return nil, err
	}
	tr := rp[0].elements()
	if len(tr) != 2 || len(rp[0].attrs) != 0 {
		return nil, sigErr("ds:Transforms must be exactly enveloped-signature then xml-c14n11")
	}
	for i, want := range []string{algEnveloped, algC14N11} {
		if !tr[i].is(nsDSig, "Transform") {
			return nil, sigErr("unexpected <%s> in ds:Transforms", tr[i].qname())
		}
		if err := algorithm(tr[i], want); err != nil {
			return nil, err
		}
	}
	if err := algorithm(rp[1], algSHA384); err != nil {
		return nil, err
	}
	wantDigest, err := base64Value(rp[2], 48)
	if err != nil {
		return nil, err
	}
	rawSig, err := base64Value(sigValue, 96)
	if err != nil {
		return nil, err
	}
	certs, err := keyInfoCerts(keyInfo)
	if err != nil {
		return nil, err
	}
	if err := trustCerts(certs); err != nil {
		return nil, err
	}

	// XMLDSig §4.4.3.3: URI="" is the document without comments; then the
	// enveloped-signature transform removes the Signature element and the
	// c14n11 transform serialises what is left.
	signed := canonicalize(root, sig)
	got := sha512.Sum384(signed)
	if subtle.ConstantTimeCompare(got[:], wantDigest) != 1 {
		return nil, sigErr("the document's SHA-384 digest %x differs from the signed DigestValue %x: the RIM was changed after it was signed", got, wantDigest)
	}

	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return nil, sigErr("the signing certificate %q does not hold a P-384 ECDSA key", certs[0].Subject.CommonName)
	}
	h := sha512.Sum384(canonicalize(signedInfo, nil))
	r, s := new(big.Int).SetBytes(rawSig[:48]), new(big.Int).SetBytes(rawSig[48:])
	if !ecdsa.Verify(pub, h[:], r, s) {
		return nil, sigErr("ECDSA P-384 signature over SignedInfo does not verify with the key of %q", certs[0].Subject.CommonName)
	}
	return &signedDocument{certs: certs, signed: signed}, nil
}

func walkElements(e *element, f func(*element)) {
	f(e)
	for _, c := range e.elements() {
		walkElements(c, f)
	}
}

// children returns e's element children, which must be exactly the
// ds: elements named, in that order, with only whitespace between them.
func children(e *element, names ...string) ([]*element, error) {
	var out []*element
	for _, c := range e.children {
		switch v := c.(type) {
		case text:
			if strings.TrimSpace(string(v)) != "" {
				return nil, sigErr("ds:%s holds text %q", e.local, truncate(string(v), 40))
			}
		case *element:
			if len(out) >= len(names) || !v.is(nsDSig, names[len(out)]) {
				return nil, sigErr("ds:%s must contain exactly %s; found <%s> (line %d)", e.local, "ds:"+strings.Join(names, ", ds:"), v.qname(), v.line)
			}
			out = append(out, v)
		}
	}
	if len(out) != len(names) {
		return nil, sigErr("ds:%s must contain exactly %s", e.local, "ds:"+strings.Join(names, ", ds:"))
	}
	return out, nil
}

// algorithm checks that e is an empty element whose only attribute is
// Algorithm=want.
func algorithm(e *element, want string) error {
	got, _ := e.attr("Algorithm")
	if got != want || len(e.attrs) != 1 || len(e.elements()) != 0 {
		return sigErr("ds:%s Algorithm=%q is not allowed here; the profile allows only %q", e.local, got, want)
	}
	if t, _ := e.textContent(); strings.TrimSpace(t) != "" {
		return sigErr("ds:%s holds content", e.local)
	}
	return nil
}

func base64Value(e *element, size int) ([]byte, error) {
	t, ok := e.textContent()
	if !ok || len(e.attrs) != 0 {
		return nil, sigErr("ds:%s must hold only base64 text", e.local)
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(t), ""))
	if err != nil {
		return nil, sigErr("ds:%s is not base64: %v", e.local, err)
	}
	if len(b) != size {
		hint := ""
		if e.local == "SignatureValue" && len(b) > 96 && b[0] == 0x30 {
			hint = " (it looks ASN.1 DER; XMLDSig ECDSA signatures are raw r‖s)"
		}
		return nil, sigErr("ds:%s is %d bytes, want %d%s", e.local, len(b), size, hint)
	}
	return b, nil
}

func keyInfoCerts(keyInfo *element) ([]*x509.Certificate, error) {
	if len(keyInfo.attrs) != 0 {
		return nil, sigErr("ds:KeyInfo has attributes; the profile allows none")
	}
	data, err := children(keyInfo, "X509Data")
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, c := range data[0].children {
		switch v := c.(type) {
		case text:
			if strings.TrimSpace(string(v)) != "" {
				return nil, sigErr("ds:X509Data holds text")
			}
		case *element:
			if !v.is(nsDSig, "X509Certificate") {
				return nil, sigErr("ds:X509Data may hold only ds:X509Certificate, found <%s>", v.qname())
			}
			t, ok := v.textContent()
			if !ok {
				return nil, sigErr("ds:X509Certificate must hold base64 text")
			}
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(t), ""))
			if err != nil {
				return nil, sigErr("ds:X509Certificate %d is not base64: %v", len(certs)+1, err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, sigErr("ds:X509Certificate %d: %v", len(certs)+1, err)
			}
			certs = append(certs, cert)
		}
	}
	if len(certs) == 0 {
		return nil, sigErr("ds:KeyInfo holds no certificate")
	}
	return certs, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
