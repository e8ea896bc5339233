package tree

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/build/rootfs"
	"github.com/cvmkit/cvmkit/internal/testenv"
)

var limits = Limits{MaxFileSize: 1 << 20, MaxTotalSize: 4 << 20, MaxEntries: 1000}

type tf struct {
	name, link string
	typ        byte
	mode       int64
	data       string
	size       int64 // when set, overrides len(data) in the header
}

func layer(files ...tf) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Linkname: f.link, Size: int64(len(f.data)), Format: tar.FormatPAX}
		if f.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if f.size != 0 {
			h.Size = f.size
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := w.WriteHeader(h); err != nil {
			panic(err)
		}
		w.Write([]byte(f.data))
	}
	w.Close()
	return b.Bytes()
}

func paths(t *Tree) string {
	var ps []string
	for _, n := range t.Nodes() {
		ps = append(ps, n.Path)
	}
	return strings.Join(ps, " ")
}

func TestWhiteouts(t *testing.T) {
	tr := New(limits, t.TempDir(), nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tr.ApplyTar("layer0", bytes.NewReader(layer(
		tf{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		tf{name: "etc/a", data: "a"},
		tf{name: "etc/b", data: "b"},
		tf{name: "var/cache/x", data: "x"},
		tf{name: "usr/bin/tool", data: "t", mode: 0o4755},
		tf{name: "usr/bin/tool2", typ: tar.TypeLink, link: "usr/bin/tool"},
	))))
	if got := paths(tr); got != "etc etc/a etc/b usr usr/bin usr/bin/tool usr/bin/tool2 var var/cache var/cache/x" {
		t.Fatalf("layer0: %s", got)
	}
	must(tr.ApplyTar("layer1", bytes.NewReader(layer(
		tf{name: "etc/.wh.a"},
		tf{name: "var/cache/.wh..wh..opq"},
		tf{name: "var/cache/y", data: "y"},
		tf{name: "./etc/c", data: "c"},
	))))
	if got := paths(tr); got != "etc etc/b etc/c usr usr/bin usr/bin/tool usr/bin/tool2 var var/cache var/cache/y" {
		t.Fatalf("layer1: %s", got)
	}
	for _, n := range tr.Nodes() {
		if n.Path == "usr/bin/tool2" && (n.Mode&fs.ModeSetuid == 0 || n.Size != 1) {
			t.Errorf("hardlink copy lost its mode or contents: %+v", n)
		}
	}
}

// TestHostileLayers: each kind of hostile entry is refused with an error
// naming the layer and the entry.
func TestHostileLayers(t *testing.T) {
	cases := []struct {
		name  string
		lower []byte
		upper []byte
		want  error
		msg   string
	}{
		{"dotdot", nil, layer(tf{name: "../../etc/passwd", data: "x"}), ErrUnsafePath, `"..`},
		{"dotdot inside", nil, layer(tf{name: "a/../../b", data: "x"}), ErrUnsafePath, `".."`},
		{"symlink escaping", nil, layer(tf{name: "a/b", typ: tar.TypeSymlink, link: "../../../etc"}), ErrLink, "leaves the root"},
		{"write through a symlink", layer(tf{name: "etc", typ: tar.TypeSymlink, link: "/tmp"}), layer(tf{name: "etc/passwd", data: "x"}), ErrUnsafePath, `parent "etc" is a symlink`},
		{"hardlink to missing", nil, layer(tf{name: "a", typ: tar.TypeLink, link: "nothere"}), ErrLink, "not a regular file"},
		{"hardlink escaping", nil, layer(tf{name: "a", typ: tar.TypeLink, link: "../../etc/shadow"}), ErrLink, `".."`},
		{"hardlink to a folder", layer(tf{name: "d/", typ: tar.TypeDir, mode: 0o755}), layer(tf{name: "a", typ: tar.TypeLink, link: "d"}), ErrLink, "not a regular file"},
		{"char device", nil, layer(tf{name: "dev/mem", typ: tar.TypeChar}), ErrDevice, "device nodes"},
		{"block device", nil, layer(tf{name: "dev/sda", typ: tar.TypeBlock}), ErrDevice, "device nodes"},
		{"duplicate", nil, layer(tf{name: "a", data: "1"}, tf{name: "a", data: "2"}), ErrDuplicate, "twice"},
		{"invalid name", nil, layer(tf{name: "bad\xffname", data: "x"}), ErrUnsafePath, "UTF-8"},
		{"long component", nil, layer(tf{name: strings.Repeat("x", 300), data: "x"}), ErrUnsafePath, "255"},
		{"file too large", nil, layer(tf{name: "big", data: strings.Repeat("x", 2<<20)}), ErrLimit, "maxFileSize"},
		{"tree too large", nil, layer(tf{name: "a", data: strings.Repeat("x", 900<<10)}, tf{name: "b", data: strings.Repeat("x", 900<<10)},
			tf{name: "c", data: strings.Repeat("x", 900<<10)}, tf{name: "d", data: strings.Repeat("x", 900<<10)}, tf{name: "e", data: strings.Repeat("x", 900<<10)}), ErrLimit, "maxTotalSize"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := New(limits, t.TempDir(), nil)
			if c.lower != nil {
				if err := tr.ApplyTar("base", bytes.NewReader(c.lower)); err != nil {
					t.Fatal(err)
				}
			}
			err := tr.ApplyTar("layer-2", bytes.NewReader(c.upper))
			var se *SourceError
			if !errors.Is(err, c.want) || !errors.As(err, &se) || se.Source != "layer-2" || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want %v mentioning %q and naming the layer", err, c.want, c.msg)
			}
		})
	}
	// Too many entries.
	var many []tf
	for i := 0; i < 20; i++ {
		many = append(many, tf{name: strings.Repeat("f", i+1), data: "x"})
	}
	tr := New(Limits{MaxFileSize: 1 << 20, MaxTotalSize: 1 << 20, MaxEntries: 10}, t.TempDir(), nil)
	if err := tr.ApplyTar("l", bytes.NewReader(layer(many...))); !errors.Is(err, ErrLimit) {
		t.Fatalf("entries limit: %v", err)
	}
	// A truncated layer.
	full := layer(tf{name: "a", data: strings.Repeat("x", 10000)})
	if err := New(limits, t.TempDir(), nil).ApplyTar("l", bytes.NewReader(full[:3000])); err == nil {
		t.Fatal("truncated layer accepted")
	}
}

// TestAbsolutePathsSanitised: a leading "/" is dropped (and logged), not
// an escape.
func TestAbsolutePathsSanitised(t *testing.T) {
	tr := New(limits, t.TempDir(), nil)
	if err := tr.ApplyTar("l", bytes.NewReader(layer(tf{name: "/etc/motd", data: "hi"}))); err != nil {
		t.Fatal(err)
	}
	if got := paths(tr); got != "etc etc/motd" {
		t.Fatalf("%s", got)
	}
}

// TestToEROFS: a flattened tree goes into an EROFS image that fsck.erofs
// extracts back to the same files.
func TestToEROFS(t *testing.T) {
	fsck := testenv.Tool(t, "fsck.erofs", "apt-get install erofs-utils")
	host := t.TempDir()
	os.MkdirAll(filepath.Join(host, "srv"), 0o700)
	os.WriteFile(filepath.Join(host, "srv", "app"), []byte("#!/bin/sh\n"), 0o700)
	os.Symlink("app", filepath.Join(host, "srv", "run"))
	tr := New(limits, t.TempDir(), nil)
	if err := tr.ApplyTar("base", bytes.NewReader(layer(tf{name: "etc/os-release", data: "ID=cvmkit\n"}, tf{name: "srv/old", data: "old"}))); err != nil {
		t.Fatal(err)
	}
	if err := tr.AddDir(host); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "root.erofs")
	f, _ := os.Create(img)
	if err := rootfs.WriteEROFS(f, tr.Nodes(), time.Unix(1700000000, 0), t.TempDir()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	x := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command(fsck, "--extract="+x, img).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	for p, want := range map[string]string{"etc/os-release": "ID=cvmkit\n", "srv/app": "#!/bin/sh\n", "srv/old": "old"} {
		if b, _ := os.ReadFile(filepath.Join(x, p)); string(b) != want {
			t.Errorf("%s = %q", p, b)
		}
	}
	if fi, _ := os.Stat(filepath.Join(x, "srv/app")); fi.Mode().Perm() != 0o755 {
		t.Errorf("srv/app mode %v, want the normalised 0755", fi.Mode().Perm())
	}
	if l, _ := os.Readlink(filepath.Join(x, "srv/run")); l != "app" {
		t.Errorf("srv/run -> %q", l)
	}
	var _ io.Reader
}

// TestSourceDigest checks the tree digest against the documented line
// format (docs/image.md), computed here independently, for a folder whose
// files the image reads and for one replaced before it could.
func TestSourceDigest(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "bin"), 0o700)
	os.WriteFile(filepath.Join(src, "bin", "run"), []byte("#!/bin/sh\n"), 0o700)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha"), 0o600)
	os.Symlink("a.txt", filepath.Join(src, "link"))
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	want := "sha256:" + sum(`d 0755 "."`+"\n"+
		`f 0644 "a.txt" 5 `+sum("alpha")+"\n"+
		`d 0755 "bin"`+"\n"+
		`f 0755 "bin/run" 10 `+sum("#!/bin/sh\n")+"\n"+
		`l "link" "a.txt"`+"\n")

	tr := New(Limits{MaxFileSize: 1 << 20, MaxTotalSize: 1 << 20, MaxEntries: 100}, t.TempDir(), nil)
	sd, err := tr.AddAt(src, ".", Owner{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Read every file as the image writer does.
	for _, n := range tr.Nodes() {
		if n.Open != nil {
			rc, _ := n.Open()
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	}
	if got, err := sd.Sum(); err != nil || got != want {
		t.Errorf("digest after the image read the files: %s, %v; want %s", got, err, want)
	}
	// Not read at all (say, replaced by a later layer): hashed at Sum.
	tr2 := New(Limits{MaxFileSize: 1 << 20, MaxTotalSize: 1 << 20, MaxEntries: 100}, t.TempDir(), nil)
	sd2, _ := tr2.AddAt(src, ".", Owner{}, 0)
	if got, err := sd2.Sum(); err != nil || got != want {
		t.Errorf("digest without reads: %s, %v; want %s", got, err, want)
	}
	// Hashed in the background while the image is written (Start), then
	// rewritten before the image is complete: refused at Sum, since the
	// image may hold other bytes than the ones hashed.
	tr4 := New(Limits{MaxFileSize: 1 << 20, MaxTotalSize: 1 << 20, MaxEntries: 100}, t.TempDir(), nil)
	sd4, _ := tr4.AddAt(src, ".", Owner{}, 0)
	sd4.Start(context.Background())
	<-sd4.done // every file hashed, unchanged so far
	soon := time.Now().Add(2 * time.Hour)
	os.Chtimes(filepath.Join(src, "a.txt"), soon, soon)
	if _, err := sd4.Sum(); err == nil || !strings.Contains(err.Error(), "changed while building") {
		t.Errorf("a file changed after it was hashed, before the image was complete: %v", err)
	}
	// A file rewritten after the walk: the digest is refused, not computed
	// over bytes the image may not hold.
	tr3 := New(Limits{MaxFileSize: 1 << 20, MaxTotalSize: 1 << 20, MaxEntries: 100}, t.TempDir(), nil)
	sd3, _ := tr3.AddAt(src, ".", Owner{}, 0)
	later := time.Now().Add(time.Hour)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("omega"), 0o600)
	os.Chtimes(filepath.Join(src, "a.txt"), later, later)
	if _, err := sd3.Sum(); err == nil || !strings.Contains(err.Error(), "changed while building") {
		t.Errorf("a file changed after the walk: %v", err)
	}
	// A file swapped for a symlink after the walk is not followed.
	os.Remove(filepath.Join(src, "a.txt"))
	os.Symlink("/etc/passwd", filepath.Join(src, "a.txt"))
	for _, n := range tr2.Nodes() {
		if n.Path == "a.txt" {
			if _, err := n.Open(); err == nil {
				t.Error("a file replaced by a symlink was opened")
			}
		}
	}
}
