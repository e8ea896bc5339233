package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/refvalues"
)

// TestReleasePushesModel: model.oci.ref was ignored by release (validate
// OK, exit 0, nothing pushed). Release now pushes the encrypted weights to
// the registry the config names (here one in-process on loopback), records
// the pushed digest in model/oci.json, signed with the rest, and verify
// recomputes the artifact's digest from model/; decrypt pulls it by that
// digest.
func TestReleasePushesModel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cvmkit-sbom for the release's sbom stage; run without -short")
	}
	sbomHelper := filepath.Join(t.TempDir(), "cvmkit-sbom")
	build := exec.Command("go", "build", "-o", sbomHelper, "./cmd/cvmkit-sbom")
	build.Dir = filepath.Join(testenv.RepoRoot(t), "sbom")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building cvmkit-sbom: %v\n%s", err, b)
	}
	run := func(t *testing.T, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := func(k string) (string, bool) {
			switch k {
			case "COSIGN_PASSWORD":
				return "test", true
			case "CVMKIT_SBOM":
				return sbomHelper, true
			}
			return "", false
		}
		code := Main(context.Background(), args, strings.NewReader(""), &out, &errb, env)
		return code, out.String(), errb.String()
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "weights"), 0o755)
	os.WriteFile(filepath.Join(dir, "weights", "model.safetensors"), []byte(strings.Repeat("w", 1<<16)), 0o644)
	if code, _, e := run(t, "keygen", "--hpke", "-o", filepath.Join(dir, "kbs")); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := run(t, "keygen", "--signing", "-o", filepath.Join(dir, "cosign")); code != 0 {
		t.Fatal(e)
	}
	fw := filepath.Join(testenv.Shared(t), "fixtures", "firmware", "OVMF.fd")
	os.MkdirAll(filepath.Join(dir, "root", "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "root", "etc", "hostname"), []byte("pushed\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("not a real kernel"), 0o644)
	os.WriteFile(filepath.Join(dir, "fake-init"), []byte("#!/bin/sh\n"), 0o755)
	cfg := `apiVersion: cvmkit.dev/v1alpha1
kind: Release
metadata: {name: pushed, version: 1.0.0}
image:
  base: [{dir: root}]
  kernel: {path: vmlinuz, digest: "sha256:` + testenv.FileSHA256(t, filepath.Join(dir, "vmlinuz")) + `"}
  cmdline: "console=ttyS0 {{.Root}}"
firmware:
  - {name: fw, path: ` + fw + `, digest: "sha256:` + testenv.FileSHA256(t, fw) + `"}
platforms:
  snp:
    - {name: q, firmware: fw, vcpus: [1], vcpuTypes: [EPYC-v4]}
model:
  source: weights
  recipients: [{hpke: kbs.hpke.pub.json}]
  oci: {ref: ` + host + `/models/pushed:1.0.0}
signing: {key: cosign.key}
`
	os.WriteFile(filepath.Join(dir, "cvmkit.yaml"), []byte(cfg), 0o644)
	out := filepath.Join(dir, "dist")
	code, stdout, e := run(t, "release", "-f", filepath.Join(dir, "cvmkit.yaml"), "-o", out, "--init-binary", filepath.Join(dir, "fake-init"))
	if code != 0 {
		t.Fatalf("release: exit %d\n%s", code, e)
	}
	b, err := os.ReadFile(filepath.Join(out, refvalues.ModelArtifactPath))
	if err != nil {
		t.Fatalf("no %s: %v\n%s", refvalues.ModelArtifactPath, err, stdout)
	}
	var rec refvalues.ModelArtifact
	if err := json.Unmarshal(b, &rec); err != nil || !strings.HasPrefix(rec.Pushed, host+"/models/pushed@sha256:") || !strings.HasSuffix(rec.Pushed, "@"+rec.Digest) {
		t.Fatalf("%s: %s (%v)", refvalues.ModelArtifactPath, b, err)
	}
	if !strings.Contains(stdout, "pushed to "+rec.Pushed) {
		t.Errorf("the summary does not say where the weights went:\n%s", stdout)
	}
	code, vout, e := run(t, "verify", out, "--key", filepath.Join(dir, "cosign.pub"))
	if code != 0 || !strings.Contains(vout, "model artifact") || !strings.Contains(vout, "recomputed from model/, pushed as "+rec.Pushed) {
		t.Fatalf("verify: exit %d\n%s\n%s", code, vout, e)
	}
	plain := filepath.Join(dir, "plain")
	if code, _, e := run(t, "decrypt", "oci://"+rec.Pushed, "-o", plain, "--hpke-key", filepath.Join(dir, "kbs.hpke.key.json"), "--insecure-registry"); code != 0 {
		t.Fatalf("decrypt: %s", e)
	}
	if got, _ := os.ReadFile(filepath.Join(plain, "model.safetensors")); string(got) != strings.Repeat("w", 1<<16) {
		t.Fatal("the pulled weights differ")
	}
}
