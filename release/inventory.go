package release

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/cvmkit/cvmkit/sign"
)

// Inventory is what a release holds so far: every file by release path,
// with the size and digests its stage computed, and the typed documents.
// The signed subjects come from it, not from reading the folder again.
type Inventory struct {
	files map[string]refvalues.File
	Docs  *refvalues.Release
}

// NewInventory is an empty inventory.
func NewInventory() *Inventory {
	return &Inventory{files: map[string]refvalues.File{}, Docs: &refvalues.Release{SNP: map[string]*refvalues.SNP{}, TDX: map[string]*refvalues.TDX{}}}
}

// Add records a file the caller wrote, with digests it already has.
func (inv *Inventory) Add(rel string, f refvalues.File) {
	f.Path = rel
	inv.files[rel] = f
}

// File returns a recorded file.
func (inv *Inventory) File(rel string) (refvalues.File, bool) {
	f, ok := inv.files[rel]
	return f, ok
}

// AddBytes records a file from its contents (a small document).
func (inv *Inventory) AddBytes(rel string, b []byte) {
	s256, s384 := sha256.Sum256(b), sha512.Sum384(b)
	inv.Add(rel, refvalues.File{Size: int64(len(b)), SHA256: hex.EncodeToString(s256[:]), SHA384: hex.EncodeToString(s384[:])})
}

// WriteFile writes b at rel under dir and records it.
func (inv *Inventory) WriteFile(dir, rel string, b []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return err
	}
	inv.AddBytes(rel, b)
	return nil
}

// WriteDoc writes v as cvmkit writes every JSON document (two-space
// indent, no HTML escaping, a final newline) and records it.
func (inv *Inventory) WriteDoc(dir, rel string, v any) error {
	b, err := MarshalDoc(v)
	if err != nil {
		return err
	}
	return inv.WriteFile(dir, rel, b)
}

// MarshalDoc is a document's canonical bytes.
func MarshalDoc(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// AddFromDisk records a small file a library wrote (the image lock, the key
// index), reading it once.
func (inv *Inventory) AddFromDisk(dir, rel string) error {
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	inv.AddBytes(rel, b)
	return nil
}

// Subjects are the in-toto subjects of the release folder dir: every file
// of the inventory with its SHA-256, sorted. The folder is listed (names
// and sizes, no contents read) and must hold exactly the inventory's files:
// a stage that wrote a file without recording it is a bug, never a file
// signed unseen.
func (inv *Inventory) Subjects(dir string) ([]sign.Subject, error) {
	seen := 0
	err := refvalues.WalkFiles(dir, func(rel string, d fs.DirEntry) error {
		f, ok := inv.files[rel]
		if !ok {
			return fmt.Errorf("internal error: %s was written but no stage recorded it", rel)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Size() != f.Size {
			return fmt.Errorf("internal error: %s is %d bytes, recorded as %d", rel, fi.Size(), f.Size)
		}
		seen++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if seen != len(inv.files) {
		return nil, fmt.Errorf("internal error: %d files recorded, %d in %s", len(inv.files), seen, dir)
	}
	out := make([]sign.Subject, 0, len(inv.files))
	for rel, f := range inv.files {
		out = append(out, sign.Subject{Name: rel, Digest: map[string]string{"sha256": f.SHA256}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
