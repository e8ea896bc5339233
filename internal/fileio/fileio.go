// Package fileio reads the input files commands and stages name, with
// errors that say which input (a flag or config key) it was, size limits,
// and the SHA-256 and SHA-384 recorded as the file is read: each input is
// read and hashed once.
//
// Every read is bounded by the limit of its kind, counted on the bytes
// actually read (never on the size stat reports, which a device, a pipe or
// a file still being written does not state), and only regular files are
// read: a FIFO blocks until someone writes to it and a device never ends,
// so both are refused before anything is read. The one exception is the
// null device by its name (os.DevNull), an empty input that
// sev-snp-measure's users pass as "no kernel".
package fileio

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
)

// ErrNotRegular is the error for an input that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is the error for an input over its limit.
var ErrTooLarge = errors.New("larger than this input may be")

// Open opens an input file named by a flag or key, with an error that names
// both when it cannot. It refuses anything but a regular file (or the
// null device by name) without blocking: a FIFO is opened non-blocking
// and refused.
func Open(path, flag string) (*os.File, refvalues.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, refvalues.File{}, outcome.InputError(fmt.Errorf("%s %q: %w", flag, path, UnwrapPath(err)), "check the path")
	}
	if err := regular(path, fi); err != nil {
		return nil, refvalues.File{}, outcome.InputError(fmt.Errorf("%s %q: %w", flag, path, err), "give a regular file: copy the data from a pipe or device into a file first")
	}
	// O_NONBLOCK: should the name be replaced by a FIFO after the check,
	// opening it does not wait for a writer (reads of regular files are
	// not affected).
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, refvalues.File{}, outcome.InputError(fmt.Errorf("%s %q: %w", flag, path, UnwrapPath(err)), "check the path")
	}
	// Stat the file that was opened: the name may have been replaced
	// between the two calls.
	if fi, err = f.Stat(); err == nil {
		err = regular(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, refvalues.File{}, outcome.InputError(fmt.Errorf("%s %q: %w", flag, path, err))
	}
	return f, refvalues.File{Path: path, Size: fi.Size()}, nil
}

// regular refuses every file type but a regular file, except the null
// device named by its path.
func regular(path string, fi fs.FileInfo) error {
	switch m := fi.Mode(); {
	case m.IsRegular():
		return nil
	case path == os.DevNull && m&fs.ModeCharDevice != 0:
		return nil
	case m&fs.ModeNamedPipe != 0:
		return fmt.Errorf("%w: %s, which cvmkit does not read because it blocks until written", ErrNotRegular, TypeName(m))
	default:
		return fmt.Errorf("%w: %s", ErrNotRegular, TypeName(m))
	}
}

// TypeName names the type of a file that is not a regular file, for
// messages ("a FIFO (named pipe)").
func TypeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsRegular():
		return "a regular file"
	}
	return "a file of mode " + m.String()
}

// tooLarge is the error for an input over its limit.
func tooLarge(flag, path string, max int64) error {
	return outcome.InputError(fmt.Errorf("%s %q is %w: more than %s", flag, path, ErrTooLarge, Size(max)), "check that this is the right file")
}

// Size renders a byte count as people read limits: "64 MiB", "1500 bytes".
func Size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ReadAll reads a whole input file of at most max bytes, counting the
// bytes it reads (not trusting the size stat gives), without digests.
func ReadAll(path, flag string, max int64) ([]byte, error) {
	f, d, err := Open(path, flag)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBounded(f, d, flag, max)
}

func readBounded(f *os.File, d refvalues.File, flag string, max int64) ([]byte, error) {
	if d.Size > max {
		return nil, tooLarge(flag, d.Path, max)
	}
	buf := bytes.NewBuffer(make([]byte, 0, d.Size+1))
	n, err := buf.ReadFrom(io.LimitReader(f, max+1))
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("reading %s %q: %w", flag, d.Path, UnwrapPath(err)))
	}
	if n > max {
		return nil, tooLarge(flag, d.Path, max)
	}
	return buf.Bytes(), nil
}

// Read reads a whole input file of at most max bytes and records its
// SHA-256 and SHA-384.
func Read(path, flag string, max int64) ([]byte, refvalues.File, error) {
	f, d, err := Open(path, flag)
	if err != nil {
		return nil, d, err
	}
	defer f.Close()
	b, err := readBounded(f, d, flag, max)
	if err != nil {
		return nil, d, err
	}
	d.Size = int64(len(b))
	// The two digests of a large input run side by side.
	var s384 [sha512.Size384]byte
	done := make(chan struct{})
	go func() { s384 = sha512.Sum384(b); close(done) }()
	s256 := sha256.Sum256(b)
	<-done
	d.SHA256, d.SHA384 = hex.EncodeToString(s256[:]), hex.EncodeToString(s384[:])
	return b, d, nil
}

// Digest records the size, SHA-256 and SHA-384 of an input file of at most
// max bytes that is needed only by its digests, reading it as a stream
// through a small buffer instead of holding it in memory.
func Digest(path, flag string, max int64) (refvalues.File, error) {
	f, d, err := Open(path, flag)
	if err != nil {
		return d, err
	}
	defer f.Close()
	if d.Size > max {
		return d, tooLarge(flag, path, max)
	}
	h256, h384 := sha256.New(), sha512.New384()
	n, err := io.CopyBuffer(io.MultiWriter(h256, h384), io.LimitReader(f, max+1), make([]byte, 256<<10))
	if err != nil {
		return d, outcome.InputError(fmt.Errorf("reading %s %q: %w", flag, path, UnwrapPath(err)))
	}
	if n > max {
		return d, tooLarge(flag, path, max)
	}
	if n != d.Size {
		return d, outcome.InputError(fmt.Errorf("%s %q changed while it was read (%d bytes, then %d): run again once nothing writes to it", flag, path, d.Size, n))
	}
	d.SHA256, d.SHA384 = hex.EncodeToString(h256.Sum(nil)), hex.EncodeToString(h384.Sum(nil))
	return d, nil
}

// UnwrapPath drops an *os.PathError's repeated path.
func UnwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
