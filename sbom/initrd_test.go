package sbom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/sbom/internal/initrdtest"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// initrdTree is a small initrd's content made with real tools: cvmkit's
// own init (a Go program), kernel modules compiled by gcc with a .modinfo
// section (plain, xz- and zstd-compressed, as distributions ship them), a C
// executable, a shared library and a configuration file.
type initrdTree struct {
	dir  string
	want map[string]string // path inside → "kind name version"
}

func makeInitrdTree(t *testing.T) *initrdTree {
	t.Helper()
	gcc := testenv.Tool(t, "gcc", "apt-get install gcc")
	xz := testenv.Tool(t, "xz", "apt-get install xz-utils")
	zstd := testenv.Tool(t, "zstd", "apt-get install zstd")
	dir := filepath.Join(t.TempDir(), "tree")
	src := t.TempDir()
	for _, d := range []string{"lib/modules", "bin", "lib", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	testenv.GoBuild(t, "./cmd/cvmkit-init", filepath.Join(dir, "init"))
	// A module object: what modpost leaves in .modinfo (MODULE_INFO
	// strings, NUL-separated).
	for _, m := range []struct{ name, extra string }{{"virtio_demo", ""}, {"dm_demo", `"version=2.1\0"`}, {"xz_demo", ""}} {
		c := filepath.Join(src, m.name+".c")
		body := fmt.Sprintf("__attribute__((section(\".modinfo\"), used)) static const char info[] = \"license=GPL\\0description=demo module\\0\" %s \"vermagic=6.12.9-cvmkit SMP preempt mod_unload\\0name=%s\";\nint init_module(void) { return 0; }\n", m.extra, m.name)
		if err := os.WriteFile(c, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		run(gcc, "-c", "-o", filepath.Join(dir, "lib/modules", m.name+".ko"), c)
	}
	run(xz, "--check=crc32", filepath.Join(dir, "lib/modules/xz_demo.ko"))
	run(zstd, "-q", "--rm", filepath.Join(dir, "lib/modules/dm_demo.ko"))
	hello := filepath.Join(src, "hello.c")
	os.WriteFile(hello, []byte("int main(void) { return 0; }\n"), 0o644)
	run(gcc, "-o", filepath.Join(dir, "bin/hello"), hello)
	lib := filepath.Join(src, "lib.c")
	os.WriteFile(lib, []byte("int answer(void) { return 42; }\n"), 0o644)
	run(gcc, "-shared", "-fPIC", "-o", filepath.Join(dir, "lib/libanswer.so"), lib)
	os.WriteFile(filepath.Join(dir, "etc/modules.conf"), []byte("virtio_demo\n"), 0o644)
	return &initrdTree{dir: dir, want: map[string]string{
		"/init":                       "program github.com/cvmkit/cvmkit/cmd/cvmkit-init ",
		"/lib/modules/virtio_demo.ko": "kernel-module virtio_demo 6.12.9-cvmkit",
		"/lib/modules/dm_demo.ko.zst": "kernel-module dm_demo 2.1",
		"/lib/modules/xz_demo.ko.xz":  "kernel-module xz_demo 6.12.9-cvmkit",
		"/bin/hello":                  "program hello ",
		"/lib/libanswer.so":           "library libanswer.so ",
	}}
}

// cpioOf archives a tree with GNU cpio (newc), as initramfs tools do.
func cpioOf(t *testing.T, dir string) []byte {
	t.Helper()
	cpio := testenv.Tool(t, "cpio", "apt-get install cpio")
	cmd := exec.Command("sh", "-c", "find . | LC_ALL=C sort | "+cpio+" --quiet -o -H newc")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio: %v", err)
	}
	return out
}

// compress pipes b through a real compressor.
func compress(t *testing.T, tool string, b []byte, args ...string) []byte {
	t.Helper()
	p := testenv.Tool(t, tool, "apt-get install "+tool)
	cmd := exec.Command(p, args...)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}

func checkParts(t *testing.T, tree *initrdTree, p Part) {
	t.Helper()
	got := map[string]string{}
	for _, c := range p.Parts {
		got[c.File] = fmt.Sprintf("%s %s %s", c.Kind, c.Name, c.Version)
		data, err := os.ReadFile(filepath.Join(tree.dir, c.File))
		if err != nil {
			t.Fatalf("%s listed but not in the tree: %v", c.File, err)
		}
		if sum := sha256.Sum256(data); c.SHA256 != hex.EncodeToString(sum[:]) || c.Size != int64(len(data)) {
			t.Errorf("%s: digest %s size %d, want the file's", c.File, c.SHA256, c.Size)
		}
	}
	for f, w := range tree.want {
		if got[f] != w {
			t.Errorf("%s: got %q, want %q", f, got[f], w)
		}
	}
	if len(got) != len(tree.want) {
		t.Errorf("listed %v, want %v", got, tree.want)
	}
	if !strings.Contains(p.Description, "1 other files") {
		t.Errorf("description %q does not count the configuration file", p.Description)
	}
}

// TestInitrdPart reads the same tree as every form Linux unpacks: plain
// cpio, gzip, zstd, xz, and an uncompressed early cpio (as microcode is
// shipped) followed by zero padding and a compressed main archive.
func TestInitrdPart(t *testing.T) {
	tree := makeInitrdTree(t)
	archive := cpioOf(t, tree.dir)
	early := cpioOf(t, t.TempDir()) // an empty early archive: just its trailer
	pad := make([]byte, (512-len(early)%512)%512)
	forms := map[string][]byte{
		"cpio":       archive,
		"gzip":       compress(t, "gzip", archive, "-9", "-n"),
		"zstd":       compress(t, "zstd", archive, "-q", "-19"),
		"xz":         compress(t, "xz", archive, "--check=crc32"),
		"early+zstd": append(append(append([]byte{}, early...), pad...), compress(t, "zstd", archive, "-q")...),
		"early+gzip": append(append(append([]byte{}, early...), pad...), compress(t, "gzip", archive, "-n")...),
	}
	for name, b := range forms {
		t.Run(name, func(t *testing.T) {
			p, err := InitrdPart(context.Background(), "initrd.img", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if p.Kind != Initrd || p.SHA256 != hex.EncodeToString(sum[:]) || p.Size != int64(len(b)) {
				t.Fatalf("initrd part %+v, want the whole file's digest", p)
			}
			checkParts(t, tree, p)
		})
	}

	// A compression Linux unpacks but cvmkit does not read: listed by
	// digest, with a note, and no contents.
	lz4 := compress(t, "lz4", archive, "-l", "-q")
	p, err := InitrdPart(context.Background(), "initrd.img", bytes.NewReader(lz4))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Parts) != 0 || !strings.Contains(p.Description, "lz4-compressed segment's contents are not listed") {
		t.Fatalf("lz4 initrd: %+v", p)
	}
}

// TestInitrdRefusals: malformed initrds get an error naming the file and
// what is wrong; a cancelled context stops the reading.
func TestInitrdRefusals(t *testing.T) {
	good := cpioOf(t, makeSmallTree(t))
	hdr := func(nameSize, fileSize int) []byte {
		return []byte(fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, 0o100644, 0, 0, 1, 0, fileSize, 0, 0, 0, 0, nameSize, 0))
	}
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"truncated":    {good[:len(good)/2], "unexpected EOF"},
		"garbage":      {[]byte("hello, world"), "neither a newc cpio archive"},
		"bad hex":      {append([]byte("070701zzzzzzzz"), make([]byte, 200)...), "not 8 hex digits"},
		"huge name":    {append(hdr(1<<20, 0), make([]byte, 64)...), "name size 1048576"},
		"no NUL":       {append(hdr(4, 0), []byte("abcd")...), "not NUL-terminated"},
		"short data":   {append(append(hdr(2, 200<<20), 'x', 0), make([]byte, 1000)...), "unexpected EOF"},
		"bad gzip":     {[]byte{0x1f, 0x8b, 9, 9, 9}, "gzip segment"},
		"zstd of junk": {compress(t, "zstd", []byte("not a cpio archive at all"), "-q"), "not a newc cpio archive"},
		"no trailer":   {good[:bytes.Index(good, []byte("TRAILER!!!"))-110], "unexpected EOF"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := InitrdPart(context.Background(), "bad.img", bytes.NewReader(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.img") {
				t.Fatalf("got %v, want an error naming bad.img with %q", err, c.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := InitrdPart(ctx, "x", bytes.NewReader(compress(t, "zstd", good, "-q"))); err == nil {
		t.Fatal("a cancelled context did not stop the reading")
	}
}

func makeSmallTree(t *testing.T) string {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/hostname"), []byte("guest\n"), 0o644)
	return dir
}

// FuzzInitrdPart: no input makes the reader panic, allocate beyond its
// bounds or run long (each byte is read a bounded number of times).
func FuzzInitrdPart(f *testing.F) {
	f.Add([]byte("070701"))
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, 0o100644, 0, 0, 1, 0, 4, 0, 0, 0, 0, 6, 0)
	f.Add([]byte(hdr + "a.ko\x00\x00\x7fELF"))
	f.Add(append([]byte(hdr+"x\x00\x00\x00\x00\x00"), []byte("070701")...))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3})
	// Real compressed segments (Go's encoders) followed by another
	// segment, and a module with a compressed .modinfo.
	mod := initrdtest.CPIO(initrdtest.Entry{Name: "m.ko", Data: initrdtest.Module([]byte("name=m\x00vermagic=6.12 SMP\x00"))})
	var zb, xb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	zw.Write(mod)
	zw.Close()
	xw, _ := xz.NewWriter(&xb)
	xw.Write(mod)
	xw.Close()
	f.Add(append(zb.Bytes(), mod...))
	f.Add(append(append(xb.Bytes(), 0, 0, 0, 0), mod...))
	f.Add(initrdtest.Gzip(initrdtest.CPIO(initrdtest.Entry{Name: "z.ko", Data: initrdtest.CompressedModule(initrdtest.ZlibZeros(4<<10), 1<<31)})))
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p, err := InitrdPart(ctx, "f.img", bytes.NewReader(b))
		if err == nil && p.Size != int64(len(b)) {
			t.Fatalf("size %d, file %d", p.Size, len(b))
		}
	})
}

// FuzzIdentify: any bytes inside an initrd, named as a module or not.
func FuzzIdentify(f *testing.F) {
	f.Add("/lib/modules/a.ko", []byte("\x7fELF\x02\x01\x01"))
	f.Add("/lib/modules/a.ko.zst", []byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Add("/lib/modules/a.ko.xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0})
	f.Add("/lib/modules/a.ko", initrdtest.Module([]byte("name=a\x00vermagic=6.12 SMP\x00")))
	f.Add("/lib/modules/b.ko", initrdtest.CompressedModule(initrdtest.ZlibZeros(1<<10), 1<<31))
	f.Add("/bin/x", initrdtest.ELFHeader(2))
	f.Fuzz(func(t *testing.T, name string, b []byte) {
		sp := &spool{}
		sp.Write(b)
		defer sp.Close()
		_, _, _ = identify(context.Background(), name, sp, "")
	})
}
