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

// Dir builds a folder atomically: fill writes into a temporary sibling
// folder, which is renamed to path only when fill succeeds. path must not
// exist yet (an existing folder is never merged into or replaced), so a
// failed or interrupted run leaves only a hidden ".name.tmp-*" folder.
func Dir(path string, fill func(tmp string) error) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%q already exists: choose a new output folder or remove it", path)
	}
	parent, base := filepath.Split(filepath.Clean(path))
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating %q: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("writing %q: %w", path, err)
	}
	return nil
}
