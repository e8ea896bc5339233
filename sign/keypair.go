package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"fmt"
)

// Signer signs DSSE envelopes with an ECDSA key held in this process.
type Signer struct {
	key  *ecdsa.PrivateKey
	hash crypto.Hash
	hint string
	// Name says what the key is, for messages ("cosign.key").
	Name string
}

// NewSigner wraps a local ECDSA P-256 or P-384 key. Signatures use RFC 6979
// deterministic nonces (crypto/ecdsa with a nil random source), so the same
// statement always gives the same bundle.
func NewSigner(key crypto.Signer, name string) (*Signer, error) {
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: only ECDSA keys can sign", ErrKey)
	}
	h, err := curveHash(&ec.PublicKey)
	if err != nil {
		return nil, err
	}
	hint, err := KeyHint(&ec.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Signer{key: ec, hash: h, hint: hint, Name: name}, nil
}

func curveHash(pub *ecdsa.PublicKey) (crypto.Hash, error) {
	switch pub.Curve {
	case elliptic.P256():
		return crypto.SHA256, nil
	case elliptic.P384():
		return crypto.SHA384, nil
	}
	return 0, fmt.Errorf("%w: ECDSA curve %s is not supported (P-256 or P-384)", ErrKey, pub.Curve.Params().Name)
}

// PublicKey returns the verification key.
func (s *Signer) PublicKey() crypto.PublicKey { return &s.key.PublicKey }

// Hash is the digest algorithm the key signs with (SHA-256 for P-256,
// SHA-384 for P-384, as sigstore pairs them).
func (s *Signer) Hash() crypto.Hash { return s.hash }

// Key returns the private key (for sign/keyless's adapter).
func (s *Signer) Key() *ecdsa.PrivateKey { return s.key }

// SignData signs data deterministically and returns the ASN.1 signature
// and the digest it signed.
func (s *Signer) SignData(data []byte) ([]byte, []byte, error) {
	h := s.hash.New()
	h.Write(data)
	digest := h.Sum(nil)
	sig, err := s.key.Sign(nil, digest, s.hash)
	if err != nil {
		return nil, nil, fmt.Errorf("signing with %s: %w", s.Name, err)
	}
	return sig, digest, nil
}
