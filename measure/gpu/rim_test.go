package gpu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/measure/gpu/xmldsig"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

// now is the fixtures' "current time" (INVENTORY.md: machine clock at
// generation 2026-11-27). Tests never read the wall clock: most RIM signers
// expired in 2025 and the results would rot.
var now = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// inventoryEntry is one file of fixtures/gpu/INVENTORY.json.
type inventoryEntry struct {
	Path          string   `json:"path"`
	Kind          string   `json:"kind"`
	VerifyNow     string   `json:"verify_now"`
	VerifyLeaf    string   `json:"verify_leaf"`
	Version       string   `json:"colloquial_version"`
	Product       string   `json:"product"`
	LeafValidity  string   `json:"leaf_validity"`
	ActiveIndices []int    `json:"active_indices"`
	CertChain     string   `json:"cert_chain"`
	SigChainOK    *bool    `json:"signature_and_chain_ok"`
	Driver        string   `json:"driver"`
	VBIOS         string   `json:"vbios"`
	VBIOSRIMID    string   `json:"vbios_rim_id"`
	Nonce         string   `json:"nonce"`
	DriverRIMIDs  []string `json:"driver_rim_ids"`
}

func inventory(t *testing.T) []inventoryEntry {
	t.Helper()
	var inv []inventoryEntry
	if err := json.Unmarshal(readFixture(t, "INVENTORY.json"), &inv); err != nil {
		t.Fatal(err)
	}
	return inv
}

func fixturePath(t *testing.T, rel string) string {
	t.Helper()
	return testenv.SharedFile(t, "fixtures/gpu/"+rel)
}

func readFixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixturePath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expectErr maps INVENTORY's reason (from an independent verifier) to the
// error class cvmkit must return.
func expectErr(reason string) error {
	switch {
	case reason == "OK":
		return nil
	case strings.HasPrefix(reason, "xmldsig:"):
		return ErrSignature
	case strings.Contains(reason, "unknown authority"):
		return ErrUntrusted
	case strings.Contains(reason, "expired"):
		return ErrExpired
	}
	panic("unknown INVENTORY reason " + reason)
}

// TestRIMFixtures verifies every RIM of the fixtures at the two times
// INVENTORY.md records (now, and within the leaf's validity) and requires
// the same verdict, and for the accepted ones the same version, product
// and active indices.
func TestRIMFixtures(t *testing.T) {
	n := 0
	for _, e := range inventory(t) {
		if e.Kind != "RIM (SWID XML)" {
			continue
		}
		n++
		t.Run(filepath.Base(e.Path), func(t *testing.T) {
			data := readFixture(t, e.Path)
			check := func(at time.Time, reason string) {
				t.Helper()
				rim, err := VerifyRIM(data, RIMOptions{ChainOptions: ChainOptions{At: at}})
				want := expectErr(reason)
				if want != nil {
					if !errors.Is(err, want) {
						t.Fatalf("at %s: want %v (INVENTORY: %s), got %v", FormatTime(at), want, reason, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("at %s: %v", FormatTime(at), err)
				}
				var active []int
				for _, m := range rim.Active() {
					active = append(active, m.Index)
				}
				if rim.Version != e.Version || rim.Product != e.Product || !reflect.DeepEqual(active, e.ActiveIndices) {
					t.Fatalf("got %s %s %v, INVENTORY says %s %s %v", rim.Version, rim.Product, active, e.Version, e.Product, e.ActiveIndices)
				}
				if rim.Signer.Status != SignerValid || rim.Signer.Revocation != RevocationNotChecked || len(rim.Signer.Certs) != 4 {
					t.Fatalf("signer %+v", rim.Signer)
				}
			}
			check(now, e.VerifyNow)
			// "verify_leaf" is at the signing certificate's NotBefore + 1h.
			check(signerNotBefore(t, data).Add(time.Hour), e.VerifyLeaf)
		})
	}
	if n != 36 {
		t.Fatalf("INVENTORY lists %d RIMs, want 36", n)
	}
}

// TestExpiredSigner: an expired signer fails by default and is accepted with
// AllowExpired, recorded as expired and verified at the leaf's NotAfter.
func TestExpiredSigner(t *testing.T) {
	data := readFixture(t, "nvtrust/rims/1010_0200_882_96005E0001_PROD.swidtag")
	_, err := VerifyRIM(data, RIMOptions{ChainOptions: ChainOptions{At: now}})
	if !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "2023-06-23..2025-06-22") {
		t.Fatalf("want an expiry error naming the validity, got %v", err)
	}
	rim, err := VerifyRIM(data, RIMOptions{ChainOptions: ChainOptions{At: now, AllowExpired: true}})
	if err != nil {
		t.Fatal(err)
	}
	if rim.Signer.Status != SignerExpired || !rim.Signer.VerifiedAt.Equal(rim.Signer.Certs[0].NotAfter) {
		t.Fatalf("signer %s verified at %s", rim.Signer.Status, rim.Signer.VerifiedAt)
	}
	// Before the signer existed nothing is allowed.
	_, err = VerifyRIM(data, RIMOptions{ChainOptions: ChainOptions{At: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), AllowExpired: true}})
	if !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "valid only from") {
		t.Fatalf("want a not-yet-valid error, got %v", err)
	}
	if _, err := VerifyRIM(data, RIMOptions{}); err == nil {
		t.Fatal("no verification time accepted")
	}
}

// TestRIMFields checks the fields of one RIM against its XML by hand.
func TestRIMFields(t *testing.T) {
	rim, err := VerifyRIM(readFixture(t, "nvtrust/rims/1010_0200_882_96005E0001_PROD.swidtag"),
		RIMOptions{ChainOptions: ChainOptions{At: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	if rim.TagID != "560b6686b372407d02dea1bd3bcedf3865fff39a281705348b27edd21e5f32c6541642eb5db0a494a24884d60b009cfe" ||
		rim.Kind != KindVBIOS || rim.Name != "GH100" || rim.Edition != "GPU" || rim.ManufacturerID != "5703" ||
		!strings.HasPrefix(rim.SHA256, "7e8ea28e7961a9ef") || len(rim.Measurements) != 64 {
		t.Fatalf("%+v", rim)
	}
	m1 := rim.Measurements[1]
	if m1.Name != "HashedMeasurement_1_FSP" || fmt.Sprintf("%x", m1.Alternatives[0])[:12] != "c3f65ef79a19" || m1.Size != 48 {
		t.Fatalf("%+v", m1)
	}
	if m12 := rim.Measurements[12]; len(m12.Alternatives) != 4 {
		t.Fatalf("index 12 has %d alternatives, want 4", len(m12.Alternatives))
	}
	chain := []string{"HCC RIM L4 Signer", "NVIDIA Reference Value L3 GH100 001", "NVIDIA Reference Value GH100 CA", "NVIDIA CoRIM signing Root CA"}
	for i, c := range rim.Signer.Certs {
		if c.Subject.CommonName != chain[i] {
			t.Fatalf("chain[%d] = %q, want %q", i, c.Subject.CommonName, chain[i])
		}
	}
	if Fingerprint(rim.Signer.Certs[3]) != RIMRootSHA256 {
		t.Fatal("chain does not end at the pinned root")
	}
}

// TestPinnedRootsMatchFixtures: the embedded roots are NVIDIA's, byte for
// byte the ones nvtrust and the attestation SDK ship.
func TestPinnedRootsMatchFixtures(t *testing.T) {
	for _, c := range []struct{ rel, fp string }{
		{"nvtrust/certs/nvidia_rim_root_CoRIM_signing_Root_CA.pem", RIMRootSHA256},
		{"attestation-sdk/certs/rim_root.crt", RIMRootSHA256},
		{"nvtrust/certs/nvidia_device_identity_ca.pem", DeviceRootSHA256},
	} {
		certs, err := ParseCertificates(readFixture(t, c.rel))
		if err != nil {
			t.Fatal(err)
		}
		if Fingerprint(certs[0]) != c.fp {
			t.Fatalf("%s: fingerprint %s, pinned %s", c.rel, Fingerprint(certs[0]), c.fp)
		}
	}
	// The attestation SDK's "incorrect root" must not verify anything.
	bad, err := ParseCertificates(readFixture(t, "attestation-sdk/certs/incorrect_rim_root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = VerifyRIM(readFixture(t, "attestation-sdk/rims/NV_GPU_DRIVER_GH100_550.144.03.xml"), RIMOptions{Root: bad[0], ChainOptions: ChainOptions{At: now}})
	if !errors.Is(err, ErrUntrusted) {
		t.Fatalf("RIM verified against the wrong root: %v", err)
	}
}

func rimFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, e := range inventory(t) {
		if e.Kind == "RIM (SWID XML)" {
			out = append(out, e.Path)
		}
	}
	return out
}

// TestCanonicalMatchesXmllint compares cvmkit's Canonical XML 1.1 of every
// fixture RIM (whole document, signature included) with libxml2's
// (xmllint --c14n11), an independent implementation.
func TestCanonicalMatchesXmllint(t *testing.T) {
	xmllint := testenv.Tool(t, "xmllint", "apt-get install libxml2-utils")
	for _, rel := range rimFiles(t) {
		want, err := exec.Command(xmllint, "--c14n11", fixturePath(t, rel)).Output()
		if err != nil {
			t.Fatalf("xmllint %s: %v", rel, err)
		}
		doc, err := xmldsig.Parse(readFixture(t, rel))
		if err != nil {
			t.Fatal(err)
		}
		if got := xmldsig.Canonicalize(doc, nil); !bytes.Equal(got, want) {
			t.Fatalf("%s: canonical form differs from xmllint at byte %d", rel, firstDiff(got, want))
		}
	}
}

// TestCanonicalEdgeCasesMatchXmllint covers what NVIDIA's RIMs do not:
// escaping, redundant and changed namespace declarations, default
// namespace undeclaration, attribute ordering across namespaces and CDATA.
// (xmllint's --c14n11 keeps comments, so these documents have none;
// TestCommentsDropped covers them.)
func TestCanonicalEdgeCasesMatchXmllint(t *testing.T) {
	xmllint := testenv.Tool(t, "xmllint", "apt-get install libxml2-utils")
	docs := []string{
		`<?xml version="1.0"?>` + "\n" + `<a xmlns="urn:d" xmlns:p="urn:p" z="1" p:b="2" a="&amp;&lt;&gt;&quot;'"><p:x xmlns:p="urn:p"/><b xmlns=""><c xmlns="urn:d"> t&amp;&lt;&gt; </c></b><![CDATA[x<y&z]]></a>`,
		`<r xmlns:b="urn:b" xmlns:a="urn:a"><e b:z="1" a:z="2" z="3" b:a="4"/><q xmlns:a="urn:other" a:k="v">x&#13;y</q></r>`,
		`<p:r xmlns:p="urn:p"><p:s xmlns:q="urn:q"><q:t q:k="1">&#x9;tab &#xA;</q:t></p:s></p:r>`,
	}
	for i, d := range docs {
		f := filepath.Join(t.TempDir(), fmt.Sprintf("d%d.xml", i))
		if err := os.WriteFile(f, []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
		want, err := exec.Command(xmllint, "--c14n11", f).Output()
		if err != nil {
			t.Fatalf("xmllint: %v", err)
		}
		doc, err := xmldsig.Parse([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		if got := xmldsig.Canonicalize(doc, nil); !bytes.Equal(got, want) {
			t.Fatalf("doc %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestPositiveRIMsVerifyWithXmlsec1 checks, with xmlsec1 (the XMLDSig
// implementation NVIDIA's attestation SDK uses), that every RIM cvmkit
// accepts verifies there too at the same time, and the ones it refuses for
// their signature fail there too.
func TestPositiveRIMsVerifyWithXmlsec1(t *testing.T) {
	xmlsec1 := testenv.Tool(t, "xmlsec1", "apt-get install xmlsec1")
	root := fixturePath(t, "nvtrust/certs/nvidia_rim_root_CoRIM_signing_Root_CA.pem")
	for _, e := range inventory(t) {
		if e.Kind != "RIM (SWID XML)" {
			continue
		}
		at := time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC)
		if strings.HasPrefix(e.LeafValidity, "2026") {
			at = now
		} else if strings.HasPrefix(e.LeafValidity, "2023") {
			at = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		_, err := VerifyRIM(readFixture(t, e.Path), RIMOptions{ChainOptions: ChainOptions{At: at}})
		out, xerr := exec.Command(xmlsec1, "--verify", "--trusted-pem", root, "--verification-time", at.Format(time.DateTime), fixturePath(t, e.Path)).CombinedOutput()
		if (err == nil) != (xerr == nil) {
			t.Errorf("%s at %s: cvmkit %v, xmlsec1 %v: %s", e.Path, at.Format(time.DateOnly), err, xerr, lastLine(out))
		}
	}
}

func lastLine(b []byte) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	return l[len(l)-1]
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// signerNotBefore reads the first KeyInfo certificate's NotBefore without
// verifying anything.
func signerNotBefore(t *testing.T, data []byte) time.Time {
	t.Helper()
	doc, err := xmldsig.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var ki *xmldsig.Element
	xmldsig.Walk(doc, func(e *xmldsig.Element) {
		if e.Is(xmldsig.NSDSig, "KeyInfo") {
			ki = e
		}
	})
	certs, err := xmldsig.KeyInfoCertificates(ki)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0].NotBefore
}
