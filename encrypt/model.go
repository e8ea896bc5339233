package encrypt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cvmkit/cvmkit/refvalues"

	"github.com/cvmkit/cvmkit/internal/atomicfile"
)

// Layout of an encrypted model folder.
const (
	ManifestFile = "model.manifest.json"
	WeightsDir   = "weights"
	// ManifestSchema identifies the manifest format (docs/weights-format.md).
	ManifestSchema = "https://cvmkit.dev/model-manifest/v1"
	// Format names the ciphertext format of every file.
	Format = "tink-streaming-aead:AES256_GCM_HKDF_1MB"
	// adLabel starts every file's associated data.
	adLabel = "cvmkit-weights-v1"
)

// AssociatedData is what each file's ciphertext is bound to: the label,
// the release ID and the file's path in the model, NUL-separated. A file
// moved, renamed, swapped with another or taken from another release does
// not decrypt.
func AssociatedData(releaseID, filePath string) []byte {
	return []byte(adLabel + "\x00" + releaseID + "\x00" + filePath)
}

// Manifest lists every file of an encrypted model; the release signs it.
type Manifest struct {
	Schema      string `json:"schema"`
	ReleaseID   string `json:"release_id"`
	Format      string `json:"format"`
	SegmentSize int    `json:"segment_size"`
	// KeyID is the Tink key ID of the data key.
	KeyID uint32          `json:"key_id"`
	Files []ManifestEntry `json:"files"`
}

// ManifestEntry is one encrypted file.
type ManifestEntry struct {
	// Path is the file's path in the model, slash-separated.
	Path string `json:"path"`
	// Size and SHA256 describe the plaintext.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Ciphertext is the encrypted file's path in the encrypted folder.
	Ciphertext       string `json:"ciphertext"`
	CiphertextSize   int64  `json:"ciphertext_size"`
	CiphertextSHA256 string `json:"ciphertext_sha256"`
}

// Marshal returns the manifest as indented JSON with files sorted by path:
// the same model and key give the same bytes.
func (m *Manifest) Marshal() ([]byte, error) {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ReadManifest reads and checks the manifest of an encrypted folder.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	if m.Schema != ManifestSchema || m.Format != Format || m.SegmentSize != SegmentSize {
		return nil, fmt.Errorf("%s: schema %q, format %q, segment size %d: not a manifest this cvmkit reads", ManifestFile, m.Schema, m.Format, m.SegmentSize)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if err := checkPath(f.Path); err != nil {
			return nil, fmt.Errorf("%s: %w", ManifestFile, err)
		}
		if f.Ciphertext != path.Join(WeightsDir, f.Path) {
			return nil, fmt.Errorf("%s: file %q has ciphertext %q, want %q", ManifestFile, f.Path, f.Ciphertext, path.Join(WeightsDir, f.Path))
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("%s: file %q is listed twice", ManifestFile, f.Path)
		}
		seen[f.Path] = true
	}
	return &m, nil
}

// checkPath accepts a clean, relative, slash-separated path that stays
// inside the folder.
func checkPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") || strings.ContainsRune(p, '\\') || strings.ContainsRune(p, 0) {
		return fmt.Errorf("file path %q is not a clean relative path", p)
	}
	return nil
}

// SourceFile is one plaintext file to encrypt.
type SourceFile struct {
	Path string // in the model, slash-separated
	Abs  string // on disk
	Size int64
}

// ListSource lists the regular files of a model: a folder (walked in
// sorted order) or a single file. Symbolic links and other special files
// are refused, so the release holds exactly what the folder shows.
func ListSource(src string) ([]SourceFile, error) {
	fi, err := os.Lstat(src)
	if err != nil {
		return nil, err
	}
	if fi.Mode().IsRegular() {
		return []SourceFile{{Path: filepath.Base(src), Abs: src, Size: fi.Size()}}, nil
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%q is neither a file nor a folder", src)
	}
	var out []SourceFile
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%q is a %s, not a regular file: copy the file it stands for into the model folder", rel, info.Mode().Type())
		}
		out = append(out, SourceFile{Path: rel, Abs: p, Size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q holds no files", src)
	}
	return out, nil
}

// EncryptModel encrypts every file of src into the new folder dst:
// dst/weights/<path> and dst/model.manifest.json. The folder is built under
// a temporary name and renamed when complete, so an interrupted run leaves
// nothing that looks like an encrypted model.
//
// wraps are the data key wrapped for its recipients; the public ones are
// written under keys/ with an index (keys/index.json) that lists every wrap.
// A secret wrap (the cleartext keyset for a Trustee KBS) is only listed
// there, by its path in the secrets folder: it never enters dst, which is
// published and signed. Write it with [WriteSecrets].
func EncryptModel(ctx context.Context, src, dst, releaseID string, key *DataKey, wraps []*WrappedKey, opts Options) (*Manifest, error) {
	var m *Manifest
	err := atomicfile.Dir(dst, func(tmp string) error {
		var err error
		m, err = EncryptInto(ctx, src, tmp, releaseID, key, wraps, opts)
		return err
	})
	return m, err
}

// EncryptInto is [EncryptModel] into dir, an empty folder that the caller
// publishes atomically once every step of its own succeeded.
func EncryptInto(ctx context.Context, src, dir, releaseID string, key *DataKey, wraps []*WrappedKey, opts Options) (*Manifest, error) {
	if err := writeWraps(dir, wraps); err != nil {
		return nil, err
	}
	return encryptModel(ctx, src, dir, releaseID, key, opts)
}

// KeysIndex is keys/index.json: every wrap of the data key.
type KeysIndex = refvalues.KeyIndex

func writeWraps(dir string, wraps []*WrappedKey) error {
	if len(wraps) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, w := range wraps {
		if seen[w.File] {
			return fmt.Errorf("two recipients would write %s", w.File)
		}
		seen[w.File] = true
		if w.Secret {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(w.File))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(p, w.Data, 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		return err
	}
	idx := KeysIndex{Wraps: make([]refvalues.KeyWrap, len(wraps))}
	for i, w := range wraps {
		idx.Wraps[i] = w.KeyWrap
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "keys", "index.json"), append(b, '\n'), 0o644)
}

// HasSecrets reports whether any wrap is a secret that needs a secrets
// folder.
func HasSecrets(wraps []*WrappedKey) bool {
	for _, w := range wraps {
		if w.Secret {
			return true
		}
	}
	return false
}

// WriteSecrets writes the secret wraps (the cleartext keyset for a Trustee
// KBS) into dir, a private folder that is not published: files with mode
// 0600 in folders with mode 0700, at the path the keys index gives them.
// The caller makes dir (0700, atomically: see atomicfile.DirMode).
func WriteSecrets(dir string, wraps []*WrappedKey) ([]string, error) {
	var files []string
	for _, w := range wraps {
		if !w.Secret {
			continue
		}
		if err := checkPath(w.File); err != nil {
			return nil, err
		}
		p := filepath.Join(dir, filepath.FromSlash(w.File))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(p, w.Data, 0o600); err != nil {
			return nil, err
		}
		files = append(files, w.File)
	}
	return files, nil
}

func encryptModel(ctx context.Context, src, dst, releaseID string, key *DataKey, opts Options) (*Manifest, error) {
	if releaseID == "" {
		return nil, errors.New("a release ID is required: it is bound into every file")
	}
	files, err := ListSource(src)
	if err != nil {
		return nil, fmt.Errorf("reading the model %q: %w", src, err)
	}
	m := &Manifest{Schema: ManifestSchema, ReleaseID: releaseID, Format: Format, SegmentSize: SegmentSize, KeyID: key.KeyID}
	// Deterministic mode needs each file's digest before encrypting it: the
	// digests are computed one file ahead, on another core, while the
	// previous file is encrypted.
	var digests <-chan prepass
	if opts.Deterministic {
		ctx2, cancel := context.WithCancel(ctx)
		defer cancel()
		digests = prepassAll(ctx2, files)
	}
	for _, f := range files {
		var pre *prepass
		if digests != nil {
			p, ok := <-digests
			if !ok {
				return nil, ctx.Err()
			}
			if p.err != nil {
				return nil, fmt.Errorf("encrypting %q: %w", f.Path, p.err)
			}
			pre = &p
		}
		e, err := encryptFile(ctx, f, dst, releaseID, key, opts, pre)
		if err != nil {
			return nil, fmt.Errorf("encrypting %q: %w", f.Path, err)
		}
		m.Files = append(m.Files, e)
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dst, ManifestFile), b, 0o644); err != nil {
		return nil, err
	}
	return m, nil
}

// prepass is a file's SHA-256 and the state it was read in.
type prepass struct {
	sum  [32]byte
	size int64
	info os.FileInfo
	err  error
}

// prepassAll hashes files in order, one ahead of their encryption (the
// channel holds one result), checking ctx as it reads.
func prepassAll(ctx context.Context, files []SourceFile) <-chan prepass {
	out := make(chan prepass, 1)
	go func() {
		defer close(out)
		for _, f := range files {
			p := hashFile(ctx, f.Abs)
			select {
			case out <- p:
			case <-ctx.Done():
				return
			}
			if p.err != nil {
				return
			}
		}
	}()
	return out
}

func hashFile(ctx context.Context, name string) prepass {
	in, err := os.Open(name)
	if err != nil {
		return prepass{err: err}
	}
	defer in.Close()
	var p prepass
	if p.info, err = in.Stat(); err != nil {
		return prepass{err: err}
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return prepass{err: err}
		}
		n, err := in.Read(buf)
		h.Write(buf[:n])
		p.size += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return prepass{err: err}
		}
	}
	h.Sum(p.sum[:0])
	return p
}

func encryptFile(ctx context.Context, f SourceFile, dst, releaseID string, key *DataKey, opts Options, pre *prepass) (ManifestEntry, error) {
	ct := path.Join(WeightsDir, f.Path)
	out := filepath.Join(dst, filepath.FromSlash(ct))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return ManifestEntry{}, err
	}
	in, err := os.Open(f.Abs)
	if err != nil {
		return ManifestEntry{}, err
	}
	defer in.Close()
	// dst is the temporary folder EncryptModel renames when complete.
	w, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return ManifestEntry{}, err
	}
	ad := AssociatedData(releaseID, f.Path)
	if opts.Deterministic {
		// The pre-pass digest seeds the header and is the manifest's
		// plaintext digest: the plaintext is hashed once, not again while
		// encrypting. The file must then not change in between (checked
		// below by size and modification time).
		if pre == nil {
			p := hashFile(ctx, f.Abs)
			pre = &p
		}
		if pre.err != nil {
			w.Close()
			return ManifestEntry{}, pre.err
		}
		header, err := DeterministicHeader(key.ikm, ad, pre.sum)
		if err != nil {
			w.Close()
			return ManifestEntry{}, err
		}
		sum := pre.sum
		opts.Rand, opts.PlainSHA256 = bytes.NewReader(header), &sum
	}
	st, err := Encrypt(ctx, w, in, key.ikm, ad, opts)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return ManifestEntry{}, err
	}
	if pre != nil {
		after, err := in.Stat()
		if err != nil {
			return ManifestEntry{}, err
		}
		if st.PlainSize != pre.size || after.Size() != pre.info.Size() || !after.ModTime().Equal(pre.info.ModTime()) {
			return ManifestEntry{}, fmt.Errorf("%s changed while it was being encrypted: encrypt it again", f.Path)
		}
	}
	return ManifestEntry{Path: f.Path, Size: st.PlainSize, SHA256: hex.EncodeToString(st.PlainSHA256[:]),
		Ciphertext: ct, CiphertextSize: st.CipherSize, CiphertextSHA256: hex.EncodeToString(st.CipherSHA256[:])}, nil
}

// FileError names the file a decryption failed on.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// DecryptModel decrypts the encrypted folder src into the new folder dst.
// It checks the folder against the manifest first (no missing, extra or
// resized files), then decrypts each file and checks its size and SHA-256
// against the manifest. dst is built under a temporary name and renamed
// only when every file decrypted: a failure leaves no plaintext folder, and
// the error names the file.
func DecryptModel(ctx context.Context, src, dst string, key *DataKey, opts Options) (*Manifest, error) {
	var m *Manifest
	err := atomicfile.Dir(dst, func(tmp string) error {
		var err error
		m, err = decryptModel(ctx, src, tmp, key, opts)
		return err
	})
	return m, err
}

func decryptModel(ctx context.Context, src, dst string, key *DataKey, opts Options) (*Manifest, error) {
	m, err := ReadManifest(src)
	if err != nil {
		return nil, err
	}
	if m.KeyID != key.KeyID {
		return nil, fmt.Errorf("%w: the manifest's data key has ID %d, the keyset's primary key %d", ErrAuth, m.KeyID, key.KeyID)
	}
	if err := checkInventory(src, m); err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		if err := decryptFile(ctx, src, dst, m.ReleaseID, f, key, opts); err != nil {
			return nil, &FileError{Path: f.Path, Err: err}
		}
	}
	return m, nil
}

// checkInventory compares the files under weights/ with the manifest.
func checkInventory(src string, m *Manifest) error {
	want := map[string]ManifestEntry{}
	for _, f := range m.Files {
		want[f.Ciphertext] = f
	}
	root := filepath.Join(src, WeightsDir)
	var extra []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		f, ok := want[rel]
		if !ok {
			extra = append(extra, rel)
			return nil
		}
		delete(want, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() != f.CiphertextSize {
			return &FileError{Path: f.Path, Err: fmt.Errorf("%w: ciphertext is %d bytes, the manifest says %d", ErrAuth, info.Size(), f.CiphertextSize)}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var missing []string
	for p := range want {
		missing = append(missing, p)
	}
	sort.Strings(missing)
	if len(extra) > 0 || len(missing) > 0 {
		return &InventoryError{Missing: missing, Extra: extra}
	}
	return nil
}

// InventoryError reports files missing from, or not listed in, the manifest.
type InventoryError struct {
	Missing, Extra []string
}

func (e *InventoryError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, "missing "+strings.Join(e.Missing, ", "))
	}
	if len(e.Extra) > 0 {
		parts = append(parts, "not in the manifest: "+strings.Join(e.Extra, ", "))
	}
	return "the encrypted folder does not match its manifest: " + strings.Join(parts, "; ")
}

func decryptFile(ctx context.Context, src, dst, releaseID string, f ManifestEntry, key *DataKey, opts Options) error {
	in, err := os.Open(filepath.Join(src, filepath.FromSlash(f.Ciphertext)))
	if err != nil {
		return err
	}
	defer in.Close()
	r, err := NewReader(in, f.CiphertextSize, key.ikm, AssociatedData(releaseID, f.Path))
	if err != nil {
		return err
	}
	out := filepath.Join(dst, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	// dst is the temporary folder DecryptModel renames when complete.
	w, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	st, err := r.DecryptTo(ctx, w, opts)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(st.PlainSHA256[:]); st.PlainSize != f.Size || got != f.SHA256 {
		return fmt.Errorf("%w: decrypted to %d bytes with SHA-256 %s, the manifest says %d bytes, %s", ErrAuth, st.PlainSize, got, f.Size, f.SHA256)
	}
	return nil
}

// OpenFile returns a random-access reader over one file of an encrypted
// folder, for loaders that read tensors in place.
func OpenFile(src string, m *Manifest, filePath string, key *DataKey) (*Reader, io.Closer, error) {
	for _, f := range m.Files {
		if f.Path != filePath {
			continue
		}
		in, err := os.Open(filepath.Join(src, filepath.FromSlash(f.Ciphertext)))
		if err != nil {
			return nil, nil, err
		}
		r, err := NewReader(in, f.CiphertextSize, key.ikm, AssociatedData(m.ReleaseID, f.Path))
		if err != nil {
			in.Close()
			return nil, nil, &FileError{Path: f.Path, Err: err}
		}
		return r, in, nil
	}
	return nil, nil, fmt.Errorf("%q is not in the manifest", filePath)
}
