package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// maxArtifactFile bounds a kernel read from an OCI artifact.
const maxArtifactFile = 512 << 20

// resolveImage opens an OCI image from a registry (ref pinned by digest,
// credentials from the keychain) or from an OCI layout folder (by digest),
// picking platform from an index. Every manifest is checked against the
// digest that names it, and layout layers against their descriptors
// (registries are checked by go-containerregistry as they are read).
func (b *builder) resolveImage(ctx context.Context, key, ref, layoutDir string, digest string, platform string) (v1.Image, LockInput, error) {
	plat, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, LockInput{}, outcome.InputError(fmt.Errorf("%s.platform: %w", key, err), "write os/arch[/variant], for example linux/amd64")
	}
	in := LockInput{Key: key, Platform: platform}
	var img v1.Image
	if ref != "" {
		var nopts []name.Option
		if b.o.Insecure {
			nopts = append(nopts, name.Insecure)
		}
		d, err := name.NewDigest(ref, nopts...)
		if err != nil {
			return nil, in, outcome.InputError(fmt.Errorf("%s: %q: %w", key, ref, err), "write registry/repository@sha256:<64 hex>")
		}
		in.Kind, in.Source = "oci", ref
		img, err = remote.Image(d, remote.WithContext(ctx), remote.WithAuthFromKeychain(b.o.Keychain), remote.WithPlatform(*plat))
		if err != nil {
			return nil, in, outcome.InputError(fmt.Errorf("%s: pulling %s: %w", key, ref, err),
				"check the reference and your registry credentials (docker login, credential helpers)")
		}
	} else {
		dir := b.c.Resolve(config.Path(layoutDir))
		in.Kind, in.Source = "layout", layoutDir+"@"+digest
		lp, err := layout.FromPath(dir)
		if err != nil {
			return nil, in, outcome.InputError(fmt.Errorf("%s: %s is not an OCI image layout: %w", key, layoutDir, err), "point layout at a folder with oci-layout and index.json")
		}
		img, err = layoutImage(lp, digest, plat)
		if err != nil {
			return nil, in, outcome.InputError(fmt.Errorf("%s: %s: %w", key, in.Source, err), "")
		}
		if err := checkLayers(img); err != nil {
			return nil, in, outcome.InputError(fmt.Errorf("%s: %s: %w", key, in.Source, err), "the layout is damaged; copy it again")
		}
	}
	md, err := img.Digest()
	if err != nil {
		return nil, in, outcome.InputError(fmt.Errorf("%s: %w", key, err), "")
	}
	in.Digest = md.String()
	return img, in, nil
}

// layoutImage finds the image digest names in a layout: the manifest
// itself, or the manifest for plat in the index digest names.
func layoutImage(lp layout.Path, digest string, plat *v1.Platform) (v1.Image, error) {
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, err
	}
	raw, err := lp.Bytes(h)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", digest, err)
	}
	if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != digest {
		return nil, fmt.Errorf("blob %s does not match its digest", digest)
	}
	var head struct {
		MediaType string `json:"mediaType"`
		Manifests []any  `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("blob %s is not a manifest or index: %w", digest, err)
	}
	if head.Manifests == nil && !strings.Contains(head.MediaType, "index") && !strings.Contains(head.MediaType, "manifest.list") {
		return checkedImage(lp, h)
	}
	im, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.Satisfies(*plat) && d.MediaType.IsImage() {
			return checkedImage(lp, d.Digest)
		}
	}
	return nil, fmt.Errorf("the index has no image for %s", plat)
}

// checkedImage opens the manifest h names and checks it hashes to h.
func checkedImage(lp layout.Path, h v1.Hash) (v1.Image, error) {
	img, err := lp.Image(h)
	if err != nil {
		return nil, err
	}
	if got, err := img.Digest(); err != nil || got != h {
		return nil, fmt.Errorf("manifest %s does not match its digest", h)
	}
	return img, nil
}

// checkLayers hashes every layer blob of a layout image against its
// descriptor (layout blobs are plain files that nobody else checks).
func checkLayers(img v1.Image) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for i, l := range ls {
		want, err := l.Digest()
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want.String() {
			return fmt.Errorf("layer %d is %s, its descriptor says %s", i, got, want)
		}
	}
	return nil
}

// fileFromArtifact returns the file at p in an OCI artifact: a layer whose
// org.opencontainers.image.title annotation is p (the ORAS convention), or
// the entry p of a tar layer.
func fileFromArtifact(img v1.Image, p string) ([]byte, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	want := strings.TrimPrefix(path.Clean("/"+p), "/")
	for i, d := range m.Layers {
		if t := d.Annotations["org.opencontainers.image.title"]; t == p || t == want {
			if d.Size > maxArtifactFile {
				return nil, fmt.Errorf("%s is %d bytes, more than %d", p, d.Size, maxArtifactFile)
			}
			rc, err := ls[i].Compressed()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}
	}
	for i, d := range m.Layers {
		if !strings.Contains(string(d.MediaType), "tar") {
			continue
		}
		rc, err := ls[i].Uncompressed()
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return nil, fmt.Errorf("layer %d: %w", i, err)
			}
			if strings.TrimPrefix(path.Clean("/"+h.Name), "/") == want && h.Typeflag == tar.TypeReg {
				if h.Size > maxArtifactFile {
					rc.Close()
					return nil, fmt.Errorf("%s is %d bytes, more than %d", p, h.Size, maxArtifactFile)
				}
				b, err := io.ReadAll(tr)
				rc.Close()
				return b, err
			}
		}
		rc.Close()
	}
	return nil, fmt.Errorf("the artifact has no file %q (no layer titled so, no tar entry)", p)
}
