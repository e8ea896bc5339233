package sign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Signer is what signs a DSSE envelope: a local key, a KMS key, or an
// ephemeral key certified by Fulcio. It implements sigstore-go's
// sign.Keypair.
type Signer struct {
	pub  crypto.PublicKey
	hash crypto.Hash
	// sign signs a digest of the data (hash above).
	sign func(ctx context.Context, data, digest []byte) ([]byte, error)
	hint string
	// Name says what the key is, for messages ("cosign.key", a KMS URI).
	Name string
}

var _ sgsign.Keypair = (*Signer)(nil)

// NewSigner wraps a local ECDSA key. Signatures use RFC 6979 deterministic
// nonces (crypto/ecdsa with a nil random source), so the same statement
// always gives the same bundle.
func NewSigner(key crypto.Signer, name string) (*Signer, error) {
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: only ECDSA keys can sign", ErrKey)
	}
	s := &Signer{pub: &ec.PublicKey, Name: name}
	if err := s.setHash(); err != nil {
		return nil, err
	}
	s.sign = func(_ context.Context, _, digest []byte) ([]byte, error) {
		return ec.Sign(nil, digest, s.hash)
	}
	return s, nil
}

// NewRemoteSigner wraps a signer whose private key lives elsewhere (a
// KMS): signFn receives the message and its digest.
func NewRemoteSigner(pub crypto.PublicKey, name string, signFn func(ctx context.Context, message, digest []byte) ([]byte, error)) (*Signer, error) {
	s := &Signer{pub: pub, Name: name, sign: signFn}
	return s, s.setHash()
}

func (s *Signer) setHash() error {
	ec, ok := s.pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: only ECDSA keys are supported, got %T", ErrKey, s.pub)
	}
	switch ec.Curve {
	case elliptic.P256():
		s.hash = crypto.SHA256
	case elliptic.P384():
		s.hash = crypto.SHA384
	default:
		return fmt.Errorf("%w: ECDSA curve %s is not supported (P-256 or P-384)", ErrKey, ec.Curve.Params().Name)
	}
	h, err := KeyHint(s.pub)
	s.hint = h
	return err
}

// PublicKey returns the verification key.
func (s *Signer) PublicKey() crypto.PublicKey { return s.pub }

// GetHashAlgorithm implements sign.Keypair.
func (s *Signer) GetHashAlgorithm() protocommon.HashAlgorithm {
	if s.hash == crypto.SHA384 {
		return protocommon.HashAlgorithm_SHA2_384
	}
	return protocommon.HashAlgorithm_SHA2_256
}

// GetSigningAlgorithm implements sign.Keypair.
func (s *Signer) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	if s.hash == crypto.SHA384 {
		return protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_384
	}
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}

// GetHint implements sign.Keypair.
func (s *Signer) GetHint() []byte { return []byte(s.hint) }

// GetKeyAlgorithm implements sign.Keypair.
func (s *Signer) GetKeyAlgorithm() string { return "ECDSA" }

// GetPublicKey implements sign.Keypair.
func (s *Signer) GetPublicKey() crypto.PublicKey { return s.pub }

// GetPublicKeyPem implements sign.Keypair.
func (s *Signer) GetPublicKeyPem() (string, error) {
	der, err := x509.MarshalPKIXPublicKey(s.pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der})), nil
}

// SignData implements sign.Keypair: it returns the signature and the digest
// it signed.
func (s *Signer) SignData(ctx context.Context, data []byte) ([]byte, []byte, error) {
	h := s.hash.New()
	_, _ = h.Write(data)
	digest := h.Sum(nil)
	sig, err := s.sign(ctx, data, digest)
	if err != nil {
		return nil, nil, fmt.Errorf("signing with %s: %w", s.Name, err)
	}
	return sig, digest, nil
}
