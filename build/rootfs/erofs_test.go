package rootfs

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

func file(p string, mode fs.FileMode, data string) Node {
	return Node{Path: p, Mode: mode, Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(data)), nil
	}}
}

func sampleTree() []Node {
	big := strings.Repeat("0123456789abcdef", 5000) // 80000 bytes: several blocks
	return []Node{
		{Path: "etc", Mode: fs.ModeDir | 0o755},
		file("etc/hostname", 0o644, "cvm\n"),
		file("etc/shadow", 0o640, "root:*:1::::::\n"),
		{Path: "usr", Mode: fs.ModeDir | 0o755},
		{Path: "usr/bin", Mode: fs.ModeDir | 0o755},
		file("usr/bin/su", fs.ModeSetuid|0o755, "ELF pretend"),
		file("usr/bin/big", 0o755, big),
		{Path: "usr/bin/sh", Mode: fs.ModeSymlink | 0o777, Target: "busybox"},
		{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "dev", Mode: fs.ModeDir | 0o755},
		{Path: "dev/null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666, Major: 1, Minor: 3},
		{Path: "srv", Mode: fs.ModeDir | 0o750, UID: 1000, GID: 1000, Xattrs: map[string]string{"user.cvmkit": "yes"}},
		file("empty", 0o600, ""),
	}
}

func build(t *testing.T, nodes []Node) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "root.erofs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteEROFS(f, nodes, time.Unix(1700000000, 0), t.TempDir()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, _ := os.ReadFile(p)
	return b
}

func TestDeterministic(t *testing.T) {
	nodes := sampleTree()
	a := build(t, nodes)
	for i, j := 0, len(nodes)-1; i < j; i, j = i+1, j-1 {
		nodes[i], nodes[j] = nodes[j], nodes[i]
	}
	if b := build(t, nodes); !bytes.Equal(a, b) {
		t.Fatal("the image depends on the order of the nodes")
	}
	if len(a)%4096 != 0 {
		t.Fatalf("image size %d is not whole blocks", len(a))
	}
}

// TestFsckErofs: erofs-utils' fsck.erofs checks the image and extracts it;
// contents, symlinks and permissions come back as built.
func TestFsckErofs(t *testing.T) {
	fsck := testenv.Tool(t, "fsck.erofs", "apt-get install erofs-utils")
	img := filepath.Join(t.TempDir(), "root.erofs")
	os.WriteFile(img, build(t, sampleTree()), 0o644)
	if out, err := exec.Command(fsck, img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs: %v\n%s", err, out)
	}
	x := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command(fsck, "--extract="+x, img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs --extract: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(x, "usr/bin/big")); len(b) != 80000 || !strings.HasPrefix(string(b), "0123456789abcdef") {
		t.Errorf("usr/bin/big: %d bytes", len(b))
	}
	if b, _ := os.ReadFile(filepath.Join(x, "etc/hostname")); string(b) != "cvm\n" {
		t.Errorf("etc/hostname = %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(x, "usr/bin/sh")); l != "busybox" {
		t.Errorf("symlink -> %q", l)
	}
	for p, want := range map[string]fs.FileMode{"etc/shadow": 0o640, "srv": 0o750, "empty": 0o600} {
		if fi, err := os.Lstat(filepath.Join(x, p)); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", p, fi.Mode().Perm(), want, err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(x, "dev/null")); err == nil && fi.Mode()&fs.ModeCharDevice == 0 {
		t.Errorf("dev/null is %v", fi.Mode())
	}
}

func TestErrors(t *testing.T) {
	for name, nodes := range map[string][]Node{
		"absolute":      {{Path: "/etc", Mode: fs.ModeDir | 0o755}},
		"dotdot":        {{Path: "../x", Mode: 0o644}},
		"no parent":     {{Path: "a/b", Mode: 0o644}},
		"duplicate":     {{Path: "a", Mode: 0o644}, {Path: "a", Mode: 0o644}},
		"socket":        {{Path: "s", Mode: fs.ModeSocket}},
		"size mismatch": {{Path: "f", Mode: 0o644, Size: 10, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x")), nil }}},
	} {
		f, _ := os.Create(filepath.Join(t.TempDir(), "x"))
		if err := WriteEROFS(f, nodes, time.Unix(0, 0), t.TempDir()); err == nil {
			t.Errorf("%s accepted", name)
		}
		f.Close()
	}
}
