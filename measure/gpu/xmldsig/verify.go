package xmldsig

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
	NSDSig         = "http://www.w3.org/2000/09/xmldsig#"
	AlgC14N11      = "http://www.w3.org/2006/12/xml-c14n11"
	AlgEnveloped   = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	AlgECDSASHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
	AlgSHA384      = "http://www.w3.org/2001/04/xmldsig-more#sha384"
)

// ErrSignature marks a signature that does not verify, as opposed to a
// certificate chain that is not trusted: a RIM whose digest does not match
// its document, whose ECDSA signature fails or that breaks the strict
// profile; a report whose SPDM signature fails or whose FWID differs from
// its certificate's.
var ErrSignature = errors.New("signature")

// Signed is what verifySignature hands on: the certificates in
// KeyInfo (leaf first) and the canonical bytes the digest covers, which is
// the only place measurements are read from.
type Signed struct {
	Certs []*x509.Certificate
	Bytes []byte
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
func Verify(root *Element, trustCerts func([]*x509.Certificate) error) (*Signed, error) {
	var sigs []*Element
	Walk(root, func(e *Element) {
		if e.Is(NSDSig, "Signature") {
			sigs = append(sigs, e)
		}
	})
	if len(sigs) != 1 {
		return nil, sigErr("the RIM must hold exactly one ds:Signature, it holds %d", len(sigs))
	}
	sig := sigs[0]
	if sig.parent != root {
		return nil, sigErr("ds:Signature (line %d) is not a child of the document element", sig.Line)
	}
	if len(sig.Attrs) != 0 {
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
	if err := algorithm(si[0], AlgC14N11); err != nil {
		return nil, err
	}
	if err := algorithm(si[1], AlgECDSASHA384); err != nil {
		return nil, err
	}
	ref := si[2]
	if uri, ok := ref.Attr("URI"); !ok || uri != "" || len(ref.Attrs) != 1 {
		return nil, sigErr(`ds:Reference must have exactly URI="" (the whole document); this profile refuses references to parts of it`)
	}
	rp, err := children(ref, "Transforms", "DigestMethod", "DigestValue")
	if err != nil {
		return nil, err
	}
	tr := rp[0].Elements()
	if len(tr) != 2 || len(rp[0].Attrs) != 0 {
		return nil, sigErr("ds:Transforms must be exactly enveloped-signature then xml-c14n11")
	}
	for i, want := range []string{AlgEnveloped, AlgC14N11} {
		if !tr[i].Is(NSDSig, "Transform") {
			return nil, sigErr("unexpected <%s> in ds:Transforms", tr[i].QName())
		}
		if err := algorithm(tr[i], want); err != nil {
			return nil, err
		}
	}
	if err := algorithm(rp[1], AlgSHA384); err != nil {
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
	certs, err := KeyInfoCertificates(keyInfo)
	if err != nil {
		return nil, err
	}
	if err := trustCerts(certs); err != nil {
		return nil, err
	}

	// XMLDSig §4.4.3.3: URI="" is the document without comments; then the
	// enveloped-signature transform removes the Signature element and the
	// c14n11 transform serialises what is left.
	signed := Canonicalize(root, sig)
	got := sha512.Sum384(signed)
	if subtle.ConstantTimeCompare(got[:], wantDigest) != 1 {
		return nil, sigErr("the document's SHA-384 digest %x differs from the signed DigestValue %x: the RIM was changed after it was signed", got, wantDigest)
	}

	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return nil, sigErr("the signing certificate %q does not hold a P-384 ECDSA key", certs[0].Subject.CommonName)
	}
	h := sha512.Sum384(Canonicalize(signedInfo, nil))
	r, s := new(big.Int).SetBytes(rawSig[:48]), new(big.Int).SetBytes(rawSig[48:])
	if !ecdsa.Verify(pub, h[:], r, s) {
		return nil, sigErr("ECDSA P-384 signature over SignedInfo does not verify with the key of %q", certs[0].Subject.CommonName)
	}
	return &Signed{Certs: certs, Bytes: signed}, nil
}

func Walk(e *Element, f func(*Element)) {
	f(e)
	for _, c := range e.Elements() {
		Walk(c, f)
	}
}

// children returns e's element children, which must be exactly the
// ds: elements named, in that order, with only whitespace between them.
func children(e *Element, names ...string) ([]*Element, error) {
	var out []*Element
	for _, c := range e.Children {
		switch v := c.(type) {
		case Text:
			if strings.TrimSpace(string(v)) != "" {
				return nil, sigErr("ds:%s holds text %q", e.Local, Truncate(string(v), 40))
			}
		case *Element:
			if len(out) >= len(names) || !v.Is(NSDSig, names[len(out)]) {
				return nil, sigErr("ds:%s must contain exactly %s; found <%s> (line %d)", e.Local, "ds:"+strings.Join(names, ", ds:"), v.QName(), v.Line)
			}
			out = append(out, v)
		}
	}
	if len(out) != len(names) {
		return nil, sigErr("ds:%s must contain exactly %s", e.Local, "ds:"+strings.Join(names, ", ds:"))
	}
	return out, nil
}

// algorithm checks that e is an empty element whose only attribute is
// Algorithm=want.
func algorithm(e *Element, want string) error {
	got, _ := e.Attr("Algorithm")
	if got != want || len(e.Attrs) != 1 || len(e.Elements()) != 0 {
		return sigErr("ds:%s Algorithm=%q is not allowed here; the profile allows only %q", e.Local, got, want)
	}
	if t, _ := e.TextContent(); strings.TrimSpace(t) != "" {
		return sigErr("ds:%s holds content", e.Local)
	}
	return nil
}

func base64Value(e *Element, size int) ([]byte, error) {
	t, ok := e.TextContent()
	if !ok || len(e.Attrs) != 0 {
		return nil, sigErr("ds:%s must hold only base64 text", e.Local)
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(t), ""))
	if err != nil {
		return nil, sigErr("ds:%s is not base64: %v", e.Local, err)
	}
	if len(b) != size {
		hint := ""
		if e.Local == "SignatureValue" && len(b) > 96 && b[0] == 0x30 {
			hint = " (it looks ASN.1 DER; XMLDSig ECDSA signatures are raw r‖s)"
		}
		return nil, sigErr("ds:%s is %d bytes, want %d%s", e.Local, len(b), size, hint)
	}
	return b, nil
}

func KeyInfoCertificates(keyInfo *Element) ([]*x509.Certificate, error) {
	if len(keyInfo.Attrs) != 0 {
		return nil, sigErr("ds:KeyInfo has attributes; the profile allows none")
	}
	data, err := children(keyInfo, "X509Data")
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, c := range data[0].Children {
		switch v := c.(type) {
		case Text:
			if strings.TrimSpace(string(v)) != "" {
				return nil, sigErr("ds:X509Data holds text")
			}
		case *Element:
			if !v.Is(NSDSig, "X509Certificate") {
				return nil, sigErr("ds:X509Data may hold only ds:X509Certificate, found <%s>", v.QName())
			}
			t, ok := v.TextContent()
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

func Truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
