package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	s, err := NewSigner(key.(*ecdsa.PrivateKey), "fulcio")
	if err != nil {
		t.Fatal(err)
	}
	dir := testRelease(t)
	signed, err := SignRelease(context.Background(), dir, s, &Keyless{Certificates: virtualFulcio{cert}, IDToken: "token", Logs: []sgsign.Transparency{virtualRekor{vs, cert}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, signed[0].Bundle))
	if err != nil {
		t.Fatal(err)
	}
	good, err := verify.NewShortCertificateIdentity(issuer, "", id, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyBundle(b, Trust{Root: vs, Identity: &good}); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{issuer, "https://github.com/evil/model/.github/workflows/release.yml@refs/tags/v1"}, {"https://accounts.google.com", id}} {
		other, _ := verify.NewShortCertificateIdentity(c[0], "", c[1], "")
		if _, err := VerifyBundle(b, Trust{Root: vs, Identity: &other}); !errors.Is(err, ErrSignature) {
			t.Errorf("identity %v accepted: %v", c, err)
		}
	}
	// Another Sigstore instance (another Fulcio root) does not trust it.
	vs2, _ := ca.NewVirtualSigstore()
	if _, err := VerifyBundle(b, Trust{Root: vs2, Identity: &good}); !errors.Is(err, ErrSignature) {
		t.Errorf("foreign trusted root accepted: %v", err)
	}
}
