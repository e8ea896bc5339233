package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
)

// PEM block types of cosign key files. cosign ≥ 2.2 writes "ENCRYPTED
// SIGSTORE PRIVATE KEY"; older releases wrote "ENCRYPTED COSIGN PRIVATE
// KEY". Both hold a PKCS #8 key encrypted with scrypt + NaCl secretbox
// (go-securesystemslib's "encrypted" format, which cosign uses).
const (
	pemSigstorePrivate = "ENCRYPTED SIGSTORE PRIVATE KEY"
	pemCosignPrivate   = "ENCRYPTED COSIGN PRIVATE KEY"
	pemPublic          = "PUBLIC KEY"
)

// ErrKey marks a key file that cannot be used: malformed, of an
// unsupported type, or a wrong password.
var ErrKey = errors.New("key")

// GenerateKeyPair makes a cosign-compatible ECDSA P-256 key pair: the
// private key encrypted with password (which may be empty, as cosign
// allows), and the public key as PKIX PEM.
func GenerateKeyPair(password []byte) (privPEM, pubPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	enc, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemSigstorePrivate, Bytes: enc}),
		pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: pub}), nil
}

// LoadPrivateKey reads a cosign private key file (encrypted) or an
// unencrypted PKCS #8 / SEC 1 PEM key, and returns it as a signer. Only
// ECDSA P-256 and P-384 keys are supported: their signatures are
// deterministic (RFC 6979), so signing the same statement twice gives the
// same bundle.
func LoadPrivateKey(data, password []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, fmt.Errorf("%w: not a PEM file", ErrKey)
	}
	der := blk.Bytes
	switch blk.Type {
	case pemSigstorePrivate, pemCosignPrivate:
		var err error
		if der, err = encrypted.Decrypt(blk.Bytes, password); err != nil {
			return nil, fmt.Errorf("%w: cannot decrypt the private key (wrong password?): %v", ErrKey, err)
		}
	case "PRIVATE KEY", "EC PRIVATE KEY":
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a private key", ErrKey, blk.Type)
	}
	var key any
	var err error
	if blk.Type == "EC PRIVATE KEY" {
		key, err = x509.ParseECPrivateKey(der)
	} else {
		key, err = x509.ParsePKCS8PrivateKey(der)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || (ec.Curve != elliptic.P256() && ec.Curve != elliptic.P384()) {
		return nil, fmt.Errorf("%w: only ECDSA P-256 and P-384 keys are supported (cosign's default is P-256), got %T", ErrKey, key)
	}
	return ec, nil
}

// LoadPublicKey reads a PKIX PEM public key (cosign.pub).
func LoadPublicKey(data []byte) (crypto.PublicKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != pemPublic {
		return nil, fmt.Errorf("%w: not a PEM PUBLIC KEY", ErrKey)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("%w: only ECDSA public keys are supported, got %T", ErrKey, pub)
	}
	return pub, nil
}

// KeyHint is sigstore's public-key hint: base64 of the SHA-256 of the PKIX
// DER (what cosign puts in verificationMaterial.publicKey.hint).
func KeyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return b64(sum[:]), nil
}

// PublicKeyPEM encodes a public key as PKIX PEM (cosign.pub).
func PublicKeyPEM(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der})), nil
}
