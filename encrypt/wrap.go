package encrypt

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/cvmkit/cvmkit/refvalues"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// wrapLabel starts the context every wrapped data key is bound to, with the
// release ID after it, so a wrapped key cannot be moved to another release.
const wrapLabel = "cvmkit-weights-v1 data key\x00"

func wrapContext(releaseID string) []byte { return []byte(wrapLabel + releaseID) }

// HPKE suites: the KEMs cvmkit keygen makes keys for, with HKDF-SHA256 and
// AES-256-GCM (RFC 9180; Go's crypto/hpke).
var hpkeKEMs = map[string]func() hpke.KEM{
	"x25519":         func() hpke.KEM { return hpke.DHKEM(ecdh.X25519()) },
	"mlkem768x25519": hpke.MLKEM768X25519,
}

// HPKEKEMs lists the KEM names NewHPKEKey accepts.
var HPKEKEMs = []string{"x25519", "mlkem768x25519"}

// HPKEKeyFile is the JSON form of an HPKE key written by cvmkit keygen.
type HPKEKeyFile struct {
	Type string `json:"type"` // "cvmkit-hpke-public-key" or "cvmkit-hpke-private-key"
	KEM  string `json:"kem"`
	// KEMID is the RFC 9180 / IANA KEM identifier.
	KEMID uint16 `json:"kem_id"`
	Key   string `json:"key"` // base64
}

const (
	hpkePublicType  = "cvmkit-hpke-public-key"
	hpkePrivateType = "cvmkit-hpke-private-key"
)

// NewHPKEKey generates an HPKE key pair and returns the public and private
// key files.
func NewHPKEKey(kem string) (pub, priv []byte, err error) {
	mk, ok := hpkeKEMs[kem]
	if !ok {
		return nil, nil, fmt.Errorf("unknown HPKE KEM %q; want x25519 or mlkem768x25519", kem)
	}
	k := mk()
	sk, err := k.GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	skb, err := sk.Bytes()
	if err != nil {
		return nil, nil, err
	}
	pubJSON, _ := json.MarshalIndent(HPKEKeyFile{Type: hpkePublicType, KEM: kem, KEMID: k.ID(), Key: base64.StdEncoding.EncodeToString(sk.PublicKey().Bytes())}, "", "  ")
	privJSON, _ := json.MarshalIndent(HPKEKeyFile{Type: hpkePrivateType, KEM: kem, KEMID: k.ID(), Key: base64.StdEncoding.EncodeToString(skb)}, "", "  ")
	return append(pubJSON, '\n'), append(privJSON, '\n'), nil
}

func parseHPKEFile(b []byte, want string) (hpke.KEM, []byte, error) {
	var f HPKEKeyFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("not a cvmkit HPKE key file: %w", err)
	}
	if f.Type != want {
		return nil, nil, fmt.Errorf("HPKE key file is a %q, want a %q", f.Type, want)
	}
	mk, ok := hpkeKEMs[f.KEM]
	if !ok || mk().ID() != f.KEMID {
		return nil, nil, fmt.Errorf("HPKE key file has KEM %q (id %#x), which cvmkit does not use", f.KEM, f.KEMID)
	}
	raw, err := base64.StdEncoding.DecodeString(f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("HPKE key file: %w", err)
	}
	return mk(), raw, nil
}

// WrappedKey is a data key wrapped for one recipient.
// Its description (type, file, recipient, secret) is what keys/index.json
// lists; a secret one is written only by [WriteSecrets].
type WrappedKey struct {
	refvalues.KeyWrap
	Data []byte `json:"-"`
}

// HPKEWrap is the JSON written for an HPKE recipient.
type HPKEWrap struct {
	Type      string `json:"type"`
	KEM       string `json:"kem"`
	KDF       string `json:"kdf"`
	AEAD      string `json:"aead"`
	Recipient string `json:"recipient"` // sha256 of the public key
	Info      string `json:"info"`
	// Ciphertext is enc ‖ the sealed binary keyset, base64.
	Ciphertext string `json:"ciphertext"`
}

// WrapHPKE seals the binary keyset to an HPKE public key (base mode,
// HKDF-SHA256, AES-256-GCM) with info = "cvmkit-weights-v1 data key" NUL
// release ID.
func WrapHPKE(pubFile []byte, key *DataKey, releaseID string) (*WrappedKey, error) {
	kem, raw, err := parseHPKEFile(pubFile, hpkePublicType)
	if err != nil {
		return nil, err
	}
	pk, err := kem.NewPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("HPKE public key: %w", err)
	}
	bin, _, err := key.Cleartext()
	if err != nil {
		return nil, err
	}
	ct, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), wrapContext(releaseID), bin)
	if err != nil {
		return nil, err
	}
	fp := sha256.Sum256(raw)
	var f HPKEKeyFile
	json.Unmarshal(pubFile, &f)
	w := HPKEWrap{Type: "hpke", KEM: f.KEM, KDF: "HKDF-SHA256", AEAD: "AES-256-GCM", Recipient: "sha256:" + hex.EncodeToString(fp[:]),
		Info: base64.StdEncoding.EncodeToString(wrapContext(releaseID)), Ciphertext: base64.StdEncoding.EncodeToString(ct)}
	b, _ := json.MarshalIndent(w, "", "  ")
	return &WrappedKey{KeyWrap: refvalues.KeyWrap{Type: "hpke", File: "keys/hpke-" + hex.EncodeToString(fp[:6]) + ".json", Recipient: w.Recipient}, Data: append(b, '\n')}, nil
}

// UnwrapHPKE opens an HPKE wrap with the private key file.
func UnwrapHPKE(privFile, wrap []byte, releaseID string) (*DataKey, error) {
	kem, raw, err := parseHPKEFile(privFile, hpkePrivateType)
	if err != nil {
		return nil, err
	}
	sk, err := kem.NewPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("HPKE private key: %w", err)
	}
	var w HPKEWrap
	if err := json.Unmarshal(wrap, &w); err != nil || w.Type != "hpke" {
		return nil, fmt.Errorf("not an HPKE-wrapped data key (%v)", err)
	}
	ct, err := base64.StdEncoding.DecodeString(w.Ciphertext)
	if err != nil {
		return nil, err
	}
	bin, err := hpke.Open(sk, hpke.HKDFSHA256(), hpke.AES256GCM(), wrapContext(releaseID), ct)
	if err != nil {
		return nil, fmt.Errorf("%w: the HPKE wrap does not open with this private key and release", ErrAuth)
	}
	return ParseKeyset(bin)
}

// WrapKMS encrypts the keyset with a key-encryption key held by a KMS (a
// Tink AEAD from a KMS client), as a Tink EncryptedKeyset bound to the
// release: any Tink implementation with access to the KEK reads it with
// keyset.ReadWithAssociatedData.
func WrapKMS(kek tink.AEAD, uri string, key *DataKey, releaseID string, n int) (*WrappedKey, error) {
	var b bytes.Buffer
	if err := key.Handle.WriteWithAssociatedData(keyset.NewBinaryWriter(&b), kek, wrapContext(releaseID)); err != nil {
		return nil, fmt.Errorf("wrapping with the KMS key %s: %w", redactURI(uri), err)
	}
	return &WrappedKey{KeyWrap: refvalues.KeyWrap{Type: "kms", File: fmt.Sprintf("keys/kms-%d.tink", n), Recipient: redactURI(uri)}, Data: b.Bytes()}, nil
}

// UnwrapKMS reads a KMS-wrapped keyset.
func UnwrapKMS(kek tink.AEAD, data []byte, releaseID string) (*DataKey, error) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(data)), kek, wrapContext(releaseID))
	if err != nil {
		return nil, fmt.Errorf("%w: the KMS key does not open this wrapped keyset (%v)", ErrAuth, err)
	}
	return fromHandle(h)
}

// redactURI keeps fake-kms:// URIs (which embed their key) out of outputs.
func redactURI(uri string) string {
	const fake = "fake-kms://"
	if len(uri) > len(fake) && uri[:len(fake)] == fake {
		h := sha256.Sum256([]byte(uri))
		return fake + "sha256:" + hex.EncodeToString(h[:8])
	}
	return uri
}

// TrusteeResource is the data key as a Trustee KBS resource: the cleartext
// keyset (Tink JSON) to upload with `kbs-client config set-resource --path
// repository/type/tag --resource-file FILE`. It is the key itself, so it is
// a secret wrap: it goes to the secrets folder as trustee/REPO/TYPE/TAG,
// mode 0600, never into the published release.
func TrusteeResource(key *DataKey, repository, typ, tag string) (*WrappedKey, error) {
	for _, p := range []string{repository, typ, tag} {
		if p == "" || checkPath(p) != nil || bytes.ContainsRune([]byte(p), '/') {
			return nil, fmt.Errorf("the Trustee resource path %s/%s/%s needs plain names for each part", repository, typ, tag)
		}
	}
	_, j, err := key.Cleartext()
	if err != nil {
		return nil, err
	}
	path := repository + "/" + typ + "/" + tag
	return &WrappedKey{KeyWrap: refvalues.KeyWrap{Type: "trustee", File: "trustee/" + path, Recipient: "kbs:///" + path, Secret: true}, Data: j}, nil
}

// AzureWrap is the JSON written for an Azure Key Vault recipient.
type AzureWrap struct {
	Type    string `json:"type"` // azure-key-vault
	KeyName string `json:"key_name"`
	Alg     string `json:"alg"` // RSA-OAEP-256
	// KEK is the SHA-256 of the key-exchange key's SubjectPublicKeyInfo.
	KEK string `json:"kek"`
	// Wrapped is the binary keyset encrypted with RSA-OAEP (SHA-256,
	// MGF1-SHA-256, no label), base64url.
	Wrapped string `json:"wrapped"`
}

// WrapAzure encrypts the binary keyset to an RSA public key (PEM) with
// RSA-OAEP-256 for import into Azure Key Vault / Managed HSM.
func WrapAzure(pubPEM []byte, keyName string, key *DataKey) (*WrappedKey, error) {
	blk, _ := pem.Decode(pubPEM)
	if blk == nil {
		return nil, errors.New("no PEM block in the Azure key-exchange key")
	}
	var pub *rsa.PublicKey
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		var ok bool
		if pub, ok = k.(*rsa.PublicKey); !ok {
			return nil, errors.New("the Azure key-exchange key is not an RSA key")
		}
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		pub = k
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key", blk.Type)
	}
	if pub.N.BitLen() < 2048 {
		return nil, fmt.Errorf("the RSA key has %d bits; Key Vault key-exchange keys have 2048 or more", pub.N.BitLen())
	}
	bin, _, err := key.Cleartext()
	if err != nil {
		return nil, err
	}
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, bin, nil)
	if err != nil {
		return nil, fmt.Errorf("RSA-OAEP-256: %w", err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(pub)
	fp := sha256.Sum256(spki)
	w := AzureWrap{Type: "azure-key-vault", KeyName: keyName, Alg: "RSA-OAEP-256", KEK: "sha256:" + hex.EncodeToString(fp[:]), Wrapped: base64.RawURLEncoding.EncodeToString(ct)}
	b, _ := json.MarshalIndent(w, "", "  ")
	return &WrappedKey{KeyWrap: refvalues.KeyWrap{Type: "azure-key-vault", File: "keys/azure-" + keyName + ".json", Recipient: w.KEK}, Data: append(b, '\n')}, nil
}
