package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestBuildFromRegistry pulls the base image (a multi-platform index) and
// the kernel (an ORAS-style artifact) from an in-process OCI registry on
// loopback, by digest, and checks the image and lock against the same
// release built from an OCI layout holding the same layers.
func TestBuildFromRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	layer := tarBytes(t,
		tarEntry{h: tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}},
		tarEntry{h: tar.Header{Name: "etc/os-release"}, data: "ID=from-registry\n"},
		tarEntry{h: tar.Header{Name: "sbin/init", Mode: 0o755}, data: "init"},
	)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer)), nil })
	if err != nil {
		t.Fatal(err)
	}
	amd, _ := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), l)
	amdCfg, _ := amd.ConfigFile()
	amdCfg.OS, amdCfg.Architecture = "linux", "amd64"
	amd, _ = mutate.ConfigFile(amd, amdCfg)
	arm, _ := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "arm64"})
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	baseRef, _ := name.ParseReference(host+"/base:latest", name.Insecure)
	if err := remote.WriteIndex(baseRef, idx); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	amdDigest, _ := amd.Digest()

	kernel := []byte("a kernel in an artifact")
	art, _ := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       static.NewLayer(kernel, "application/vnd.cvmkit.kernel"),
		Annotations: map[string]string{"org.opencontainers.image.title": "vmlinuz"},
	})
	kRef, _ := name.ParseReference(host+"/kernels:6.1", name.Insecure)
	if err := remote.Write(kRef, art); err != nil {
		t.Fatal(err)
	}
	artDigest, _ := art.Digest()

	dir := t.TempDir()
	cfg := fmt.Sprintf(`apiVersion: cvmkit.dev/v1alpha1
kind: Release
metadata: {name: reg, version: 1.0.0}
image:
  base:
    - oci: %s/base@%s
  kernel:
    oci: %s/kernels@%s
    in: vmlinuz
  cmdline: "{{.Root}}"
`, host, idxDigest, host, artDigest)
	os.WriteFile(filepath.Join(dir, "cvmkit.yaml"), []byte(cfg), 0o644)
	c := load(t, filepath.Join(dir, "cvmkit.yaml"))
	out := filepath.Join(dir, "out")
	res, err := Build(context.Background(), c, Options{OutDir: out, Epoch: time.Unix(0, 0), InitBinary: fakeInit, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	in := res.Lock.Inputs[0]
	if in.Kind != "oci" || in.Digest != amdDigest.String() || in.Platform != "linux/amd64" || len(in.Layers) != 1 {
		t.Errorf("base input %+v: want the linux/amd64 manifest %s", in, amdDigest)
	}
	got, _ := os.ReadFile(filepath.Join(out, KernelName))
	if !bytes.Equal(got, kernel) {
		t.Errorf("kernel from the artifact: %q", got)
	}
	sum := sha256.Sum256(kernel)
	for _, o := range res.Lock.Outputs {
		if o.Name == KernelName && o.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("kernel output digest %s", o.SHA256)
		}
	}

	// The same layer from a layout gives the same root image.
	dir2 := t.TempDir()
	d2 := writeLayout(t, filepath.Join(dir2, "l"), layer)
	os.WriteFile(filepath.Join(dir2, "k"), kernel, 0o644)
	os.WriteFile(filepath.Join(dir2, "cvmkit.yaml"), []byte(fmt.Sprintf(`apiVersion: cvmkit.dev/v1alpha1
kind: Release
metadata: {name: reg, version: 1.0.0}
image:
  base: [{layout: l, digest: %s}]
  kernel: {path: k, digest: "sha256:%x"}
  cmdline: "{{.Root}}"
`, d2, sum)), 0o644)
	res2, err := Build(context.Background(), load(t, filepath.Join(dir2, "cvmkit.yaml")), Options{OutDir: filepath.Join(dir2, "out"), Epoch: time.Unix(0, 0), InitBinary: fakeInit})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(out, RootImageName))
	b, _ := os.ReadFile(filepath.Join(dir2, "out", RootImageName))
	if !bytes.Equal(a[:res.Lock.Verity.DataSize], b[:res2.Lock.Verity.DataSize]) {
		t.Error("the EROFS data differs between the registry and the layout build of the same layer")
	}

	// A digest the registry does not have: a clear error.
	bad := strings.Replace(cfg, idxDigest.String(), "sha256:"+strings.Repeat("ab", 32), 1)
	os.WriteFile(filepath.Join(dir, "cvmkit.yaml"), []byte(bad), 0o644)
	_, err = Build(context.Background(), load(t, filepath.Join(dir, "cvmkit.yaml")), Options{OutDir: filepath.Join(dir, "out2"), Epoch: time.Unix(0, 0), InitBinary: fakeInit, Insecure: true})
	if err == nil || !strings.Contains(err.Error(), "image.base[0]: pulling") {
		t.Errorf("missing digest: %v", err)
	}
}
