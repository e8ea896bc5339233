package sign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Sigstore bundle and DSSE constants.
const (
	// PayloadType is the DSSE payload type of in-toto statements.
	PayloadType = "application/vnd.in-toto+json"
	// BundleMediaType is the sigstore bundle format written (v0.3).
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// ErrSignature marks a bundle that does not verify: a bad signature, an
// untrusted key or certificate, a missing transparency-log entry, or a
// payload that is not what it claims.
var ErrSignature = errors.New("signature")

// Bundle is the subset of a sigstore bundle (protobuf-specs
// dev.sigstore.bundle.v1.Bundle, JSON form) cvmkit writes for key-based
// signatures: the key hint and the DSSE envelope. Field order and names
// are protojson's, so the bytes equal what sigstore-go writes (tested).
type Bundle struct {
	MediaType            string               `json:"mediaType"`
	VerificationMaterial verificationMaterial `json:"verificationMaterial"`
	DSSEEnvelope         *envelope            `json:"dsseEnvelope,omitempty"`
}

type verificationMaterial struct {
	PublicKey *struct {
		Hint string `json:"hint"`
	} `json:"publicKey,omitempty"`
	// Keyless bundles carry a certificate and log entries instead; they
	// are verified by sign/keyless, so their material stays opaque here.
	Certificate json.RawMessage `json:"certificate,omitempty"`
	TlogEntries json.RawMessage `json:"tlogEntries,omitempty"`
	X509Chain   json.RawMessage `json:"x509CertificateChain,omitempty"`
	Timestamps  json.RawMessage `json:"timestampVerificationData,omitempty"`
}

type envelope struct {
	Payload     []byte      `json:"payload"`
	PayloadType string      `json:"payloadType"`
	Signatures  []signature `json:"signatures"`
}

type signature struct {
	Sig   []byte `json:"sig"`
	KeyID string `json:"keyid,omitempty"`
}

// PAE is DSSE's pre-authentication encoding, what the signature covers
// (https://github.com/secure-systems-lab/dsse/blob/master/protocol.md).
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// SignStatement signs an in-toto statement with a key as a DSSE envelope in
// a sigstore bundle and returns the bundle's JSON. The result depends only
// on the statement and the key (RFC 6979 signatures).
func SignStatement(statement []byte, s *Signer) ([]byte, error) {
	sig, _, err := s.SignData(PAE(PayloadType, statement))
	if err != nil {
		return nil, err
	}
	return KeyBundle(statement, sig, s.PublicKey())
}

// KeyBundle assembles the bundle of a statement signed (over its DSSE PAE)
// by the key pub: a local key, or a KMS key (sign/kms).
func KeyBundle(statement, sig []byte, pub crypto.PublicKey) ([]byte, error) {
	hint, err := KeyHint(pub)
	if err != nil {
		return nil, err
	}
	b := Bundle{MediaType: BundleMediaType, DSSEEnvelope: &envelope{Payload: statement, PayloadType: PayloadType, Signatures: []signature{{Sig: sig}}}}
	b.VerificationMaterial.PublicKey = &struct {
		Hint string `json:"hint"`
	}{hint}
	return MarshalBundle(b)
}

// MarshalBundle encodes a bundle as cvmkit writes it: two-space indent, one
// final newline.
func MarshalBundle(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return IndentJSON(raw)
}

// IndentJSON re-indents JSON the way cvmkit writes bundles.
func IndentJSON(raw []byte) ([]byte, error) {
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// ParseBundle decodes a bundle and checks its media type and DSSE envelope,
// returning the statement it carries (not yet verified).
func ParseBundle(data []byte) (*Bundle, error) {
	var b Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: not a sigstore bundle: %v", ErrSignature, err)
	}
	switch b.MediaType {
	case BundleMediaType, "application/vnd.dev.sigstore.bundle+json;version=0.3":
	default:
		return nil, fmt.Errorf("%w: bundle media type %q, want %q", ErrSignature, b.MediaType, BundleMediaType)
	}
	if b.DSSEEnvelope == nil || len(b.DSSEEnvelope.Signatures) != 1 {
		return nil, fmt.Errorf("%w: the bundle holds no DSSE envelope with one signature", ErrSignature)
	}
	if b.DSSEEnvelope.PayloadType != PayloadType {
		return nil, fmt.Errorf("%w: DSSE payload type %q, want %q", ErrSignature, b.DSSEEnvelope.PayloadType, PayloadType)
	}
	return &b, nil
}

// Keyless reports whether a bundle is a keyless one (a certificate instead
// of a public-key hint).
func (b *Bundle) Keyless() bool { return b.VerificationMaterial.PublicKey == nil }

// Payload is the statement the bundle's envelope carries.
func (b *Bundle) Payload() []byte { return b.DSSEEnvelope.Payload }

// VerifyBundle verifies a key-based bundle with pub and returns the in-toto
// statement it carries. It checks the DSSE signature, not the statement's
// subjects: the caller recomputes those. Keyless bundles are verified by
// sign/keyless.
func VerifyBundle(data []byte, pub crypto.PublicKey) ([]byte, error) {
	b, err := ParseBundle(data)
	if err != nil {
		return nil, err
	}
	if b.Keyless() {
		return nil, fmt.Errorf("%w: the bundle is signed keylessly (a Fulcio certificate); verify it with a certificate identity, not a key", ErrSignature)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: only ECDSA keys are supported", ErrKey)
	}
	hash := crypto.SHA256
	if ec.Curve == elliptic.P384() {
		hash = crypto.SHA384
	}
	h := hash.New()
	h.Write(PAE(b.DSSEEnvelope.PayloadType, b.DSSEEnvelope.Payload))
	if !ecdsa.VerifyASN1(ec, h.Sum(nil), b.DSSEEnvelope.Signatures[0].Sig) {
		hint, _ := KeyHint(pub)
		return nil, fmt.Errorf("%w: the DSSE signature does not verify with the given key (hint %s; the bundle names %s)", ErrSignature, hint, b.VerificationMaterial.PublicKey.Hint)
	}
	return b.DSSEEnvelope.Payload, nil
}

// b64 is standard base64, as sigstore writes bytes.
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
