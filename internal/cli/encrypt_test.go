package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errb, func(string) (string, bool) { return "", false })
	return code, out.String(), errb.String()
}

// TestEncryptPushDecryptPull: cvmkit encrypt pushes the encrypted model to
// go-containerregistry's in-process registry on loopback, and cvmkit
// decrypt pulls it back by digest and decrypts it.
func TestEncryptPushDecryptPull(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	os.MkdirAll(model, 0o755)
	os.WriteFile(filepath.Join(model, "weights.bin"), bytes.Repeat([]byte("w"), 3<<20), 0o644)
	kp := filepath.Join(dir, "kbs")
	if code, _, e := run(t, "keygen", "--hpke", "--kem", "mlkem768x25519", "-o", kp); code != 0 {
		t.Fatal(e)
	}
	code, out, e := run(t, "encrypt", model, "-o", filepath.Join(dir, "enc"), "--release-id", "demo@1", "--recipient", "hpke:"+kp+".hpke.pub.json",
		"--oci-ref", host+"/models/demo:1", "--insecure-registry", "--json")
	if code != 0 {
		t.Fatalf("encrypt: %s", e)
	}
	var res encryptResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.OCIRef, host+"/models/demo@sha256:") {
		t.Fatalf("oci_ref %q", res.OCIRef)
	}
	plain := filepath.Join(dir, "plain")
	if code, _, e := run(t, "decrypt", "oci://"+res.OCIRef, "-o", plain, "--hpke-key", kp+".hpke.key.json", "--insecure-registry"); code != 0 {
		t.Fatalf("decrypt: %s", e)
	}
	got, _ := os.ReadFile(filepath.Join(plain, "weights.bin"))
	if !bytes.Equal(got, bytes.Repeat([]byte("w"), 3<<20)) {
		t.Fatal("weights differ after push and pull")
	}
	// By tag instead of digest: refused.
	if code, _, e := run(t, "decrypt", "oci://"+host+"/models/demo:1", "-o", filepath.Join(dir, "p2"), "--hpke-key", kp+".hpke.key.json", "--insecure-registry"); code != 2 || !strings.Contains(e, "pull by digest") {
		t.Fatalf("pull by tag: exit %d, %s", code, e)
	}
}
