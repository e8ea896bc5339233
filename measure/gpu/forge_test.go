package gpu

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/measure/gpu/xmldsig"

	"golang.org/x/crypto/ocsp"
)

var nvRIMTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

const forgedHash = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

func forgedPayload(prefix string) string {
	return `<` + prefix + `Payload><` + prefix + `Resource type="Measurement" index="1" active="True" alternatives="1" ns2:Hash0="` + forgedHash + `" name="forged" size="48"/></` + prefix + `Payload>`
}

// TestSignatureWrapping feeds real, NVIDIA-signed RIMs rearranged the ways
// XML signature-wrapping attacks do, each carrying a forged golden value
// outside what the signature covers, and requires every one to be refused
// (and never to yield the forged value).
func TestSignatureWrapping(t *testing.T) {
	orig := string(readFixture(t, "nvtrust/rims/1010_0200_882_96005E0001_PROD.swidtag"))
	if _, err := VerifyRIM([]byte(orig), RIMOptions{ChainOptions: ChainOptions{At: nvRIMTime}}); err != nil {
		t.Fatal(err)
	}
	sigStart := strings.Index(orig, "<ds:Signature")
	sigEnd := strings.Index(orig, "</ds:Signature>") + len("</ds:Signature>")
	sig := orig[sigStart:sigEnd]
	body := orig[:sigStart] // up to the signature: root start tag, Entity, Meta, Payload
	rootEnd := strings.Index(orig, ">") + 1
	rootTag := orig[:rootEnd]

	cases := []struct {
		name, doc, want string
	}{
		{
			// The classic: a second Payload beside the signed one.
			"second Payload after the signed one",
			body + forgedPayload("ns0:") + sig + "</SoftwareIdentity>\n",
			"changed after it was signed",
		},
		{
			// Content inside ds:Signature is removed by the enveloped
			// transform and not covered by SignedInfo: the signature still
			// verifies, so only the profile stops it.
			"forged Payload in a ds:Object",
			body + strings.Replace(sig, "</ds:KeyInfo>", `</ds:KeyInfo><ds:Object>`+forgedPayload("ns0:")+`</ds:Object>`, 1) + "</SoftwareIdentity>\n",
			"ds:Object",
		},
		{
			// A forged document wrapping the genuine signed one.
			"forged root wrapping the signed document",
			rootTag + forgedPayload("ns0:") + `<ns0:Entity name="x" role="tagCreator">` + strings.Replace(orig, "<SoftwareIdentity ", "<SoftwareIdentity xmlns:w=\"urn:w\" ", 1) + `</ns0:Entity></SoftwareIdentity>`,
			"not a child of the document element",
		},
		{
			// The genuine signature moved onto a forged document.
			"signature moved to a forged document",
			rootTag + `<ns0:Meta colloquialVersion="96.00.5E.00.01" product="GH100"/>` + forgedPayload("ns0:") + sig + "</SoftwareIdentity>",
			"changed after it was signed",
		},
		{
			"two signatures",
			body + sig + sig + "</SoftwareIdentity>\n",
			"exactly one ds:Signature",
		},
		{
			// A reference to a part of the document, the precondition of
			// most wrapping attacks, is refused outright.
			"reference to an Id",
			body + strings.Replace(sig, `URI=""`, `URI="#payload"`, 1) + "</SoftwareIdentity>\n",
			`URI=""`,
		},
		{
			"DOCTYPE with an entity",
			`<!DOCTYPE SoftwareIdentity [<!ENTITY h "` + forgedHash + `">]>` + "\n" + orig,
			"DOCTYPE",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rim, err := VerifyRIM([]byte(c.doc), RIMOptions{ChainOptions: ChainOptions{At: nvRIMTime}})
			if err == nil {
				t.Fatalf("accepted; index 1 = %x", rim.Measurements[1].Alternatives[0])
			}
			if !errors.Is(err, ErrSignature) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("wrong error class: %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}

	// The second line of defence: measurements come from the canonical
	// bytes the digest covers, which never include the ds:Object above.
	doc, err := xmldsig.Parse([]byte(cases[1].doc))
	if err != nil {
		t.Fatal(err)
	}
	sigEl := doc.Elements()[len(doc.Elements())-1]
	signed := xmldsig.Canonicalize(doc, sigEl)
	if strings.Contains(string(signed), forgedHash) {
		t.Fatal("the signed bytes contain the forged value")
	}
	genuine, _ := xmldsig.Parse([]byte(orig))
	if string(signed) != string(xmldsig.Canonicalize(genuine, genuine.Elements()[len(genuine.Elements())-1])) {
		t.Fatal("the signed bytes differ from the genuine document's")
	}
}

// testPKI is a throwaway P-384 RIM hierarchy for what NVIDIA's fixtures
// cannot show: OCSP answers and documents signed with content of our
// choosing.
type testPKI struct {
	root, inter, leaf          *x509.Certificate
	rootKey, interKey, leafKey *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{}
	mk := func(cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool, serial int64) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: ca,
		}
		if ca {
			tmpl.KeyUsage |= x509.KeyUsageCertSign
			tmpl.NotAfter = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, key
	}
	p.root, p.rootKey = mk("test RIM root", nil, nil, true, 1)
	p.inter, p.interKey = mk("test RIM CA", p.root, p.rootKey, true, 2)
	p.leaf, p.leafKey = mk("test RIM signer", p.inter, p.interKey, false, 3)
	return p
}

// sign returns body (a SoftwareIdentity document whose root end tag is
// "</SoftwareIdentity>") with an enveloped signature under the profile.
func (p *testPKI) sign(t *testing.T, body string) []byte {
	t.Helper()
	doc, err := xmldsig.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha512.Sum384(xmldsig.Canonicalize(doc, nil))
	si := `<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="` + xmldsig.AlgC14N11 + `"/><ds:SignatureMethod Algorithm="` + xmldsig.AlgECDSASHA384 +
		`"/><ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="` + xmldsig.AlgEnveloped + `"/><ds:Transform Algorithm="` + xmldsig.AlgC14N11 +
		`"/></ds:Transforms><ds:DigestMethod Algorithm="` + xmldsig.AlgSHA384 + `"/><ds:DigestValue>` + base64.StdEncoding.EncodeToString(digest[:]) +
		`</ds:DigestValue></ds:Reference></ds:SignedInfo>`
	keyInfo := `<ds:KeyInfo><ds:X509Data>`
	for _, c := range []*x509.Certificate{p.leaf, p.inter, p.root} {
		keyInfo += `<ds:X509Certificate>` + base64.StdEncoding.EncodeToString(c.Raw) + `</ds:X509Certificate>`
	}
	keyInfo += `</ds:X509Data></ds:KeyInfo>`
	end := strings.LastIndex(body, "</SoftwareIdentity>")
	withSig := body[:end] + `<ds:Signature xmlns:ds="` + xmldsig.NSDSig + `">` + si + `<ds:SignatureValue>SIG</ds:SignatureValue>` + keyInfo + `</ds:Signature>` + body[end:]
	full, err := xmldsig.Parse([]byte(withSig))
	if err != nil {
		t.Fatal(err)
	}
	var sie *xmldsig.Element
	xmldsig.Walk(full, func(e *xmldsig.Element) {
		if e.Is(xmldsig.NSDSig, "SignedInfo") {
			sie = e
		}
	})
	h := sha512.Sum384(xmldsig.Canonicalize(sie, nil))
	r, s, err := ecdsa.Sign(rand.Reader, p.leafKey, h[:])
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 96)
	r.FillBytes(raw[:48])
	s.FillBytes(raw[48:])
	return []byte(strings.Replace(withSig, "SIG", base64.StdEncoding.EncodeToString(raw), 1))
}

const testRIMBody = `<SoftwareIdentity xmlns="` + nsSWID + `" xmlns:ns0="` + nsSWID + `" xmlns:ns2="` + nsSHA384 + `" name="GH100" tagId="t1" version="1.0" tagVersion="0">
  <ns0:Entity name="Test" role="tagCreator"/>
  <ns0:Meta xmlns:ns1="` + nsRIM + `" colloquialVersion="99.00.01.00.01" edition="GPU" product="GH100" revision="r1" PayloadType="direct" ns1:FirmwareManufacturerId="5703"/>
  <ns0:Payload>
    <ns0:Resource type="Measurement" index="0" active="True" alternatives="2" ns2:Hash0="` + forgedHash + `" ns2:Hash1="` + forgedHash + `" name="Measurement_0" size="48"/>
    <ns0:Resource type="Measurement" index="1" active="False" alternatives="1" ns2:Hash0="` + forgedHash + `" name="Measurement_1" size="48"/>
  </ns0:Payload>
</SoftwareIdentity>`

func TestTestSignerRoundTrip(t *testing.T) {
	p := newTestPKI(t)
	rim, err := VerifyRIM(p.sign(t, testRIMBody), RIMOptions{Root: p.root, ChainOptions: ChainOptions{At: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	if rim.Version != "99.00.01.00.01" || len(rim.Active()) != 1 || len(rim.Active()[0].Alternatives) != 2 {
		t.Fatalf("%+v", rim)
	}
	// The pinned NVIDIA root does not trust it.
	if _, err := VerifyRIM(p.sign(t, testRIMBody), RIMOptions{ChainOptions: ChainOptions{At: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}}); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("want untrusted, got %v", err)
	}
}

// TestOCSP: responses are matched to chain certificates, verified with the
// issuer's key and judged at the verification time.
func TestOCSP(t *testing.T) {
	p := newTestPKI(t)
	doc := p.sign(t, testRIMBody)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	resp := func(cert, issuer *x509.Certificate, key crypto.Signer, status int, this, next time.Time) []byte {
		der, err := ocsp.CreateResponse(issuer, issuer, ocsp.Response{
			Status: status, SerialNumber: cert.SerialNumber, ThisUpdate: this, NextUpdate: next, ProducedAt: this,
			RevokedAt: this, RevocationReason: ocsp.KeyCompromise,
		}, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	day := 24 * time.Hour
	verify := func(responses ...[]byte) (*RIM, error) {
		return VerifyRIM(doc, RIMOptions{Root: p.root, ChainOptions: ChainOptions{At: at, OCSP: responses}})
	}
	leafGood := resp(p.leaf, p.inter, p.interKey, ocsp.Good, at.Add(-day), at.Add(day))
	interGood := resp(p.inter, p.root, p.rootKey, ocsp.Good, at.Add(-day), at.Add(day))

	rim, err := verify()
	if err != nil || rim.Signer.Revocation != RevocationNotChecked {
		t.Fatalf("no response: %v %v", err, rim)
	}
	if rim, err = verify(leafGood); err != nil || rim.Signer.Revocation != RevocationPartial {
		t.Fatalf("leaf only: %v", err)
	}
	if rim, err = verify(leafGood, interGood); err != nil || rim.Signer.Revocation != RevocationGood || !strings.HasPrefix(rim.Signer.OCSP[0], "good") {
		t.Fatalf("both: %v %+v", err, rim.Signer)
	}
	for name, c := range map[string]struct {
		r    []byte
		want string
	}{
		"revoked":           {resp(p.leaf, p.inter, p.interKey, ocsp.Revoked, at.Add(-day), at.Add(day)), "was revoked"},
		"unknown":           {resp(p.leaf, p.inter, p.interKey, ocsp.Unknown, at.Add(-day), at.Add(day)), "does not know"},
		"stale":             {resp(p.leaf, p.inter, p.interKey, ocsp.Good, at.Add(-3*day), at.Add(-2*day)), "not at"},
		"revoked inter too": {resp(p.inter, p.root, p.rootKey, ocsp.Revoked, at.Add(-day), at.Add(day)), "was revoked"},
	} {
		if _, err := verify(c.r); !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want %q, got %v", name, c.want, err)
		}
	}
	// Responses that do not answer for this chain are not used (and a
	// caller can tell): a forged signer, garbage, another certificate's.
	for name, r := range map[string][]byte{
		"wrong signer":   resp(p.leaf, p.inter, p.leafKey, ocsp.Good, at.Add(-day), at.Add(day)),
		"not OCSP":       []byte("garbage"),
		"another cert's": resp(p.root, p.root, p.rootKey, ocsp.Good, at.Add(-day), at.Add(day)),
	} {
		rim, err := verify(r)
		if err != nil || rim.Signer.Revocation != RevocationNotChecked || len(rim.Signer.OCSPUsed) != 0 {
			t.Errorf("%s: %v %+v", name, err, rim)
		}
	}
	if rim, _ := verify([]byte("garbage"), leafGood); !reflect.DeepEqual(rim.Signer.OCSPUsed, []int{1}) {
		t.Errorf("OCSPUsed %v", rim.Signer.OCSPUsed)
	}
}

// TestRIMProfileRefusals: documents validly signed with the test PKI but
// outside the strict profile or the RIM format are refused with a reason.
func TestRIMProfileRefusals(t *testing.T) {
	p := newTestPKI(t)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, c := range map[string]struct{ from, to, want string }{
		"duplicate index":      {`index="1" active="False"`, `index="0" active="False"`, "index 0 appears twice"},
		"missing HashN":        {`alternatives="2"`, `alternatives="3"`, "Hash2 is missing"},
		"hash in wrong ns":     {`ns2:Hash0="` + forgedHash + `" ns2:Hash1`, `Hash0="` + forgedHash + `" ns2:Hash1`, "not in the SHA-384 namespace"},
		"short hash":           {`ns2:Hash0="` + forgedHash + `" ns2:Hash1`, `ns2:Hash0="ff" ns2:Hash1`, "not 48 bytes"},
		"bad version":          {`colloquialVersion="99.00.01.00.01"`, `colloquialVersion="latest"`, "neither a VBIOS version"},
		"index out of range":   {`index="1" active="False"`, `index="64" active="False"`, "not in 0..63"},
		"unknown child":        {`<ns0:Payload>`, `<ns0:Link href="x"/><ns0:Payload>`, "unexpected element <ns0:Link>"},
		"no active":            {`index="0" active="True"`, `index="0" active="False"`, "no active measurement"},
		"xml:base":             {`<ns0:Payload>`, `<ns0:Payload xml:base="http://x/">`, "xml: attributes are not allowed"},
		"newline in attribute": {`name="Measurement_0"`, `name="Measurement&#10;0"`, "tab or line break"},
	} {
		body := strings.Replace(testRIMBody, c.from, c.to, 1)
		if body == testRIMBody {
			t.Fatalf("%s: edit did not apply", name)
		}
		var doc []byte
		if _, err := xmldsig.Parse([]byte(body)); err == nil {
			doc = p.sign(t, body)
		} else {
			doc = []byte(body)
		}
		_, err := VerifyRIM(doc, RIMOptions{Root: p.root, ChainOptions: ChainOptions{At: at}})
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want %q, got %v", name, c.want, err)
		}
	}
}
