package verify

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestCompareStreams: a released file is compared with a rebuilt one (on
// disk or in memory) chunk by chunk, and the first differing byte is found
// across chunk boundaries and length differences.
func TestCompareStreams(t *testing.T) {
	dir := t.TempDir()
	base := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16) // three chunks
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rel := write("released", base)
	flip := append([]byte(nil), base...)
	flip[2<<20+5] ^= 1
	for _, c := range []struct {
		name string
		a    artifact
		size int64
		diff int64
	}{
		{"same on disk", artifact{path: write("same", base)}, int64(len(base)), -1},
		{"same in memory", artifact{data: base}, int64(len(base)), -1},
		{"one byte in chunk 3", artifact{path: write("flip", flip)}, 0, 2<<20 + 5},
		{"shorter at a chunk boundary", artifact{data: base[:2<<20]}, 0, 2 << 20},
		{"longer", artifact{data: append(append([]byte(nil), base...), 'x')}, 0, int64(len(base))},
		{"empty", artifact{data: []byte{}}, 0, 0},
	} {
		size, diff, err := c.a.compare(context.Background(), rel)
		if err != nil || size != c.size || diff != c.diff {
			t.Errorf("%s: size %d diff %d err %v, want %d %d", c.name, size, diff, err, c.size, c.diff)
		}
	}
}
