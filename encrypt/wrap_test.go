package encrypt

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/tink-crypto/tink-go/v2/testing/fakekms"
)

func sameKey(t *testing.T, a, b *DataKey) {
	t.Helper()
	if a.KeyID != b.KeyID || !bytes.Equal(a.ikm, b.ikm) {
		t.Fatal("unwrapped key differs")
	}
}

func TestHPKE(t *testing.T) {
	key, _ := NewDataKey()
	for _, kem := range HPKEKEMs {
		pub, priv, err := NewHPKEKey(kem)
		if err != nil {
			t.Fatal(err)
		}
		w, err := WrapHPKE(pub, key, "demo@1")
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnwrapHPKE(priv, w.Data, "demo@1")
		if err != nil {
			t.Fatalf("%s: %v", kem, err)
		}
		sameKey(t, key, got)
		if _, err := UnwrapHPKE(priv, w.Data, "demo@2"); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: another release's context opened the wrap: %v", kem, err)
		}
		_, other, _ := NewHPKEKey(kem)
		if _, err := UnwrapHPKE(other, w.Data, "demo@1"); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: another private key opened the wrap: %v", kem, err)
		}
		if _, err := WrapHPKE(priv, key, "demo@1"); err == nil {
			t.Errorf("%s: wrapped to a private key file", kem)
		}
	}
	if _, _, err := NewHPKEKey("p256"); err == nil {
		t.Error("unknown KEM accepted")
	}
}

// TestKMS wraps with Tink's fake KMS (a KEK in the URI) and reads the
// wrapped keyset back with Tink.
func TestKMS(t *testing.T) {
	uri, err := fakekms.NewKeyURI()
	if err != nil {
		t.Fatal(err)
	}
	kek, err := fakekms.NewAEAD(uri)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewDataKey()
	w, err := WrapKMS(kek, uri, key, "demo@1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains([]byte(w.Recipient), []byte(uri[len("fake-kms://"):])) {
		t.Error("the fake KMS key leaked into the recipient")
	}
	got, err := UnwrapKMS(kek, w.Data, "demo@1")
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, key, got)
	if _, err := UnwrapKMS(kek, w.Data, "demo@2"); !errors.Is(err, ErrAuth) {
		t.Errorf("another release opened the KMS wrap: %v", err)
	}
}

func TestTrusteeResource(t *testing.T) {
	key, _ := NewDataKey()
	w, err := TrusteeResource(key, "default", "model", "llama")
	if err != nil || w.File != "trustee/default/model/llama" || !w.Secret || w.Recipient != "kbs:///default/model/llama" {
		t.Fatalf("%+v %v", w, err)
	}
	got, err := ParseKeyset(w.Data)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, key, got)
	if _, err := TrusteeResource(key, "default", "../x", "t"); err == nil {
		t.Error("path traversal accepted")
	}
}

func TestAzure(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 3072)
	spki, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	key, _ := NewDataKey()
	w, err := WrapAzure(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), "model-key", key)
	if err != nil {
		t.Fatal(err)
	}
	var aw AzureWrap
	json.Unmarshal(w.Data, &aw)
	ct, _ := base64.RawURLEncoding.DecodeString(aw.Wrapped)
	bin, err := rsa.DecryptOAEP(sha256.New(), nil, rk, ct, nil)
	if err != nil {
		t.Fatalf("RSA-OAEP-256 with the private key: %v", err)
	}
	got, err := ParseKeyset(bin)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, key, got)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	spki, _ = x509.MarshalPKIXPublicKey(&small.PublicKey)
	if _, err := WrapAzure(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), "k", key); err == nil {
		t.Error("1024-bit key accepted")
	}
}

// TestWrapsWritten: the public wraps land in keys/; the secret one (the
// cleartext keyset for Trustee) never enters the encrypted folder, only
// the secrets folder, at 0600; the index lists both.
func TestWrapsWritten(t *testing.T) {
	src := writeModel(t)
	key, _ := NewDataKey()
	pub, priv, _ := NewHPKEKey("x25519")
	hw, _ := WrapHPKE(pub, key, "demo@1")
	tw, _ := TrusteeResource(key, "default", "model", "demo")
	out := filepath.Join(t.TempDir(), "enc")
	wraps := []*WrappedKey{hw, tw}
	if _, err := EncryptModel(context.Background(), src, out, "demo@1", key, wraps, Options{}); err != nil {
		t.Fatal(err)
	}
	_, cleartext, _ := key.Cleartext()
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, cleartext) || bytes.Contains(b, []byte("primaryKeyId")) {
				t.Errorf("%s holds the cleartext keyset", p)
			}
		}
		return nil
	})
	if !HasSecrets(wraps) || HasSecrets(wraps[:1]) {
		t.Error("HasSecrets")
	}
	secrets := t.TempDir()
	files, err := WriteSecrets(secrets, wraps)
	if err != nil || len(files) != 1 || files[0] != "trustee/default/model/demo" {
		t.Fatalf("WriteSecrets = %v, %v", files, err)
	}
	fi, err := os.Stat(filepath.Join(secrets, tw.File))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("trustee resource: %v %v", fi, err)
	}
	if fi, _ := os.Stat(filepath.Join(secrets, "trustee", "default")); fi.Mode().Perm() != 0o700 {
		t.Errorf("secrets sub-folder mode %v", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(filepath.Join(out, hw.File))
	got, err := UnwrapHPKE(priv, b, "demo@1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecryptModel(context.Background(), out, filepath.Join(t.TempDir(), "p"), got, Options{}); err != nil {
		t.Fatalf("decrypt with the unwrapped key: %v", err)
	}
	var idx KeysIndex
	ib, _ := os.ReadFile(filepath.Join(out, "keys", "index.json"))
	if err := json.Unmarshal(ib, &idx); err != nil || len(idx.Wraps) != 2 {
		t.Fatalf("index %s", ib)
	}
}
