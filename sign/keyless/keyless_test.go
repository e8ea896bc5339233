package keyless

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/sign"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// virtualFulcio certifies the one key the virtual Sigstore issued.
type virtualFulcio struct{ cert *x509.Certificate }

func (f virtualFulcio) GetCertificate(context.Context, sgsign.Keypair, *sgsign.CertificateProviderOptions) ([]byte, error) {
	return f.cert.Raw, nil
}

// virtualRekor records DSSE entries in the virtual Sigstore's log.
type virtualRekor struct {
	vs   *ca.VirtualSigstore
	cert *x509.Certificate
}

func (r virtualRekor) GetTransparencyLogEntry(_ context.Context, _ []byte, b *protobundle.Bundle) error {
	env := b.GetDsseEnvelope()
	de := &dsse.Envelope{PayloadType: env.PayloadType, Payload: base64.StdEncoding.EncodeToString(env.Payload)}
	for _, s := range env.Signatures {
		de.Signatures = append(de.Signatures, dsse.Signature{Sig: base64.StdEncoding.EncodeToString(s.Sig)})
	}
	at := time.Now().Add(time.Minute).Unix()
	entry, err := r.vs.GenerateTlogEntry(r.cert, de, env.Signatures[0].Sig, at, true)
	if err != nil {
		return err
	}
	// The entry's proto lacks what Rekor's response carries: the kind and
	// the signed entry timestamp (the log's promise to include it).
	tle := entry.TransparencyLogEntry()
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	set, err := r.vs.RekorSignPayload(tlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(tle.CanonicalizedBody), IntegratedTime: at, LogIndex: tle.LogIndex, LogID: hex.EncodeToString(tle.LogId.KeyId)})
	if err != nil {
		return err
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	b.VerificationMaterial.TlogEntries = append(b.VerificationMaterial.TlogEntries, tle)
	return nil
}

// TestKeyless signs a release keylessly against sigstore-go's in-memory
// Fulcio/Rekor instance (no network) and verifies it by certificate
// identity; another identity or issuer is refused.
func TestKeyless(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	const id, issuer = "https://github.com/acme/model/.github/workflows/release.yml@refs/tags/v1", "https://token.actions.githubusercontent.com"
	cert, key, err := vs.GenerateLeafCert(id, issuer)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.NewSigner(key.(*ecdsa.PrivateKey), "fulcio")
	if err != nil {
		t.Fatal(err)
	}
	statement := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"` + strings.Repeat("0", 64) + `"}}],"predicateType":"https://cvmkit.dev/reference-values/v1","predicate":{}}`)
	b, err := Sign(context.Background(), statement, Keypair{s}, Options{Certificates: virtualFulcio{cert}, IDToken: "token", Logs: []sgsign.Transparency{virtualRekor{vs, cert}}})
	if err != nil {
		t.Fatal(err)
	}
	good, err := verify.NewShortCertificateIdentity(issuer, "", id, "")
	if err != nil {
		t.Fatal(err)
	}
	payload, err := Verify(b, vs, good)
	if err != nil || !bytes.Equal(payload, statement) {
		t.Fatal(err)
	}
	// cvmkit's key verifier refuses keyless bundles with a clear reason.
	if _, err := sign.VerifyBundle(b, s.PublicKey()); !errors.Is(err, sign.ErrSignature) || !strings.Contains(err.Error(), "keylessly") {
		t.Fatalf("key verifier on a keyless bundle: %v", err)
	}
	for _, c := range [][2]string{{issuer, "https://github.com/evil/model/.github/workflows/release.yml@refs/tags/v1"}, {"https://accounts.google.com", id}} {
		other, _ := verify.NewShortCertificateIdentity(c[0], "", c[1], "")
		if _, err := Verify(b, vs, other); !errors.Is(err, sign.ErrSignature) {
			t.Errorf("identity %v accepted: %v", c, err)
		}
	}
	// Another Sigstore instance (another Fulcio root) does not trust it.
	vs2, _ := ca.NewVirtualSigstore()
	if _, err := Verify(b, vs2, good); !errors.Is(err, sign.ErrSignature) {
		t.Errorf("foreign trusted root accepted: %v", err)
	}
}

// TestKeyBundlesMatchSigstoreGo: cvmkit's own key-based bundles are byte for
// byte what sigstore-go writes for the same key and statement, and
// sigstore-go's verifier and cvmkit's agree on good and tampered bundles.
func TestKeyBundlesMatchSigstoreGo(t *testing.T) {
	for _, pass := range []string{"", "pw"} {
		priv, pubPEM, err := sign.GenerateKeyPair([]byte(pass))
		if err != nil {
			t.Fatal(err)
		}
		key, err := sign.LoadPrivateKey(priv, []byte(pass))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := sign.NewSigner(key, "k")
		pub, _ := sign.LoadPublicKey(pubPEM)
		statement := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"image/rootfs.img","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"x":"<&>"}}` + "\n")
		ours, err := sign.SignStatement(statement, s)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := Sign(context.Background(), statement, Keypair{s}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("cvmkit's bundle differs from sigstore-go's:\n%s\n%s", ours, theirs)
		}
		if _, err := VerifyKey(ours, pub); err != nil {
			t.Fatalf("sigstore-go refuses cvmkit's bundle: %v", err)
		}
		tampered := bytes.Replace(ours, []byte(`"sig": "M`), []byte(`"sig": "N`), 1)
		_, e1 := VerifyKey(tampered, pub)
		_, e2 := sign.VerifyBundle(tampered, pub)
		if e1 == nil || e2 == nil {
			t.Fatalf("tampered signature accepted: sigstore-go %v, cvmkit %v", e1, e2)
		}
	}
}
