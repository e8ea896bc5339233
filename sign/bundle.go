package sign

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// PayloadType is the DSSE payload type of in-toto statements.
const PayloadType = "application/vnd.in-toto+json"

// ErrSignature marks a bundle that does not verify: a bad signature, an
// untrusted key or certificate, a missing transparency-log entry, or a
// payload that is not what it claims.
var ErrSignature = errors.New("signature")

// Keyless holds what keyless signing needs: a certificate authority (Fulcio)
// that certifies the ephemeral key for an OIDC identity, and transparency
// logs (Rekor) that record the signature.
type Keyless struct {
	Certificates sgsign.CertificateProvider
	IDToken      string
	Logs         []sgsign.Transparency
}

// SignStatement signs an in-toto statement as a DSSE envelope in a sigstore
// bundle (v0.3) and returns the bundle's JSON. With a local key and no
// keyless options, the result depends only on the statement and the key.
func SignStatement(ctx context.Context, statement []byte, s sgsign.Keypair, keyless *Keyless) ([]byte, error) {
	opts := sgsign.BundleOptions{Context: ctx}
	if keyless != nil {
		opts.CertificateProvider = keyless.Certificates
		opts.CertificateProviderOptions = &sgsign.CertificateProviderOptions{IDToken: keyless.IDToken}
		opts.TransparencyLogs = keyless.Logs
	}
	b, err := sgsign.Bundle(&sgsign.DSSEData{Data: statement, PayloadType: PayloadType}, s, opts)
	if err != nil {
		return nil, err
	}
	raw, err := protojson.Marshal(b)
	if err != nil {
		return nil, err
	}
	// protojson varies its whitespace on purpose; re-indent for stable bytes.
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Trust says which signers a verification accepts: exactly one of a public
// key, or a certificate identity with the trusted root that anchors it.
type Trust struct {
	// PublicKey accepts bundles signed by this key.
	PublicKey crypto.PublicKey
	// Root (a sigstore trusted root: Fulcio CAs, Rekor logs) and Identity
	// accept keyless bundles whose certificate was issued to Identity.
	Root     root.TrustedMaterial
	Identity *verify.CertificateIdentity
}

// VerifyBundle verifies a bundle and returns the in-toto statement it
// carries. It checks the DSSE signature against the trusted key (or the
// Fulcio certificate against the trusted root and identity, and requires a
// transparency-log entry), not the statement's subjects: the caller
// recomputes those.
func VerifyBundle(data []byte, trust Trust) ([]byte, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("%w: not a sigstore bundle: %v", ErrSignature, err)
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, fmt.Errorf("%w: the bundle holds no DSSE envelope", ErrSignature)
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("%w: DSSE payload type %q, want %q", ErrSignature, env.PayloadType, PayloadType)
	}
	var (
		material root.TrustedMaterial
		vopts    []verify.VerifierOption
		popts    []verify.PolicyOption
	)
	switch {
	case trust.PublicKey != nil:
		hint, err := KeyHint(trust.PublicKey)
		if err != nil {
			return nil, err
		}
		v, err := signature.LoadVerifier(trust.PublicKey, hashFor(trust.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		material = root.NewTrustedPublicKeyMaterialFromMapping(map[string]*root.ExpiringKey{hint: root.NewExpiringKey(v, time.Time{}, time.Time{})})
		vopts = append(vopts, verify.WithNoObserverTimestamps())
		popts = append(popts, verify.WithKey())
	case trust.Root != nil && trust.Identity != nil:
		material = trust.Root
		vopts = append(vopts, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
		popts = append(popts, verify.WithCertificateIdentity(*trust.Identity))
	default:
		return nil, errors.New("sign: no trusted key or certificate identity given")
	}
	v, err := verify.NewVerifier(material, vopts...)
	if err != nil {
		return nil, err
	}
	if _, err := v.Verify(&b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), popts...)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return env.Payload, nil
}

func hashFor(pub crypto.PublicKey) crypto.Hash {
	s := &Signer{pub: pub}
	if s.setHash() == nil {
		return s.hash
	}
	return crypto.SHA256
}

// PublicGoodKeyless returns keyless signing through a Fulcio and a Rekor
// instance (sigstore's public-good ones are https://fulcio.sigstore.dev and
// https://rekor.sigstore.dev) for an OIDC identity token, with an ephemeral
// ECDSA P-256 key. Keyless bundles are not deterministic: the key, the
// certificate and the log entry are new each time.
func PublicGoodKeyless(fulcioURL, rekorURL, idToken string) (sgsign.Keypair, *Keyless, error) {
	if idToken == "" {
		return nil, nil, errors.New("keyless signing needs an OIDC identity token")
	}
	kp, err := sgsign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, nil, err
	}
	return kp, &Keyless{
		Certificates: sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: fulcioURL}),
		IDToken:      idToken,
		Logs:         []sgsign.Transparency{sgsign.NewRekor(&sgsign.RekorOptions{BaseURL: rekorURL})},
	}, nil
}
