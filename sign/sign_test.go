package sign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/refvalues"
)

// testRelease writes a small release folder: an image lock, a measurement
// document, a model manifest and a payload file.
func testRelease(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dist")
	files := map[string]string{
		refvalues.LockPath: `{"schema":"cvmkit.dev/image-lock/v1","cvmkit":"test","release":"demo@1.0.0","settings":{"sourceDateEpoch":1},` +
			`"inputs":[{"key":"image.kernel","kind":"file","source":"vmlinuz","digest":"sha256:` + strings.Repeat("ab", 32) + `"}],` +
			`"verity":{"rootHash":"` + strings.Repeat("cd", 32) + `"},"cmdline":"console=ttyS0"}`,
		"image/rootfs.img":      "root filesystem bytes",
		refvalues.SNPPath:       `{"mode":"snp","measurements":[{"name":"qemu-EPYC-v4-1vcpu","digest":"` + strings.Repeat("11", 48) + `"}]}`,
		refvalues.ModelManifest: `{"files":[]}`,
		"model/weights/a.bin":   "ciphertext",
	}
	for rel, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func testSigner(t *testing.T, password string) (*Signer, []byte, []byte) {
	t.Helper()
	priv, pub, err := GenerateKeyPair([]byte(password))
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadPrivateKey(priv, []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(key, "test.key")
	if err != nil {
		t.Fatal(err)
	}
	return s, priv, pub
}

func TestKeyFiles(t *testing.T) {
	_, priv, pub := testSigner(t, "secret")
	if !bytes.HasPrefix(priv, []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")) || !bytes.HasPrefix(pub, []byte("-----BEGIN PUBLIC KEY-----")) {
		t.Fatalf("key file types:\n%s\n%s", priv[:50], pub[:30])
	}
	if _, err := LoadPrivateKey(priv, []byte("wrong")); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := LoadPrivateKey(pub, nil); !errors.Is(err, ErrKey) {
		t.Fatalf("public key as private: %v", err)
	}
	if _, err := LoadPublicKey(priv); !errors.Is(err, ErrKey) {
		t.Fatalf("private key as public: %v", err)
	}
}

// TestSignAndVerifyRelease signs a release folder, verifies both bundles,
// and shows that signing again gives the same bytes (RFC 6979).
func TestSignAndVerifyRelease(t *testing.T) {
	s, _, pubPEM := testSigner(t, "")
	pub, err := LoadPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	dir := testRelease(t)
	signed, err := SignRelease(context.Background(), dir, WithKey(s))
	if err != nil {
		t.Fatal(err)
	}
	if len(signed) != 2 || signed[0].Subjects != 5 || signed[1].Subjects != 2 {
		t.Fatalf("%+v", signed)
	}
	first, _ := os.ReadFile(filepath.Join(dir, BundlePath(ReferenceValuesBase)))
	for _, sg := range signed {
		b, _ := os.ReadFile(filepath.Join(dir, sg.Bundle))
		payload, err := VerifyBundle(b, pub)
		if err != nil {
			t.Fatal(err)
		}
		stmt, _ := os.ReadFile(filepath.Join(dir, sg.Statement))
		if !bytes.Equal(payload, stmt) {
			t.Fatal("bundle payload differs from the statement file")
		}
		st, err := ParseStatement(payload)
		if err != nil || st.PredicateType != sg.PredicateType {
			t.Fatalf("%v %+v", err, st)
		}
	}
	// The predicate carries the values.
	st, _ := os.ReadFile(filepath.Join(dir, StatementPath(ReferenceValuesBase)))
	var parsed struct {
		Predicate ReferenceValues `json:"predicate"`
	}
	if err := json.Unmarshal(st, &parsed); err != nil {
		t.Fatal(err)
	}
	p := parsed.Predicate
	if p.Release != "demo@1.0.0" || p.Image == nil || p.Image.Cmdline != "console=ttyS0" || p.Measurements["snp"] == nil || p.Model == nil {
		t.Fatalf("predicate %+v", p)
	}

	// Signing again (same key, same files) gives the same bundle.
	if _, err := SignRelease(context.Background(), dir, WithKey(s)); err == nil {
		t.Fatal("signed over an existing attestations folder")
	}
	os.RemoveAll(filepath.Join(dir, AttestationsDir))
	if _, err := SignRelease(context.Background(), dir, WithKey(s)); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, BundlePath(ReferenceValuesBase)))
	if !bytes.Equal(first, again) {
		t.Fatal("re-signing the same statement gave a different bundle")
	}

	// Another key does not verify; a changed payload does not verify.
	other, _, otherPub := testSigner(t, "")
	_ = other
	op, _ := LoadPublicKey(otherPub)
	if _, err := VerifyBundle(first, op); !errors.Is(err, ErrSignature) {
		t.Fatalf("wrong key: %v", err)
	}
	var b map[string]any
	if err := json.Unmarshal(first, &b); err != nil {
		t.Fatal(err)
	}
	env := b["dsseEnvelope"].(map[string]any)
	env["payload"] = b64(bytes.Replace(st, []byte("console=ttyS0"), []byte("console=ttyS1"), 1))
	tampered, _ := json.Marshal(b)
	if _, err := VerifyBundle(tampered, pub); !errors.Is(err, ErrSignature) {
		t.Fatalf("tampered payload: %v", err)
	}
}

func TestSubjectsRefuseSymlinks(t *testing.T) {
	dir := testRelease(t)
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := Subjects(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("symlink accepted: %v", err)
	}
}

func TestParseStatementRefusals(t *testing.T) {
	for _, bad := range []string{
		`{"_type":"x","subject":[{"name":"a","digest":{"sha256":"` + strings.Repeat("0", 64) + `"}}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"../a","digest":{"sha256":"` + strings.Repeat("0", 64) + `"}}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha1":"00"}}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"p","predicate":{}}`,
	} {
		if _, err := ParseStatement([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
