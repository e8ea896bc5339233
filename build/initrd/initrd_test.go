package initrd

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

func sample() []Entry {
	return []Entry{
		{Name: "sbin/init", Mode: 0o755, Data: []byte("#!/bin/sh\necho hello\n")},
		{Name: "sbin", Mode: fs.ModeDir | 0o755},
		{Name: "lib/modules/dm-verity.ko", Mode: 0o644, Data: bytes.Repeat([]byte{0x7f}, 5000)},
		{Name: "lib", Mode: fs.ModeDir | 0o755},
		{Name: "lib/modules", Mode: fs.ModeDir | 0o755},
		{Name: "init", Mode: fs.ModeSymlink | 0o777, Target: "sbin/init"},
		{Name: "dev", Mode: fs.ModeDir | 0o755},
		{Name: "dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 5, Minor: 1},
		{Name: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Name: "empty", Mode: 0o600},
	}
}

// TestDeterministic: the order entries are given in does not matter.
func TestDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	es := sample()
	if err := Write(&a, es, 1700000000); err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	Write(&b, es, 1700000000)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the archive depends on the entry order")
	}
	for _, kind := range []string{"zstd", "gzip"} {
		var c1, c2 bytes.Buffer
		for _, c := range []*bytes.Buffer{&c1, &c2} {
			w, _ := Compress(c, kind)
			w.Write(a.Bytes())
			w.Close()
		}
		if !bytes.Equal(c1.Bytes(), c2.Bytes()) {
			t.Fatalf("%s output differs between runs", kind)
		}
	}
}

// TestRealTools: GNU cpio lists and extracts the archive with the modes,
// link and device intact; zstd and gzip accept the compressed forms.
func TestRealTools(t *testing.T) {
	cpio := testenv.Tool(t, "cpio", "apt-get install cpio")
	zstd := testenv.Tool(t, "zstd", "apt-get install zstd")
	gzip := testenv.Tool(t, "gzip", "apt-get install gzip")
	dir := t.TempDir()
	var raw bytes.Buffer
	if err := Write(&raw, sample(), 1700000000); err != nil {
		t.Fatal(err)
	}
	for kind, tool := range map[string]string{"zstd": zstd, "gzip": gzip} {
		var c bytes.Buffer
		w, _ := Compress(&c, kind)
		w.Write(raw.Bytes())
		w.Close()
		p := filepath.Join(dir, "initrd."+kind)
		os.WriteFile(p, c.Bytes(), 0o644)
		out, err := exec.Command(tool, "-dc", p).Output()
		if err != nil || !bytes.Equal(out, raw.Bytes()) {
			t.Fatalf("%s -dc: %v", kind, err)
		}
	}
	cmd := exec.Command(cpio, "-itv", "--quiet")
	cmd.Stdin = bytes.NewReader(raw.Bytes())
	list, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -itv: %v", err)
	}
	for _, want := range []string{"-rwxr-xr-x   1 root     root           21 Nov 14  2023 sbin/init", "lrwxrwxrwx   1 root     root            9 Nov 14  2023 init -> sbin/init",
		"crw-------   1 root     root       5,   1 Nov 14  2023 dev/console", "drwxrwxrwt   2 root     root            0 Nov 14  2023 tmp"} {
		if !strings.Contains(string(list), want) {
			t.Errorf("cpio -itv lacks %q:\n%s", want, list)
		}
	}
	if os.Getuid() == 0 {
		x := filepath.Join(dir, "x")
		os.Mkdir(x, 0o755)
		cmd := exec.Command(cpio, "-idm", "--quiet", "--no-absolute-filenames")
		cmd.Dir, cmd.Stdin = x, bytes.NewReader(raw.Bytes())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cpio -idm: %v %s", err, out)
		}
		b, _ := os.ReadFile(filepath.Join(x, "lib/modules/dm-verity.ko"))
		fi, _ := os.Lstat(filepath.Join(x, "tmp"))
		if len(b) != 5000 || fi.Mode()&fs.ModeSticky == 0 {
			t.Errorf("extracted tree differs: %d bytes, tmp mode %v", len(b), fi.Mode())
		}
	}
}

func TestErrors(t *testing.T) {
	for name, es := range map[string][]Entry{
		"absolute":       {{Name: "/init", Mode: 0o755}},
		"dotdot":         {{Name: "../init", Mode: 0o755}},
		"duplicate":      {{Name: "a", Mode: 0o644}, {Name: "a", Mode: 0o644}},
		"missing folder": {{Name: "a/b", Mode: 0o644}},
		"socket":         {{Name: "s", Mode: fs.ModeSocket}},
		"empty symlink":  {{Name: "l", Mode: fs.ModeSymlink}},
	} {
		if err := Write(&bytes.Buffer{}, es, 0); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := Compress(&bytes.Buffer{}, "lz4"); err == nil {
		t.Error("lz4 accepted")
	}
}
