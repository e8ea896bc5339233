// Package fileio reads the input files commands and stages name, with
// errors that say which input (a flag or config key) it was, size limits,
// and the SHA-256 and SHA-384 recorded as the file is read: each input is
// read and hashed once.
package fileio

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
)

// Open opens an input file named by a flag or key, with an error that names
// both when it cannot.
func Open(path, flag string) (*os.File, refvalues.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, refvalues.File{}, outcome.InputError(fmt.Errorf("%s %q: %w", flag, path, UnwrapPath(err)), "check the path")
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() && fi.Mode()&os.ModeCharDevice == 0 {
		err = fmt.Errorf("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, refvalues.File{}, outcome.InputError(fmt.Errorf("%s %q: %w", flag, path, err))
	}
	return f, refvalues.File{Path: path, Size: fi.Size()}, nil
}

// Read reads a whole input file of at most max bytes and records its
// SHA-256 and SHA-384.
func Read(path, flag string, max int64) ([]byte, refvalues.File, error) {
	f, d, err := Open(path, flag)
	if err != nil {
		return nil, d, err
	}
	defer f.Close()
	if d.Size > max {
		return nil, d, outcome.InputError(fmt.Errorf("%s %q is %d bytes, more than the %d this input can be", flag, path, d.Size, max))
	}
	b := make([]byte, d.Size)
	if _, err := f.ReadAt(b, 0); err != nil && d.Size > 0 {
		return nil, d, fmt.Errorf("reading %s %q: %w", flag, path, err)
	}
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
		return d, outcome.InputError(fmt.Errorf("%s %q is %d bytes, more than the %d this input can be", flag, path, d.Size, max))
	}
	h256, h384 := sha256.New(), sha512.New384()
	n, err := io.CopyBuffer(io.MultiWriter(h256, h384), io.LimitReader(f, max+1), make([]byte, 256<<10))
	if err != nil {
		return d, fmt.Errorf("reading %s %q: %w", flag, path, err)
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
