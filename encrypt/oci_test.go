package encrypt

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func encryptWithWraps(t *testing.T) (src, enc string, priv []byte) {
	t.Helper()
	src = writeModel(t)
	key, _ := NewDataKey()
	pub, priv, _ := NewHPKEKey("x25519")
	hw, _ := WrapHPKE(pub, key, "demo@1.0")
	tw, _ := TrusteeResource(key, "default", "model", "demo")
	enc = filepath.Join(t.TempDir(), "enc")
	if _, err := EncryptModel(context.Background(), src, enc, "demo@1.0", key, []*WrappedKey{hw, tw}, Options{}); err != nil {
		t.Fatal(err)
	}
	return src, enc, priv
}

// checkPulled decrypts a pulled folder with the HPKE key and compares it
// with the source model.
func checkPulled(t *testing.T, src, pulled string, priv []byte) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pulled, "keys", "trustee")); err == nil {
		t.Fatal("the secret Trustee resource was packaged")
	}
	w, err := filepath.Glob(filepath.Join(pulled, "keys", "hpke-*.json"))
	if err != nil || len(w) != 1 {
		t.Fatalf("HPKE wrap not pulled: %v", w)
	}
	wb, _ := os.ReadFile(w[0])
	key, err := UnwrapHPKE(priv, wb, "demo@1.0")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "plain")
	if _, err := DecryptModel(context.Background(), pulled, out, key, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"model.safetensors", "sub/tokenizer.json", "config.json"} {
		a, _ := os.ReadFile(filepath.Join(src, f))
		b, _ := os.ReadFile(filepath.Join(out, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs after the OCI round trip", f)
		}
	}
}

// pushToTestRegistry pushes the encrypted folder enc as models/demo:1.0 to
// go-containerregistry's in-process registry on loopback (closed when the
// test ends).
func pushToTestRegistry(t *testing.T, enc string) (*Artifact, name.Repository, name.Digest) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	a, err := NewArtifact(enc)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://")+"/models/demo", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	dig, err := a.Push(repo, "1.0")
	if err != nil {
		t.Fatal(err)
	}
	return a, repo, dig
}

// TestOCIRegistryRoundTrip pushes to go-containerregistry's in-process
// registry on loopback and pulls back by digest.
func TestOCIRegistryRoundTrip(t *testing.T) {
	src, enc, priv := encryptWithWraps(t)
	a, repo, dig := pushToTestRegistry(t, enc)
	if dig.DigestStr() != a.Digest.String() {
		t.Fatalf("pushed %s, want %s", dig, a.Digest)
	}
	// The manifest in the registry carries our artifact type and annotations.
	d, err := remote.Get(repo.Tag("1.0"))
	if err != nil || d.Digest != a.Digest || !bytes.Contains(d.Manifest, []byte(`"artifactType":"`+ArtifactType+`"`)) ||
		!bytes.Contains(d.Manifest, []byte(`"dev.cvmkit.model.path":"weights/model.safetensors"`)) {
		t.Fatalf("registry manifest: %s (%v)", d.Manifest, err)
	}
	pulled := filepath.Join(t.TempDir(), "pulled")
	if err := PullRegistry(dig, pulled); err != nil {
		t.Fatal(err)
	}
	checkPulled(t, src, pulled, priv)
	// Pulling a digest that is not there fails and leaves nothing.
	bad := repo.Digest("sha256:" + strings.Repeat("0", 64))
	other := filepath.Join(t.TempDir(), "x")
	if err := PullRegistry(bad, other); err == nil {
		t.Fatal("pulled a missing digest")
	}
	if _, err := os.Stat(other); err == nil {
		t.Fatal("a failed pull left a folder")
	}
}

func TestOCILayoutRoundTrip(t *testing.T) {
	src, enc, priv := encryptWithWraps(t)
	a, err := NewArtifact(enc)
	if err != nil {
		t.Fatal(err)
	}
	lay := filepath.Join(t.TempDir(), "layout")
	if err := a.WriteLayout(lay, "demo@1.0"); err != nil {
		t.Fatal(err)
	}
	pulled := filepath.Join(t.TempDir(), "pulled")
	if err := PullLayout(lay, a.Digest.String(), pulled); err != nil {
		t.Fatal(err)
	}
	checkPulled(t, src, pulled, priv)
	// A corrupted blob in the layout is caught by its digest.
	blob := filepath.Join(lay, "blobs", "sha256", a.layers[0].desc.Digest.Hex)
	b, _ := os.ReadFile(blob)
	os.Chmod(blob, 0o644)
	b[len(b)/2] ^= 1
	os.WriteFile(blob, b, 0o644)
	if err := PullLayout(lay, a.Digest.String(), filepath.Join(t.TempDir(), "p2")); err == nil || !strings.Contains(err.Error(), "does not match its descriptor") {
		t.Fatalf("corrupted blob: %v", err)
	}
}

// TestOrasPull: the real oras CLI (oras.land/oras v1.3.6) pulls the pushed
// artifact from the in-process registry into a folder that holds the whole
// encrypted model — model.manifest.json included — and decrypts.
func TestOrasPull(t *testing.T) {
	oras := testenv.Tool(t, "oras", "go install oras.land/oras/cmd/oras@v1.3.6")
	src, enc, priv := encryptWithWraps(t)
	_, _, dig := pushToTestRegistry(t, enc)
	out := filepath.Join(t.TempDir(), "pulled")
	cmd := exec.Command(oras, "pull", "--plain-http", "-o", out, dig.String())
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("oras pull: %v\n%s", err, b)
	}
	t.Logf("oras pull:\n%s", b)
	for _, f := range []string{ManifestFile, "keys/index.json", "weights/model.safetensors"} {
		if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(f))); err != nil {
			t.Errorf("oras pull left out %s", f)
		}
	}
	checkPulled(t, src, out, priv)
}
