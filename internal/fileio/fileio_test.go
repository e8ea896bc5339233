package fileio

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/outcome"
)

// TestDigestEqualsRead: streaming a file gives the digests reading it whole
// gives, and both refuse a file over the limit as a bad input naming the
// flag.
func TestDigestEqualsRead(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 256<<10 - 1, 256 << 10, 3<<20 + 17} {
		p := filepath.Join(dir, "f")
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i*7 + i>>9)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, whole, err := Read(p, "--initrd", 4<<20)
		if err != nil {
			t.Fatal(err)
		}
		streamed, err := Digest(p, "--initrd", 4<<20)
		if err != nil {
			t.Fatal(err)
		}
		if whole != streamed || whole.Size != int64(size) || len(whole.SHA384) != 96 {
			t.Fatalf("size %d: Read %+v, Digest %+v", size, whole, streamed)
		}
		if size > 0 {
			_, err := Digest(p, "--initrd", int64(size-1))
			if outcome.ExitCode(err) != outcome.Input || !strings.Contains(err.Error(), "--initrd") {
				t.Fatalf("size %d over the limit: %v", size, err)
			}
		}
	}
	if _, err := Digest(filepath.Join(dir, "missing"), "--initrd", 1); outcome.ExitCode(err) != outcome.Input {
		t.Fatalf("missing file: %v", err)
	}
}

// TestNotRegular: a FIFO (which would block), a device (which never ends)
// and a directory are refused before anything is read, naming the input;
// the null device by name is an empty input.
func TestNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero", dir} {
		done := make(chan error, 1)
		go func() { _, err := ReadAll(p, "--quote", 1<<20); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) || outcome.ExitCode(err) != outcome.Input || !strings.Contains(err.Error(), "--quote") {
				t.Errorf("%s: %v", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: still reading after 5 s", p)
		}
	}
	if b, d, err := Read(os.DevNull, "--kernel", 1); err != nil || len(b) != 0 || d.SHA256 != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("%s: %v", os.DevNull, err)
	}
}

// TestLimitCountsBytesRead: the limit holds on the bytes read, whatever
// the size was when the file was opened (a file growing while it is read).
func TestLimitCountsBytesRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 10), 0o644); err != nil {
		t.Fatal(err)
	}
	f, d, err := Open(p, "--report")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.WriteFile(p, make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readBounded(f, d, "--report", 50); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "50 bytes") {
		t.Fatalf("grown file: %v", err)
	}
}
