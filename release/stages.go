package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/cvmkit/cvmkit/build"
	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/encrypt"
	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/internal/epoch"
	"github.com/cvmkit/cvmkit/internal/fileio"
	"github.com/cvmkit/cvmkit/internal/initbin"
	"github.com/cvmkit/cvmkit/internal/progress"
	"github.com/cvmkit/cvmkit/measure/gpu"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/policy"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/cvmkit/cvmkit/sign"
)

// build makes the image; the lock's output digests (computed while the
// image was written) enter the inventory.
func (r *run) build(ctx context.Context) (string, []string, error) {
	res, err := build.Build(ctx, r.c, build.Options{OutDir: filepath.Join(r.dir, refvalues.ImageDir), Epoch: r.o.Epoch, InitBinary: r.o.InitBinary, Version: r.o.Version, Log: r.o.Log})
	if err != nil {
		return "", nil, err
	}
	lock := res.Lock
	r.inv.Docs.Lock, r.inv.Docs.Name = &lock, lock.Release
	if lock.Release == "" {
		r.inv.Docs.Name = r.release
	}
	var outs []string
	for _, o := range lock.Outputs {
		rel := refvalues.ImagePath(o.Name)
		r.inv.Add(rel, refvalues.File{Size: o.Size, SHA256: o.SHA256, SHA384: o.SHA384})
		outs = append(outs, rel)
	}
	if err := r.inv.AddFromDisk(r.dir, refvalues.LockPath); err != nil {
		return "", nil, err
	}
	return "root hash " + lock.Verity.RootHash, outs, nil
}

func (r *run) gpu() (string, []string, error) {
	if r.c.Release.GPU == nil {
		return "skipped: the config has no gpu section", nil, nil
	}
	ref, at, n, err := GPUReference(r.c, time.Now)
	if err != nil {
		return "", nil, err
	}
	if err := r.inv.WriteDoc(r.dir, refvalues.GPUPath, ref); err != nil {
		return "", nil, err
	}
	r.inv.Docs.GPU = ref
	return fmt.Sprintf("%d RIMs verified at %s", n, gpu.FormatTime(at)), []string{refvalues.GPUPath}, nil
}

// GPUReference verifies the config's gpu.rims at gpu.verifyAt (now() when
// unset) into reference values: cvmkit release makes them and cvmkit verify
// --rebuild makes them again.
func GPUReference(c *config.Config, now func() time.Time) (*gpu.Reference, time.Time, int, error) {
	g := c.Release.GPU
	at := g.VerifyAt.Time
	if at.IsZero() {
		at = now().UTC().Truncate(time.Second)
	}
	ref, _, err := VerifyRIMs(ConfigRIMs(c), gpu.ChainOptions{At: at, AllowExpired: g.AllowExpiredSigner})
	if err != nil {
		return nil, at, 0, err
	}
	return ref, at, len(g.RIMs), nil
}

// RIMFile is a RIM to verify and the SHA-256 a config pins for it.
type RIMFile struct {
	Path, Pin string
	// PinnedIn names where the pin is, for the error.
	PinnedIn string
}

// ConfigRIMs are the config's gpu.rims, resolved and pinned.
func ConfigRIMs(c *config.Config) []RIMFile {
	var out []RIMFile
	for _, f := range c.Release.GPU.RIMs {
		out = append(out, RIMFile{Path: c.Resolve(f.Path), Pin: f.Digest.Hex(), PinnedIn: c.File})
	}
	return out
}

// VerifyRIMs verifies each RIM's signature and chain (gpu.VerifyRIM) and
// assembles the reference values; it returns the signer chains, whose OCSP
// use a caller may check.
func VerifyRIMs(rims []RIMFile, o gpu.ChainOptions) (*gpu.Reference, []*gpu.Chain, error) {
	var verified []*gpu.RIM
	var names []string
	var chains []*gpu.Chain
	for _, f := range rims {
		b, d, err := fileio.Read(f.Path, "--rim", 16<<20)
		if err != nil {
			return nil, nil, err
		}
		if f.Pin != "" && f.Pin != d.SHA256 {
			return nil, nil, outcome.InputError(fmt.Errorf("RIM %s: sha256 %s differs from the digest pinned in %s (%s)", f.Path, d.SHA256, f.PinnedIn, f.Pin),
				"NVIDIA re-issues RIMs under the same ID: if this one is expected, pin its new digest in gpu.rims")
		}
		r, err := gpu.VerifyRIM(b, gpu.RIMOptions{ChainOptions: o})
		if err != nil {
			return nil, nil, gpu.Classify(err, "RIM "+f.Path)
		}
		verified = append(verified, r)
		names = append(names, filepath.Base(f.Path))
		chains = append(chains, r.Signer)
	}
	ref, err := gpu.NewReference(verified, names)
	if err != nil {
		return nil, nil, gpu.Classify(err, "RIMs")
	}
	return ref, chains, nil
}

// encrypt encrypts the weights; every ciphertext's size and SHA-256 come
// from the model manifest the encryptor wrote while encrypting.
func (r *run) encrypt(ctx context.Context) (string, []string, error) {
	m := r.c.Release.Model
	if m == nil {
		return "skipped: the config has no model section", nil, nil
	}
	releaseID := m.ReleaseID
	if releaseID == "" {
		releaseID = r.release
	}
	key, deterministic, note, err := r.dataKey()
	if err != nil {
		return "", nil, err
	}
	var wraps []*encrypt.WrappedKey
	for i, rc := range encrypt.Recipients(r.c) {
		w, err := encrypt.Wrap(ctx, rc, key, releaseID, i, r.o.Getenv)
		if err != nil {
			return "", nil, err
		}
		wraps = append(wraps, w)
	}
	src := r.c.Resolve(m.Source)
	// Progress: a bar on a terminal, a line every few seconds in a CI log
	// (the weights are the long part of a release).
	var total int64
	if files, err := encrypt.ListSource(src); err == nil {
		for _, f := range files {
			total += f.Size
		}
	}
	bar := progress.New(r.progress, "encrypting the weights", total, progress.Options{Bytes: true})
	out := filepath.Join(r.dir, refvalues.ModelDir)
	man, err := encrypt.EncryptModel(ctx, src, out, releaseID, key, wraps, encrypt.Options{Deterministic: deterministic, Progress: bar.Add})
	bar.Done()
	if err != nil {
		return "", nil, err
	}
	for _, f := range man.Files {
		r.inv.Add(refvalues.ModelDir+"/"+f.Ciphertext, refvalues.File{Size: f.CiphertextSize, SHA256: f.CiphertextSHA256})
	}
	for _, w := range wraps {
		if !w.Secret {
			r.inv.AddBytes(refvalues.ModelDir+"/"+w.File, w.Data)
		}
	}
	for _, rel := range []string{refvalues.ModelManifest, refvalues.KeyIndexPath} {
		if _, err := os.Stat(filepath.Join(r.dir, filepath.FromSlash(rel))); err == nil {
			if err := r.inv.AddFromDisk(r.dir, rel); err != nil {
				return "", nil, err
			}
		}
	}
	idx := &refvalues.KeyIndex{}
	for _, w := range wraps {
		idx.Wraps = append(idx.Wraps, w.KeyWrap)
	}
	r.inv.Docs.Keys = idx
	if o := m.OCI; o != nil {
		n, err := r.modelArtifact(out, releaseID, o)
		if err != nil {
			return "", nil, err
		}
		note += n
	}
	if encrypt.HasSecrets(wraps) {
		if r.secrets == "" {
			return "", nil, errors.New("a recipient needs the secrets folder, which this run has not prepared")
		}
		files, err := encrypt.WriteSecrets(r.secrets, wraps)
		if err != nil {
			return "", nil, err
		}
		note += fmt.Sprintf("; %d secret key %s in the secrets folder", len(files), plural(len(files), "file"))
	}
	return fmt.Sprintf("%d %s for %d %s, release %s%s", len(man.Files), plural(len(man.Files), "file"), len(wraps), plural(len(wraps), "recipient"), releaseID, note),
		[]string{refvalues.ModelManifest}, nil
}

// modelArtifact packages the encrypted weights as an OCI artifact
// (model.oci): into a layout, pushed to a registry, or both; the release
// records its digest (and where it went) in model/oci.json, which verify
// recomputes from model/.
func (r *run) modelArtifact(dir, releaseID string, o *config.ModelOCI) (string, error) {
	art, err := encrypt.NewArtifact(dir)
	if err != nil {
		return "", err
	}
	rec := refvalues.ModelArtifact{Digest: art.Digest.String()}
	note := "; OCI artifact " + rec.Digest
	if o.Layout != "" {
		if err := art.WriteLayout(r.c.Resolve(o.Layout), releaseID); err != nil {
			return "", fmt.Errorf("model.oci.layout: %w", err)
		}
		note += " in " + string(o.Layout)
	}
	if o.Ref != "" {
		fmt.Fprintf(r.progress, "cvmkit: pushing the encrypted weights to %s …\n", o.Ref)
		if rec.Pushed, err = encrypt.Push(art, o.Ref, false); err != nil {
			return "", fmt.Errorf("model.oci.ref: %w", err)
		}
		note += ", pushed to " + rec.Pushed
	}
	return note, r.inv.WriteDoc(r.dir, refvalues.ModelArtifactPath, rec)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// dataKey returns the data key: model.keyset (created when missing) with
// deterministic encryption, or a fresh random key.
func (r *run) dataKey() (*encrypt.DataKey, bool, string, error) {
	ks := r.c.Release.Model.Keyset
	if ks == "" {
		k, err := encrypt.NewDataKey()
		return k, false, " (new random data key)", err
	}
	p := r.c.Resolve(config.Path(ks))
	if b, err := os.ReadFile(p); err == nil {
		WarnReadableSecret(r.progress, p, "model.keyset")
		k, err := encrypt.ParseKeyset(b)
		if err != nil {
			return nil, false, "", outcome.InputError(fmt.Errorf("model.keyset %q: %w", p, err))
		}
		return k, true, " (data key " + ks + ", deterministic)", nil
	} else if !os.IsNotExist(err) {
		return nil, false, "", err
	}
	k, err := encrypt.NewDataKey()
	if err != nil {
		return nil, false, "", err
	}
	if err := CheckSecretOutput(p, "model.keyset", r.o.Output); err != nil {
		return nil, false, "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, false, "", err
	}
	if err := writeKeyset(p, k, r.progress); err != nil {
		return nil, false, "", err
	}
	return k, true, " (created data key " + ks + ", deterministic; keep it secret)", nil
}

// WarnReadableSecret warns on w when a file holding a secret key can be
// read by other users of this machine.
func WarnReadableSecret(w io.Writer, path, what string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o044 == 0 {
		return
	}
	fmt.Fprintf(w, "cvmkit: warning: %s %q holds the data key in the clear and other users can read it (mode %04o); run chmod 600 %s\n", what, path, fi.Mode().Perm(), path)
}

func (r *run) sbom(ctx context.Context) (string, []string, error) {
	docs, err := r.sbomHelper.Make(SBOM{Input: filepath.Join(r.dir, refvalues.ImageDir), Name: r.c.Release.Metadata.Name, Version: r.c.Release.Metadata.Version,
		Boot: ConfigBoot(r.c), Tool: r.o.Version, Getenv: r.o.Getenv})
	if err != nil {
		return "", nil, err
	}
	if err := r.inv.WriteFile(r.dir, refvalues.SBOMSPDXPath, docs.SPDX); err != nil {
		return "", nil, err
	}
	if err := r.inv.WriteFile(r.dir, refvalues.SBOMCycloneDX, docs.CycloneDX); err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("%d packages in the SPDX document", docs.Packages), []string{refvalues.SBOMSPDXPath, refvalues.SBOMCycloneDX}, nil
}

// UnboundHint is what a release whose configuration leaves an input
// unbound can change.
const UnboundHint = "bind the kernel, initrd and command line (platforms.snp kernelHashes with kernel-hashes firmware; platforms.tdx edk2Profile and a guest kernel that measures RTMR2: Linux 6.9+, or guestMeasuresRTMR2: true for a backported EFI stub), or set keyAuthorities.allowUnbound (recorded)"

// policies renders every key-authority target from the documents in the
// inventory (nothing is read back or hashed).
func (r *run) policies() (string, []string, error) {
	targets := r.c.Release.KeyAuthorities.Targets
	if len(targets) == 0 {
		return "skipped: keyAuthorities.targets is empty", nil, nil
	}
	allow := r.o.AllowUnbound || r.c.Release.KeyAuthorities.AllowUnbound
	var outs []string
	for _, t := range targets {
		rendered, err := policy.Render(r.inv.Docs, string(t), policy.RenderOptions{AllowUnbound: allow, Authority: r.o.AzureAuthority, UnboundHint: UnboundHint})
		if err != nil {
			return "", nil, err
		}
		for n, body := range rendered.Files {
			rel := refvalues.KeyAuthorityPath(string(t), n)
			if err := r.inv.WriteFile(r.dir, rel, body); err != nil {
				return "", nil, err
			}
			outs = append(outs, rel)
		}
	}
	sort.Strings(outs)
	detail := fmt.Sprintf("%d targets", len(targets))
	if allow {
		detail += " (allowUnbound: see key-authority/*/bindings.json)"
	}
	return detail, outs, nil
}

// sign signs the reference values and provenance over the inventory's
// subjects.
func (r *run) sign(ctx context.Context) (string, []string, error) {
	subjects, err := r.inv.Subjects(r.dir)
	if err != nil {
		return "", nil, err
	}
	signed, err := sign.SignSubjects(ctx, r.dir, subjects, r.o.Sign)
	if err != nil {
		return "", nil, err
	}
	var outs []string
	for _, s := range signed {
		outs = append(outs, s.Statement, s.Bundle)
	}
	return "signed with " + r.o.SignerName, outs, nil
}

// EncryptJob is `cvmkit encrypt`: a model encrypted into a new folder for
// its recipients, outside a release.
type EncryptJob struct {
	Source, Output, ReleaseID string
	Recipients                []encrypt.Recipient
	Key                       *encrypt.DataKey
	// SecretsOut is the secrets folder a trustee recipient needs (default
	// OUTPUT.secrets); KeysetOut a new file for the cleartext data key.
	SecretsOut, KeysetOut string
	Options               encrypt.Options
	Getenv                func(string) (string, bool)
	Progress              io.Writer // leftovers of killed runs are reported here
}

// Encrypt runs the job: the key wrapped for each recipient, the model
// encrypted into Output (and any secret into SecretsOut) atomically, the
// keyset written last. It returns the manifest, the wraps and the secrets
// folder used ("" without).
func Encrypt(ctx context.Context, j EncryptJob) (*encrypt.Manifest, []*encrypt.WrappedKey, string, error) {
	var wraps []*encrypt.WrappedKey
	for i, r := range j.Recipients {
		w, err := encrypt.Wrap(ctx, r, j.Key, j.ReleaseID, i, j.Getenv)
		if err != nil {
			return nil, nil, "", err
		}
		wraps = append(wraps, w)
	}
	secrets := j.SecretsOut
	if encrypt.HasSecrets(wraps) {
		if secrets == "" {
			secrets = filepath.Clean(j.Output) + ".secrets"
		}
		if err := CheckSecretsFolder(secrets, j.Output); err != nil {
			return nil, nil, "", err
		}
	} else if secrets != "" {
		return nil, nil, "", outcome.UsageError(errors.New("--secrets-out is only used with a trustee recipient"), "drop --secrets-out")
	}
	if j.KeysetOut != "" {
		published := []string{j.Output}
		if secrets != "" {
			published = append(published, secrets)
		}
		if err := CheckSecretOutput(j.KeysetOut, "the keyset file", published...); err != nil {
			return nil, nil, "", err
		}
		if _, err := os.Lstat(j.KeysetOut); err == nil {
			return nil, nil, "", outcome.UsageError(fmt.Errorf("the keyset file %q already exists", j.KeysetOut), "cvmkit never overwrites a key file (it may be the only copy of a data key): choose a new name or move the old file away")
		}
	}
	var m *encrypt.Manifest
	err := Folders(j.Output, secrets, j.Progress, func(tmp, secretsTmp string) error {
		var err error
		if m, err = encrypt.EncryptInto(ctx, j.Source, tmp, j.ReleaseID, j.Key, wraps, j.Options); err != nil {
			return err
		}
		if secretsTmp != "" {
			if _, err = encrypt.WriteSecrets(secretsTmp, wraps); err != nil {
				return err
			}
		}
		// The keyset is written before either folder is committed: if it
		// cannot be, nothing is, and no ciphertext exists whose only key
		// was lost.
		if j.KeysetOut != "" {
			return writeKeyset(j.KeysetOut, j.Key, j.Progress)
		}
		return nil
	})
	if err != nil {
		return nil, nil, "", err
	}
	return m, wraps, secrets, nil
}

// writeKeyset writes the data key in the clear to a new file (mode 0600,
// never over another), reporting leftovers of killed runs it removed.
func writeKeyset(path string, key *encrypt.DataKey, w io.Writer) error {
	bin, _, err := key.Cleartext()
	if err != nil {
		return err
	}
	removed, err := atomicfile.WriteNewFile(path, bin, 0o600)
	for _, s := range removed {
		fmt.Fprintf(w, "cvmkit: removed %s, left by an interrupted run (it may have held a key)\n", s)
	}
	if err != nil {
		return outcome.InputError(err, "give the keyset file a path in an existing folder you can write to")
	}
	return nil
}

// BuildInputs returns what a build needs besides the config: the epoch
// (SOURCE_DATE_EPOCH, else the config's sourceDateEpoch, else 0) and the
// cvmkit-init binary (embedded, or --init-binary).
func BuildInputs(c *config.Config, getenv func(string) (string, bool), initBinary string) (time.Time, []byte, error) {
	t, ok, err := epoch.FromEnv(getenv)
	if err != nil {
		return t, nil, outcome.UsageError(err)
	}
	if !ok {
		t = time.Unix(0, 0).UTC()
		if c.SourceDateEpoch != nil {
			t = time.Unix(*c.SourceDateEpoch, 0).UTC()
		}
	}
	initBin, _ := initbin.Binary()
	if initBinary != "" {
		if initBin, err = os.ReadFile(initBinary); err != nil {
			return t, nil, outcome.InputError(fmt.Errorf("--init-binary: %w", fileio.UnwrapPath(err)))
		}
	}
	return t, initBin, nil
}
