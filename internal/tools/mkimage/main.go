// Command mkimage builds cvmkit's container image, reproducibly, from a
// release archive: FROM scratch, the three binaries in /usr/local/bin,
// Mozilla's root certificates (from golang.org/x/crypto/x509roots, pinned by
// go.mod) for registries, KMS, Fulcio and Rekor, a non-root user and
// writable /tmp and /work. Every file time is the given epoch and the image
// is written as an OCI image layout, so the same archive always gives the
// same digest. Push it with any OCI tool (crane push, oras cp, skopeo).
//
// Usage:
//
//	go run ./internal/tools/mkimage -archive dist/cvmkit_1.2.3_linux_amd64.tar.gz \
//	    -epoch $(git log -1 --format=%ct) -version 1.2.3 -revision $(git rev-parse HEAD) -o image
//
// It prints the image digest.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// binaries are taken from the archive into /usr/local/bin.
var binaries = []string{"cvmkit", "cvmkit-sbom", "cvmkit-sigstore"}

// uid is the image's user: "nonroot", as distroless images number it.
const uid = 65532

func main() {
	archive := flag.String("archive", "", "release archive (cvmkit_VERSION_linux_ARCH.tar.gz)")
	epoch := flag.Int64("epoch", -1, "file and image time, UNIX seconds (the commit time)")
	version := flag.String("version", "", "version, for the image labels")
	revision := flag.String("revision", "", "commit, for the image labels")
	arch := flag.String("arch", "amd64", "the archive's architecture")
	out := flag.String("o", "", "new OCI image layout folder")
	flag.Parse()
	if *archive == "" || *epoch < 0 || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: mkimage -archive A.tar.gz -epoch S [-version V] [-revision R] [-arch amd64] -o DIR")
		os.Exit(2)
	}
	dig, err := build(*archive, time.Unix(*epoch, 0).UTC(), *version, *revision, *arch, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage: error:", err)
		os.Exit(1)
	}
	fmt.Println(dig)
}

func build(archive string, t time.Time, version, revision, arch, out string) (v1.Hash, error) {
	files, err := readBinaries(archive)
	if err != nil {
		return v1.Hash{}, err
	}
	layer, err := rootfs(files, t)
	if err != nil {
		return v1.Hash{}, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer)), nil },
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression))
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return v1.Hash{}, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", arch, v1.Time{Time: t}
	cf.Config = v1.Config{
		Entrypoint: []string{"/usr/local/bin/cvmkit"},
		Env:        []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "HOME=/work", "TMPDIR=/tmp"},
		User:       fmt.Sprintf("%d:%d", uid, uid),
		WorkingDir: "/work",
		Labels: map[string]string{
			"org.opencontainers.image.title":    "cvmkit",
			"org.opencontainers.image.source":   "https://github.com/cvmkit/cvmkit",
			"org.opencontainers.image.version":  version,
			"org.opencontainers.image.revision": revision,
			"org.opencontainers.image.created":  t.Format(time.RFC3339),
		},
	}
	cf.History = nil
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return v1.Hash{}, err
	}
	dig, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if _, err := os.Stat(out); err == nil {
		return v1.Hash{}, fmt.Errorf("%s exists", out)
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": version})); err != nil {
		return v1.Hash{}, err
	}
	// Read it back and check every digest, diff ID and size as a registry
	// or runtime would (go-containerregistry's validate).
	back, err := p.Image(dig)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := validate.Image(back); err != nil {
		return v1.Hash{}, fmt.Errorf("the written image does not validate: %w", err)
	}
	return dig, nil
}

// readBinaries takes the binaries out of the release archive.
func readBinaries(archive string) (map[string][]byte, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", archive, err)
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", archive, err)
		}
		for _, b := range binaries {
			if h.Name == b && h.Typeflag == tar.TypeReg {
				if files[b], err = io.ReadAll(io.LimitReader(tr, 512<<20)); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, b := range binaries {
		if files[b] == nil {
			return nil, fmt.Errorf("%s has no %s", archive, b)
		}
	}
	return files, nil
}

// rootfs is the image's only layer: an uncompressed tar with sorted
// entries, fixed owners and times (go-containerregistry compresses it).
func rootfs(bins map[string][]byte, t time.Time) ([]byte, error) {
	type entry struct {
		name     string
		mode     int64
		uid, gid int
		data     []byte
		dir      bool
	}
	var certs bytes.Buffer
	n := 0
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue // a distrust-after date cannot be said in a PEM bundle
		}
		pem.Encode(&certs, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
		n++
	}
	if n < 100 {
		return nil, fmt.Errorf("only %d root certificates in the bundle", n)
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/work:/sbin/nologin\n", uid, uid))},
		{name: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid))},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: certs.Bytes()},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
		{name: "work/", mode: 0o755, dir: true, uid: uid, gid: uid},
	}
	for name, b := range bins {
		entries = append(entries, entry{name: "usr/local/bin/" + name, mode: 0o755, data: b})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: t, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(e.data))}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if strings.HasPrefix(e.name, "work") {
			h.Uname, h.Gname = "nonroot", "nonroot"
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
