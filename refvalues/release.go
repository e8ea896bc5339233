package refvalues

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Release is a release's documents: what key-authority policies and
// checks are made from. cvmkit release carries it in memory from stage to
// stage; ReadRelease reads it back from a folder (reading the documents,
// never hashing the large files beside them).
type Release struct {
	// Name is NAME@VERSION (the lock's release), else the folder's name.
	Name string
	Lock *Lock
	// SNP and TDX are the measurement documents by predicate key
	// (MeasurementName: "snp-qemu", "tdx-td-2vcpu").
	SNP map[string]*SNP
	TDX map[string]*TDX
	GPU *GPU
	// Keys is the model's key index, when the release has one.
	Keys *KeyIndex
}

// MeasurementKeys returns the measurement documents' keys in name order.
func (r *Release) MeasurementKeys() []string {
	var keys []string
	for k := range r.SNP {
		keys = append(keys, k)
	}
	for k := range r.TDX {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// OutputSHA256 is the SHA-256 the image lock records for an image output
// ("vmlinuz"), or "".
func (r *Release) OutputSHA256(name string) string {
	if r.Lock == nil {
		return ""
	}
	for _, o := range r.Lock.Outputs {
		if o.Name == name {
			return o.SHA256
		}
	}
	return ""
}

// ReadRelease reads the documents of the release folder dir.
func ReadRelease(dir string) (*Release, error) {
	r := &Release{SNP: map[string]*SNP{}, TDX: map[string]*TDX{}}
	read := func(rel string, v any) (bool, error) { return ReadJSON(dir, rel, v) }
	var lock Lock
	if ok, err := read(LockPath, &lock); err != nil {
		return nil, err
	} else if ok {
		r.Lock = &lock
		r.Name = lock.Release
	}
	if r.Name == "" {
		r.Name = filepath.Base(filepath.Clean(dir))
	}
	entries, err := os.ReadDir(filepath.Join(dir, MeasurementsDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		rel := MeasurementsDir + "/" + e.Name()
		key, ok := MeasurementName(rel)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if MeasurementPlatform(key) == "snp" {
			var d SNP
			if _, err := read(rel, &d); err != nil {
				return nil, err
			}
			r.SNP[key] = &d
		} else {
			var d TDX
			if _, err := read(rel, &d); err != nil {
				return nil, err
			}
			r.TDX[key] = &d
		}
	}
	var gpu GPU
	if ok, err := read(GPUPath, &gpu); err != nil {
		return nil, err
	} else if ok {
		r.GPU = &gpu
	}
	var keys KeyIndex
	if ok, err := read(KeyIndexPath, &keys); err == nil && ok {
		r.Keys = &keys
	}
	return r, nil
}

// ReadJSON decodes the document at rel in the release folder dir; a missing
// one is (false, nil).
func ReadJSON(dir, rel string, v any) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s: %w", rel, err)
	}
	return true, nil
}

// WalkFiles calls f for every file of the release folder dir (slash path
// relative to dir) except the attestations folder, in lexical order. A
// symbolic link or other non-regular file is an error: a release is plain
// files and folders.
func WalkFiles(dir string, f func(rel string, d fs.DirEntry) error) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			if rel == AttestationsDir {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: %s is not a regular file (a release holds only files and folders)", dir, rel)
		}
		return f(rel, d)
	})
}
