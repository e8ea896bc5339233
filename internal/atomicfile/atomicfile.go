// Package atomicfile writes files so that a reader never sees a partial one:
// the data goes to a temporary file in the same folder, is synced, and is
// renamed over the final name only when complete. A crash, a full disk or an
// interrupt leaves at most a hidden ".name.tmp-*" file, never something that
// looks like finished output.
package atomicfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File is a file being written. Write to it, then call Commit to publish it
// under its final name or Abort to drop it. Abort after Commit is a no-op, so
// `defer f.Abort()` is the usual pattern.
type File struct {
	*os.File
	path   string
	perm   fs.FileMode
	done   bool
	direct bool // writing straight to a device or pipe
}

// Create starts writing path. The final file gets mode perm (not affected by
// the umask, so outputs are the same on every machine).
//
// When path is an existing device, pipe or socket (/dev/null, /dev/stdout, a
// FIFO), it is written directly: renaming over it would replace the device
// node itself with a regular file.
func Create(path string, perm fs.FileMode) (*File, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("opening %q: %w", path, err)
		}
		return &File{File: f, path: path, perm: perm, direct: true}, nil
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating %q: %w", path, err)
	}
	// Locked while it is written: a leftover of a killed run is unlocked,
	// and RemoveStale removes it (it may hold a secret).
	if err := lockFile(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("creating %q: %w", path, err)
	}
	return &File{File: f, path: path, perm: perm}, nil
}

// Commit syncs and closes the file, sets its mode and renames it to its
// final name.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("writing %q: already committed or aborted", f.path)
	}
	f.done = true
	if f.direct {
		if err := f.File.Close(); err != nil {
			return fmt.Errorf("writing %q: %w", f.path, err)
		}
		return nil
	}
	tmp := f.File.Name()
	err := f.File.Chmod(f.perm)
	if err == nil {
		err = f.File.Sync()
	}
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %q: %w", f.path, err)
	}
	return nil
}

// Abort closes and removes the temporary file. It is safe to call more
// than once and after Commit.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	if !f.direct {
		os.Remove(f.File.Name())
	}
}

// WriteFile writes data to path atomically with mode perm.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write streams the output of fill to path atomically with mode perm. If
// fill fails, nothing is left under path (a previous file there is kept).
func Write(path string, perm fs.FileMode, fill func(io.Writer) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := fill(f); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	return f.Commit()
}

// Copy copies the file src to path through a temporary file: path holds
// either its old contents or all of src's.
func Copy(path, src string, perm fs.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return Write(path, perm, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}

// Dir builds a folder atomically: fill writes into a temporary sibling
// folder, which is renamed to path only when fill succeeds. path must not
// exist yet (an existing folder is never merged into or replaced), so a
// failed or interrupted run leaves only a hidden ".name.tmp-*" folder, which
// the next run removes (see [Begin]). The folder gets mode 0755.
func Dir(path string, fill func(tmp string) error) error {
	return DirMode(path, 0o755, fill)
}

// DirMode is [Dir] with the final folder's mode: 0700 for a folder of
// secrets.
func DirMode(path string, perm fs.FileMode, fill func(tmp string) error) error {
	tx, err := Begin(path, perm)
	if err != nil {
		return err
	}
	defer tx.Abort()
	if err := fill(tx.Path); err != nil {
		return err
	}
	return tx.Commit()
}

// DirTx is a folder being built under a temporary name. Fill Path, then
// Commit to rename it into place, or Abort to remove it.
//
// While it is being filled the temporary folder has mode 0700, whatever its
// final mode, so no other user can read a partial output (or a secret that
// is on its way elsewhere), and this process holds an flock on it: a run
// killed with SIGKILL loses the lock, and the next Begin for the same path
// removes its leftover folder (listed in Stale).
type DirTx struct {
	// Path is the temporary folder to fill.
	Path string
	// Stale lists the leftover temporary folders of dead runs that Begin
	// removed.
	Stale []string
	final string
	perm  fs.FileMode
	lock  *os.File
	done  bool
}

// Begin starts building the folder path (which must not exist) with final
// mode perm.
func Begin(path string, perm fs.FileMode) (*DirTx, error) {
	path = filepath.Clean(path)
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%q already exists: choose a new output folder or remove it", path)
	}
	parent, base := filepath.Split(path)
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	stale, err := RemoveStale(path)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-*") // mode 0700
	if err != nil {
		return nil, fmt.Errorf("creating %q: %w", path, err)
	}
	lock, err := lockDir(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("creating %q: %w", path, err)
	}
	return &DirTx{Path: tmp, Stale: stale, final: path, perm: perm, lock: lock}, nil
}

// Commit gives the folder its final mode and renames it into place.
func (t *DirTx) Commit() error {
	if t.done {
		return fmt.Errorf("writing %q: already committed or aborted", t.final)
	}
	t.done = true
	err := os.Chmod(t.Path, t.perm)
	if err == nil {
		err = os.Rename(t.Path, t.final)
	}
	t.lock.Close()
	if err != nil {
		os.RemoveAll(t.Path)
		return fmt.Errorf("writing %q: %w", t.final, err)
	}
	return nil
}

// Abort removes the temporary folder; it is a no-op after Commit.
func (t *DirTx) Abort() {
	if t.done {
		return
	}
	t.done = true
	os.RemoveAll(t.Path)
	t.lock.Close()
}

// RemoveStale removes the ".name.tmp-*" siblings of path, folders and
// files, that no live process holds (leftovers of runs killed before they
// could clean up, which may hold secrets) and returns their names. A folder
// or file another run is still writing is locked and kept.
func RemoveStale(path string) ([]string, error) {
	parent, base := filepath.Split(filepath.Clean(path))
	if parent == "" {
		parent = "."
	}
	return removeUnlocked(filepath.Join(parent, "."+globEscape(base)+".tmp-*"), true)
}

// removeUnlocked removes the folders (and, with files, regular files)
// matching pattern that no live process holds locked, and returns their
// names.
func removeUnlocked(pattern string, files bool) ([]string, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, m := range matches {
		fi, err := os.Lstat(m)
		if err != nil || !(fi.IsDir() || files && fi.Mode().IsRegular()) {
			continue
		}
		l, err := tryLockDir(m)
		if err != nil || l == nil {
			continue // held by a live run, or not ours to judge
		}
		err = os.RemoveAll(m)
		l.Close()
		if err != nil {
			return removed, fmt.Errorf("removing the leftover %q of an interrupted run: %w", m, err)
		}
		removed = append(removed, m)
	}
	return removed, nil
}

func globEscape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', '\\':
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// WriteNewFile writes data to path atomically with mode perm, and fails if
// path exists (also if it appears while the data is written): it never
// replaces a file, for outputs that may be the only copy of a key. Leftover
// temporary files of killed runs beside path are removed first and named
// in removed (they may hold a key in the clear).
func WriteNewFile(path string, data []byte, perm fs.FileMode) (removed []string, err error) {
	if removed, err = RemoveStale(path); err != nil {
		return removed, err
	}
	f, err := Create(path, perm)
	if err != nil {
		return removed, err
	}
	defer f.Abort()
	if f.direct {
		return removed, fmt.Errorf("writing %q: it exists (a device or pipe), and a key file is never written over another file", path)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Link(f.File.Name(), path) // fails with EEXIST instead of replacing
	}
	if err != nil {
		return removed, fmt.Errorf("writing %q: %w", path, err)
	}
	return removed, nil
}

// TempDir is a private temporary folder (mode 0700) in the system's
// temporary folder, locked while this process uses it: a run killed before
// it could remove its folder leaves it unlocked, and the next TempDir with
// the same prefix removes it (listed in Stale).
type TempDir struct {
	Path  string
	Stale []string
	lock  *os.File
}

// NewTempDir removes the unlocked leftovers named prefix* in the system's
// temporary folder, then creates a new one.
func NewTempDir(prefix string) (*TempDir, error) {
	stale, err := removeUnlocked(filepath.Join(os.TempDir(), globEscape(prefix)+"*"), false)
	if err != nil {
		return nil, err
	}
	t := &TempDir{Stale: stale}
	if t.Path, err = os.MkdirTemp("", prefix+"*"); err != nil {
		return nil, err
	}
	if t.lock, err = lockDir(t.Path); err != nil {
		os.RemoveAll(t.Path)
		return nil, err
	}
	return t, nil
}

// Remove removes the folder and releases its lock.
func (t *TempDir) Remove() error {
	err := os.RemoveAll(t.Path)
	t.lock.Close()
	return err
}
