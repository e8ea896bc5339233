// Package keyless signs and verifies release statements keylessly with
// Sigstore: an ephemeral key certified by Fulcio for an OIDC identity, the
// signature recorded in Rekor, verified against a trusted root and a
// certificate identity. It uses sigstore-go, whose dependencies cost
// cvmkit's start-up time, so only the cvmkit-sigstore helper links it.
package keyless

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"time"

	"github.com/cvmkit/cvmkit/sign"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// Options says where the certificate and the log entry come from.
type Options struct {
	Certificates sgsign.CertificateProvider
	IDToken      string
	Logs         []sgsign.Transparency
}

// PublicGood returns an ephemeral key and the options for a Fulcio and a
// Rekor instance (sigstore's public-good ones: https://fulcio.sigstore.dev,
// https://rekor.sigstore.dev). Keyless bundles are not deterministic: the
// key, the certificate and the log entry are new each time.
func PublicGood(fulcioURL, rekorURL, idToken string) (sgsign.Keypair, Options, error) {
	if idToken == "" {
		return nil, Options{}, errors.New("keyless signing needs an OIDC identity token")
	}
	kp, err := sgsign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, Options{}, err
	}
	return kp, Options{
		Certificates: sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: fulcioURL}),
		IDToken:      idToken,
		Logs:         []sgsign.Transparency{sgsign.NewRekor(&sgsign.RekorOptions{BaseURL: rekorURL})},
	}, nil
}

// Sign signs a statement as a DSSE envelope in a sigstore bundle with kp,
// getting its certificate and log entries as opts says.
func Sign(ctx context.Context, statement []byte, kp sgsign.Keypair, opts Options) ([]byte, error) {
	bo := sgsign.BundleOptions{Context: ctx, CertificateProvider: opts.Certificates, TransparencyLogs: opts.Logs}
	if opts.Certificates != nil {
		bo.CertificateProviderOptions = &sgsign.CertificateProviderOptions{IDToken: opts.IDToken}
	}
	b, err := sgsign.Bundle(&sgsign.DSSEData{Data: statement, PayloadType: sign.PayloadType}, kp, bo)
	if err != nil {
		return nil, err
	}
	raw, err := protojson.Marshal(b)
	if err != nil {
		return nil, err
	}
	// protojson varies its whitespace on purpose; re-indent for stable bytes.
	return sign.IndentJSON(raw)
}

// Verify verifies a keyless bundle: the Fulcio certificate chains to the
// trusted root and was issued to id, the transparency log recorded the
// signature (one entry, its integrated time inside the certificate's
// validity), and the DSSE signature verifies. It returns the statement.
func Verify(data []byte, trusted root.TrustedMaterial, id verify.CertificateIdentity) ([]byte, error) {
	return verifyWith(data, trusted, []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1)}, verify.WithCertificateIdentity(id))
}

// VerifyKey verifies a key-based bundle with sigstore-go (tests use it to
// check sign.VerifyBundle's verdicts against sigstore's).
func VerifyKey(data []byte, pub crypto.PublicKey) ([]byte, error) {
	hint, err := sign.KeyHint(pub)
	if err != nil {
		return nil, err
	}
	h := crypto.SHA256
	if ec, ok := pub.(*ecdsa.PublicKey); ok && ec.Curve == elliptic.P384() {
		h = crypto.SHA384
	}
	v, err := signature.LoadVerifier(pub, h)
	if err != nil {
		return nil, err
	}
	material := root.NewTrustedPublicKeyMaterialFromMapping(map[string]*root.ExpiringKey{hint: root.NewExpiringKey(v, time.Time{}, time.Time{})})
	return verifyWith(data, material, []verify.VerifierOption{verify.WithNoObserverTimestamps()}, verify.WithKey())
}

func verifyWith(data []byte, material root.TrustedMaterial, vopts []verify.VerifierOption, popt verify.PolicyOption) ([]byte, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("%w: not a sigstore bundle: %v", sign.ErrSignature, err)
	}
	env := b.GetDsseEnvelope()
	if env == nil || env.PayloadType != sign.PayloadType {
		return nil, fmt.Errorf("%w: the bundle holds no in-toto DSSE envelope", sign.ErrSignature)
	}
	v, err := verify.NewVerifier(material, vopts...)
	if err != nil {
		return nil, err
	}
	if _, err := v.Verify(&b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), popt)); err != nil {
		return nil, fmt.Errorf("%w: %v", sign.ErrSignature, err)
	}
	return env.Payload, nil
}

// Keypair adapts a cvmkit signer to sigstore-go's sign.Keypair.
type Keypair struct{ S *sign.Signer }

var _ sgsign.Keypair = Keypair{}

// GetHashAlgorithm implements sign.Keypair.
func (k Keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	if k.S.Hash() == crypto.SHA384 {
		return protocommon.HashAlgorithm_SHA2_384
	}
	return protocommon.HashAlgorithm_SHA2_256
}

// GetSigningAlgorithm implements sign.Keypair.
func (k Keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	if k.S.Hash() == crypto.SHA384 {
		return protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_384
	}
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}

// GetHint implements sign.Keypair.
func (k Keypair) GetHint() []byte { h, _ := sign.KeyHint(k.S.PublicKey()); return []byte(h) }

// GetKeyAlgorithm implements sign.Keypair.
func (k Keypair) GetKeyAlgorithm() string { return "ECDSA" }

// GetPublicKey implements sign.Keypair.
func (k Keypair) GetPublicKey() crypto.PublicKey { return k.S.PublicKey() }

// GetPublicKeyPem implements sign.Keypair.
func (k Keypair) GetPublicKeyPem() (string, error) { return sign.PublicKeyPEM(k.S.PublicKey()) }

// SignData implements sign.Keypair.
func (k Keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	return k.S.SignData(data)
}
