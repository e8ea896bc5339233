package kms

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/sign"
)

// TestVaultTransit signs a statement through sigstore's hashivault provider
// against a loopback Vault transit server and verifies the bundle with the
// key's public half.
func TestVaultTransit(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(testenv.VaultTransit("release", "test-token", key))
	defer srv.Close()
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", "test-token")
	statement := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"` + strings.Repeat("0", 64) + `"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`)
	b, err := Sign(context.Background(), statement, "hashivault://release")
	if err != nil {
		t.Fatal(err)
	}
	got, err := sign.VerifyBundle(b, &key.PublicKey)
	if err != nil || string(got) != string(statement) {
		t.Fatalf("verify: %v", err)
	}
	pub, err := PublicKey(context.Background(), "hashivault://release")
	if err != nil || !pub.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Fatalf("public key: %v", err)
	}
	// A wrong token and an unknown key fail with the URI named.
	t.Setenv("VAULT_TOKEN", "wrong")
	if _, err := Sign(context.Background(), statement, "hashivault://release"); err == nil || !strings.Contains(err.Error(), "hashivault://release") {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := Sign(context.Background(), statement, "nosuchkms://x"); !errors.Is(err, sign.ErrKey) {
		t.Fatalf("unknown scheme: %v", err)
	}
}
