package encrypt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/outcome"
)

// OCI artifact media types and annotations (docs/weights-format.md).
const (
	ArtifactType      = "application/vnd.cvmkit.model.v1"
	ManifestMediaType = "application/vnd.cvmkit.model.manifest.v1+json"
	FileMediaType     = "application/vnd.cvmkit.model.file.v1.tink"
	KeyWrapMediaType  = "application/vnd.cvmkit.model.keywrap.v1"
	// AnnotationPath is a layer's file path in the encrypted folder.
	AnnotationPath = "dev.cvmkit.model.path"
	// AnnotationManifest is the digest of the model manifest (the config
	// blob) on every layer.
	AnnotationManifest = "dev.cvmkit.model.manifest.digest"
	// AnnotationRelease is the release ID on the OCI manifest.
	AnnotationRelease = "dev.cvmkit.model.release-id"
	annotationTitle   = "org.opencontainers.image.title"
)

// Artifact is an encrypted model as an OCI artifact: the model manifest as
// the config blob, one layer per encrypted file and per non-secret key wrap.
type Artifact struct {
	dir      string
	Manifest []byte // the OCI image manifest
	Digest   v1.Hash
	config   blob
	layers   []blob
}

type blob struct {
	desc v1.Descriptor
	file string // relative to dir; empty for config
	data []byte // for the config
}

type ociManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// NewArtifact describes the encrypted folder dir as an OCI artifact. Secret
// key files (the Trustee resource) are never part of it.
func NewArtifact(dir string) (*Artifact, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	mdig := sha256.Sum256(raw)
	a := &Artifact{dir: dir}
	a.config = blob{data: raw, desc: v1.Descriptor{MediaType: ManifestMediaType, Size: int64(len(raw)),
		Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(mdig[:])}}}
	ann := func(p string) map[string]string {
		return map[string]string{annotationTitle: p, AnnotationPath: p, AnnotationManifest: a.config.desc.Digest.String()}
	}
	// The model manifest is the config blob, which generic tools (oras pull)
	// do not save: it is also the first layer, with a title, so that a pull
	// by any tool gives the whole folder. Same blob, stored once.
	a.layers = append(a.layers, blob{data: raw, desc: v1.Descriptor{MediaType: ManifestMediaType, Size: a.config.desc.Size,
		Digest: a.config.desc.Digest, Annotations: ann(ManifestFile)}})
	for _, f := range m.Files {
		a.layers = append(a.layers, blob{file: f.Ciphertext, desc: v1.Descriptor{MediaType: FileMediaType, Size: f.CiphertextSize,
			Digest: v1.Hash{Algorithm: "sha256", Hex: f.CiphertextSHA256}, Annotations: ann(f.Ciphertext)}})
	}
	if b, err := os.ReadFile(filepath.Join(dir, "keys", "index.json")); err == nil {
		var idx KeysIndex
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("keys/index.json: %w", err)
		}
		files := []string{"keys/index.json"}
		for _, w := range idx.Wraps {
			if !w.Secret {
				files = append(files, w.File)
			}
		}
		sort.Strings(files)
		for _, f := range files {
			d, n, err := fileDigest(filepath.Join(dir, filepath.FromSlash(f)))
			if err != nil {
				return nil, err
			}
			a.layers = append(a.layers, blob{file: f, desc: v1.Descriptor{MediaType: KeyWrapMediaType, Size: n, Digest: d, Annotations: ann(f)}})
		}
	}
	om := ociManifest{SchemaVersion: 2, MediaType: string(types.OCIManifestSchema1), ArtifactType: ArtifactType,
		Config: a.config.desc, Annotations: map[string]string{AnnotationRelease: m.ReleaseID}}
	for _, l := range a.layers {
		om.Layers = append(om.Layers, l.desc)
	}
	if a.Manifest, err = json.Marshal(om); err != nil {
		return nil, err
	}
	d := sha256.Sum256(a.Manifest)
	a.Digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(d[:])}
	return a, nil
}

func fileDigest(p string) (v1.Hash, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, n, nil
}

// blobs are the artifact's distinct blobs: the config, then the layers
// (the model manifest layer is the config's blob).
func (a *Artifact) blobs() []blob {
	out := []blob{a.config}
	seen := map[v1.Hash]bool{a.config.desc.Digest: true}
	for _, l := range a.layers {
		if !seen[l.desc.Digest] {
			seen[l.desc.Digest] = true
			out = append(out, l)
		}
	}
	return out
}

func (a *Artifact) open(b blob) (io.ReadCloser, error) {
	if b.file == "" {
		return io.NopCloser(bytes.NewReader(b.data)), nil
	}
	return os.Open(filepath.Join(a.dir, filepath.FromSlash(b.file)))
}

// WriteLayout writes the artifact into a new OCI image layout folder, with
// the release ID as its reference name.
func (a *Artifact) WriteLayout(dir, refName string) error {
	return atomicfile.Dir(dir, func(tmp string) error {
		p, err := layout.Write(tmp, empty.Index)
		if err != nil {
			return err
		}
		for _, b := range a.blobs() {
			rc, err := a.open(b)
			if err != nil {
				return err
			}
			if err := p.WriteBlob(b.desc.Digest, rc); err != nil {
				return fmt.Errorf("writing blob %s: %w", b.desc.Digest, err)
			}
		}
		if err := p.WriteBlob(a.Digest, io.NopCloser(bytes.NewReader(a.Manifest))); err != nil {
			return err
		}
		return p.AppendDescriptor(v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(a.Manifest)), Digest: a.Digest,
			ArtifactType: ArtifactType, Annotations: map[string]string{"org.opencontainers.image.ref.name": refName}})
	})
}

// fileLayer is a blob streamed from a file, for remote.WriteLayer.
type fileLayer struct {
	a *Artifact
	b blob
}

func (l fileLayer) Digest() (v1.Hash, error)             { return l.b.desc.Digest, nil }
func (l fileLayer) DiffID() (v1.Hash, error)             { return l.b.desc.Digest, nil }
func (l fileLayer) Compressed() (io.ReadCloser, error)   { return l.a.open(l.b) }
func (l fileLayer) Uncompressed() (io.ReadCloser, error) { return l.a.open(l.b) }
func (l fileLayer) Size() (int64, error)                 { return l.b.desc.Size, nil }
func (l fileLayer) MediaType() (types.MediaType, error)  { return l.b.desc.MediaType, nil }

type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// Push uploads the artifact to a registry repository under tag (or only by
// digest when tag is empty) and returns its digest reference.
func (a *Artifact) Push(repo name.Repository, tag string, opts ...remote.Option) (name.Digest, error) {
	for _, b := range a.blobs() {
		if err := remote.WriteLayer(repo, fileLayer{a, b}, opts...); err != nil {
			return name.Digest{}, fmt.Errorf("pushing %s: %w", b.desc.Digest, err)
		}
	}
	dig := repo.Digest(a.Digest.String())
	var ref name.Reference = dig
	if tag != "" {
		ref = repo.Tag(tag)
	}
	if err := remote.Put(ref, rawManifest(a.Manifest), opts...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing the manifest: %w", err)
	}
	return dig, nil
}

// blobSource fetches blobs by digest.
type blobSource func(v1.Descriptor) (io.ReadCloser, error)

// PullRegistry downloads the artifact at ref (which must name a digest) into
// the new folder dst, checking every blob's digest.
func PullRegistry(ref name.Digest, dst string, opts ...remote.Option) error {
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return err
	}
	return pull(desc.Manifest, ref.DigestStr(), dst, func(d v1.Descriptor) (io.ReadCloser, error) {
		l, err := remote.Layer(ref.Context().Digest(d.Digest.String()), opts...)
		if err != nil {
			return nil, err
		}
		return l.Compressed()
	})
}

// PullLayout copies the artifact with manifest digest dig out of an OCI
// layout into the new folder dst, checking every blob's digest.
func PullLayout(layoutDir, dig, dst string) error {
	p, err := layout.FromPath(layoutDir)
	if err != nil {
		return err
	}
	h, err := v1.NewHash(dig)
	if err != nil {
		return fmt.Errorf("digest %q: %w", dig, err)
	}
	rc, err := p.Blob(h)
	if err != nil {
		return fmt.Errorf("the layout has no manifest %s: %w", dig, err)
	}
	raw, err := io.ReadAll(io.LimitReader(rc, 4<<20))
	rc.Close()
	if err != nil {
		return err
	}
	return pull(raw, dig, dst, func(d v1.Descriptor) (io.ReadCloser, error) { return p.Blob(d.Digest) })
}

func pull(raw []byte, dig, dst string, get blobSource) error {
	if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != dig {
		return fmt.Errorf("%w: the manifest does not have digest %s", ErrAuth, dig)
	}
	var om ociManifest
	if err := json.Unmarshal(raw, &om); err != nil {
		return fmt.Errorf("not an OCI manifest: %w", err)
	}
	if om.ArtifactType != ArtifactType || om.Config.MediaType != ManifestMediaType {
		return fmt.Errorf("%s is not a cvmkit model artifact (artifact type %q)", dig, om.ArtifactType)
	}
	return atomicfile.Dir(dst, func(tmp string) error {
		if err := fetch(get, om.Config, filepath.Join(tmp, ManifestFile)); err != nil {
			return fmt.Errorf("model manifest: %w", err)
		}
		for _, l := range om.Layers {
			p := l.Annotations[AnnotationPath]
			if p == ManifestFile {
				// The titled copy of the config: it must be the same blob;
				// the config was fetched above. Older artifacts lack it.
				if l.Digest != om.Config.Digest {
					return fmt.Errorf("layer %s claims to be %s but is not the config blob %s", l.Digest, ManifestFile, om.Config.Digest)
				}
				continue
			}
			if checkPath(p) != nil || !(strings.HasPrefix(p, WeightsDir+"/") || strings.HasPrefix(p, "keys/")) {
				return fmt.Errorf("layer %s has path %q outside weights/ and keys/", l.Digest, p)
			}
			if l.Annotations[AnnotationManifest] != om.Config.Digest.String() {
				return fmt.Errorf("layer %s (%s) belongs to another model manifest", l.Digest, p)
			}
			out := filepath.Join(tmp, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			if err := fetch(get, l, out); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		_, err := ReadManifest(tmp)
		return err
	})
}

// fetch copies one blob to path, checking its size and digest.
func fetch(get blobSource, d v1.Descriptor, p string) error {
	rc, err := get(d)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rc, d.Size+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != d.Size || "sha256:"+hex.EncodeToString(h.Sum(nil)) != d.Digest.String() {
		return fmt.Errorf("%w: blob %s does not match its descriptor (%d bytes)", ErrAuth, d.Digest, n)
	}
	return nil
}

// Pull fetches oci://REGISTRY/REPO@sha256:… or
// oci-layout://DIR@sha256:… into the new folder dst.
func Pull(src, dst string, insecure bool) error {
	if rest, ok := strings.CutPrefix(src, "oci-layout://"); ok {
		dir, dig, ok := strings.Cut(rest, "@")
		if !ok {
			return outcome.UsageError(fmt.Errorf("%q names no digest", src), "write oci-layout://DIR@sha256:<digest> (cvmkit encrypt --json prints it)")
		}
		if err := PullLayout(dir, dig, dst); err != nil {
			return classifyPull(src, err)
		}
		return nil
	}
	ref := strings.TrimPrefix(src, "oci://")
	d, err := name.NewDigest(ref, nameOptions(insecure)...)
	if err != nil {
		return outcome.UsageError(fmt.Errorf("%q: %w", src, err), "pull by digest: oci://REGISTRY/REPO@sha256:<digest>")
	}
	if err := PullRegistry(d, dst, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return classifyPull(src, err)
	}
	return nil
}

func classifyPull(src string, err error) error {
	err = fmt.Errorf("pulling %s: %w", src, err)
	if errors.Is(err, ErrAuth) {
		return outcome.SignatureError(err, "the artifact does not match its digest: pull it again from the release's registry")
	}
	return outcome.InputError(err)
}

func nameOptions(insecure bool) []name.Option {
	if insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// Push pushes an artifact to REGISTRY/REPO[:TAG] (credentials from the
// Docker config) and returns its digest reference.
func Push(art *Artifact, ref string, insecure bool) (string, error) {
	r, err := name.ParseReference(ref, nameOptions(insecure)...)
	if err != nil {
		return "", outcome.UsageError(fmt.Errorf("registry reference %q: %w", ref, err), "write it as REGISTRY/REPO[:TAG]")
	}
	tag := ""
	if t, ok := r.(name.Tag); ok && strings.Contains(ref, ":"+t.TagStr()) {
		tag = t.TagStr()
	}
	dig, err := art.Push(r.Context(), tag, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return "", fmt.Errorf("pushing to %s: %w", ref, err)
	}
	return dig.String(), nil
}

// UnwrapHPKEFrom opens the data key with an HPKE private key from the
// encrypted folder dir's keys/hpke-*.json; a key that opens none of them is
// ErrAuth.
func UnwrapHPKEFrom(dir string, priv []byte, releaseID string) (*DataKey, error) {
	wraps, _ := filepath.Glob(filepath.Join(dir, "keys", "hpke-*.json"))
	if len(wraps) == 0 {
		return nil, fmt.Errorf("%q has no HPKE-wrapped key (keys/hpke-*.json)", dir)
	}
	var lastErr error
	for _, w := range wraps {
		b, err := os.ReadFile(w)
		if err != nil {
			return nil, err
		}
		k, err := UnwrapHPKE(priv, b, releaseID)
		if err == nil {
			return k, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("%w: it opens none of %d HPKE wraps: %v", ErrAuth, len(wraps), lastErr)
}

// UnwrapKMSFrom opens the data key with a KMS key-encryption key from dir's
// keys/kms-*.tink.
func UnwrapKMSFrom(dir string, kek tink.AEAD, releaseID string) (*DataKey, error) {
	wraps, _ := filepath.Glob(filepath.Join(dir, "keys", "kms-*.tink"))
	for _, w := range wraps {
		b, err := os.ReadFile(w)
		if err != nil {
			return nil, err
		}
		if k, err := UnwrapKMS(kek, b, releaseID); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: it opens none of the %d KMS wraps in %q", ErrAuth, len(wraps), dir)
}
