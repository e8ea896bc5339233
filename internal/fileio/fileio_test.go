package fileio

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
