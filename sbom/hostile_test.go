package sbom

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/sbom/internal/initrdtest"
)

// allocated runs f and returns the bytes it allocated on the heap (a
// process-independent measure of what a hostile input costs; the helper's
// peak RSS is checked in cmd/cvmkit-sbom).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHostileModinfo: the hostile-input pass's module bombs are read within
// bounds. A 64 MiB .modinfo of zeros (a 64 KiB gzip initrd) made
// bytes.Split allocate 2.1 GiB; a zlib-compressed .modinfo declaring 2 GiB
// bypassed the inspection limit. Both are now named by their file, with
// the reason, without reading the section.
func TestHostileModinfo(t *testing.T) {
	zeros := initrdtest.Gzip(initrdtest.CPIO(initrdtest.Entry{Name: "lib/modules/bomb.ko", Data: initrdtest.Module(make([]byte, 64<<20))}))
	declared := initrdtest.Gzip(initrdtest.CPIO(initrdtest.Entry{Name: "lib/modules/zbomb.ko", Data: initrdtest.CompressedModule(initrdtest.ZlibZeros(16<<20), 2<<30)}))
	for name, c := range map[string]struct {
		initrd []byte
		want   string
	}{
		"64 MiB of zeros":        {zeros, "whose .modinfo declares 67108864 bytes, more than the 1024 KiB cvmkit reads"},
		"compressed, 2 GiB said": {declared, "whose .modinfo declares 2147483648 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			var p Part
			var err error
			n := allocated(func() { p, err = InitrdPart(context.Background(), "initrd.img", bytes.NewReader(c.initrd)) })
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Parts) != 1 || p.Parts[0].Kind != Module || !strings.Contains(p.Parts[0].Description, c.want) {
				t.Fatalf("%+v", p.Parts)
			}
			// Allocations over the whole read (not the peak): the file's
			// first maxInMemory bytes, the decompressor's and copies'
			// buffers. The helper's peak RSS is checked in cmd/cvmkit-sbom.
			if n > 128<<20 {
				t.Fatalf("allocated %d MiB", n>>20)
			}
			t.Logf("%d KiB initrd: allocated %d MiB; %s", len(c.initrd)>>10, n>>20, p.Parts[0].Description)
		})
	}
	// A module whose .modinfo is within bounds is still read.
	ok := initrdtest.CPIO(initrdtest.Entry{Name: "m.ko", Data: initrdtest.Module([]byte("license=GPL\x00vermagic=6.12.9 SMP\x00name=good\x00"))})
	p, err := InitrdPart(context.Background(), "i", bytes.NewReader(ok))
	if err != nil || len(p.Parts) != 1 || p.Parts[0].Name != "good" || p.Parts[0].Version != "6.12.9" {
		t.Fatalf("good module: %v %+v", err, p.Parts)
	}
}

// TestManyTinyELFs: 300,000 tiny ELF files (a 1 MiB gzip initrd) took
// 25.6 s and 2.85 GiB and wrote 475 MB of SBOM; at most maxInitrdParts are
// listed now, and the description counts the rest.
func TestManyTinyELFs(t *testing.T) {
	if testing.Short() {
		t.Skip("300,000 files: the long tier")
	}
	const n = 300000
	initrd := initrdtest.GzipStream(func(w io.Writer) {
		hdr := initrdtest.ELFHeader(2)
		for i := range n {
			w.Write(initrdtest.CPIO(initrdtest.Entry{Name: fmt.Sprintf("bin/f%06d", i), Data: hdr})[:0])
			fmt.Fprintf(w, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, 0o100755, 0, 0, 1, 0, len(hdr), 0, 0, 0, 0, 12, 0)
			fmt.Fprintf(w, "bin/f%06d\x00", i) // 110 + 12 bytes: aligned to 4 (2 bytes short)
			w.Write([]byte{0, 0})
			w.Write(hdr)
		}
		w.Write(initrdtest.CPIO())
	})
	start := time.Now()
	var p Part
	var err error
	alloc := allocated(func() { p, err = InitrdPart(context.Background(), "initrd.img", bytes.NewReader(initrd)) })
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if len(p.Parts) != maxInitrdParts || !strings.Contains(p.Description, fmt.Sprintf("%d more files not inspected", n-maxInitrdParts)) {
		t.Fatalf("%d parts; %s", len(p.Parts), p.Description)
	}
	t.Logf("%d KiB initrd of %d ELF files: %d listed in %v, %d MiB allocated; %s", len(initrd)>>10, n, len(p.Parts), took.Round(time.Millisecond), alloc>>20, p.Description)
}

// TestSegmentAfterCompressed: Linux unpacks a segment that follows a zstd
// or xz one (init/initramfs.c goes on after the decompressor's end); so
// does the reader (the decoders read ahead, so the segment's end is found
// by walking its frames or blocks).
func TestSegmentAfterCompressed(t *testing.T) {
	first := cpioOf(t, makeSmallTree(t))
	mod := initrdtest.CPIO(initrdtest.Entry{Name: "lib/modules/after.ko", Data: initrdtest.Module([]byte("name=after\x00vermagic=6.12.9 SMP\x00"))})
	for _, c := range []struct {
		tool string
		args []string
	}{{"zstd", []string{"-q", "-19"}}, {"zstd", []string{"-q", "--no-check"}}, {"xz", []string{"--check=crc32", "-9"}}, {"xz", []string{"--check=sha256", "-0"}}, {"xz", []string{"--check=none", "-T2", "--block-size=1KiB"}}} {
		name := c.tool + " " + strings.Join(c.args, " ")
		t.Run(name, func(t *testing.T) {
			// Two compressed segments of the same kind, zero padding, then
			// an uncompressed one.
			initrd := append(compress(t, c.tool, first, c.args...), compress(t, c.tool, first, c.args...)...)
			initrd = append(append(initrd, 0, 0, 0, 0), mod...)
			p, err := InitrdPart(context.Background(), "initrd.img", bytes.NewReader(initrd))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Parts) != 1 || p.Parts[0].Name != "after" {
				t.Fatalf("%+v", p)
			}
		})
	}
}

// TestDeclaredWindows: a zstd frame or an xz block that declares a history
// larger than maxDecoderWindow is refused before it is decoded.
func TestDeclaredWindows(t *testing.T) {
	cpio := cpioOf(t, makeSmallTree(t))
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"zstd 2 GiB window": {compress(t, "zstd", cpio, "-q", "--long=31", "--ultra", "-22"), "window"},
		"xz 1 GiB dict":     {compress(t, "xz", cpio, "--lzma2=dict=1GiB"), "LZMA2 dictionary"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := InitrdPart(context.Background(), "initrd.img", bytes.NewReader(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "MiB cvmkit decodes with") {
				t.Fatalf("%v", err)
			}
		})
	}
}
