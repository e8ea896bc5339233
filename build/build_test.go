package build

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/build/tree"
	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type tarEntry struct {
	h    tar.Header
	data string
}

func tarBytes(t *testing.T, es ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := e.h
		h.Size = int64(len(e.data))
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.data)
	}
	tw.Close()
	return buf.Bytes()
}

// writeLayout writes an OCI layout holding one image with the given tar
// layers (gzip-compressed) and returns the manifest digest.
func writeLayout(t *testing.T, dir string, layers ...[]byte) string {
	t.Helper()
	img := empty.Image
	for _, l := range layers {
		l := l
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// writeRelease writes a release folder exercising every kind of input: an
// OCI layout base (setuid, sticky, hardlink, xattr, whiteout, opaque
// folder), a local folder base, a file and a folder overlay, a kernel and
// two modules (contents the build does not parse), and returns the config.
func writeRelease(t *testing.T, dir, verityPlacement, extra string) string {
	t.Helper()
	l1 := tarBytes(t,
		tarEntry{h: tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}},
		tarEntry{h: tar.Header{Name: "bin/tool", Mode: 0o4755}, data: "setuid tool"},
		tarEntry{h: tar.Header{Name: "bin/tool-link", Typeflag: tar.TypeLink, Linkname: "bin/tool"}},
		tarEntry{h: tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}},
		tarEntry{h: tar.Header{Name: "etc/old", Mode: 0o644}, data: "removed by the next layer"},
		tarEntry{h: tar.Header{Name: "opt/app/stale", Mode: 0o644}, data: "hidden by an opaque folder"},
		tarEntry{h: tar.Header{Name: "etc/labelled", PAXRecords: map[string]string{"SCHILY.xattr.user.cvmkit": "label"}}, data: "with an xattr"},
	)
	l2 := tarBytes(t,
		tarEntry{h: tar.Header{Name: "etc/.wh.old"}},
		tarEntry{h: tar.Header{Name: "opt/app/.wh..wh..opq"}},
		tarEntry{h: tar.Header{Name: "opt/app/fresh", Mode: 0o2755}, data: "setgid"},
		tarEntry{h: tar.Header{Name: "usr/lib/os-release"}, data: "ID=cvmkit-test\n"},
		tarEntry{h: tar.Header{Name: "etc/os-release", Typeflag: tar.TypeSymlink, Linkname: "../usr/lib/os-release"}},
	)
	digest := writeLayout(t, filepath.Join(dir, "base-layout"), l1, l2)
	for p, data := range map[string]string{
		"root/etc/hostname": "cvm\n", "root/srv/model/README": "weights go here\n",
		"overlay/app.conf": "port = 8443\n", "overlay-dir/a/b.txt": "b\n",
		"kernel/bzImage": "not a real kernel: the build copies it", "modules/dm-mod.ko": "mod 1", "modules/dm-verity.ko": "mod 2",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644)
	}
	os.Symlink("hostname", filepath.Join(dir, "root/etc/hostname.link"))
	cfg := fmt.Sprintf(`apiVersion: cvmkit.dev/v1alpha1
kind: Release
metadata: {name: repro, version: 2.0.0}
sourceDateEpoch: 1764201600
image:
  base:
    - layout: base-layout
      digest: %s
    - dir: root
  overlays:
    - {src: overlay/app.conf, dst: /etc/app/app.conf, mode: "0600", uid: 1000, gid: 1000}
    - {src: overlay-dir, dst: /opt/extra}
  kernel:
    path: kernel/bzImage
    digest: %s
  initrd:
    init:
      target: /bin/tool
      compression: gzip
      modules:
        - {path: modules/dm-mod.ko, digest: %s}
        - {path: modules/dm-verity.ko, digest: %s}
  cmdline: "console=ttyS0 {{.Root}} roothash={{.RootHash}}"
  rootfs:
    verity: %s
%s`, digest, "sha256:"+testenv.FileSHA256(t, filepath.Join(dir, "kernel/bzImage")), "sha256:"+testenv.FileSHA256(t, filepath.Join(dir, "modules/dm-mod.ko")),
		"sha256:"+testenv.FileSHA256(t, filepath.Join(dir, "modules/dm-verity.ko")), verityPlacement, extra)
	p := filepath.Join(dir, "cvmkit.yaml")
	os.WriteFile(p, []byte(cfg), 0o644)
	return p
}

func load(t *testing.T, p string) *config.Config {
	t.Helper()
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var fakeInit = []byte("#!/bin/sh\n# stands in for cvmkit-init where nothing boots\n")

// TestBuildOutputsWithRealTools checks a built image with the real tools:
// fsck.erofs passes and its extraction holds the flattened tree (modes,
// owners, links, contents, whiteouts applied); veritysetup verify accepts
// the root hash for both placements and rejects a flipped byte; cpio and
// gzip read the initrd.
func TestBuildOutputsWithRealTools(t *testing.T) {
	fsck := testenv.Tool(t, "fsck.erofs", "apt-get install erofs-utils")
	dump := testenv.Tool(t, "dump.erofs", "apt-get install erofs-utils")
	vs := testenv.Tool(t, "veritysetup", "apt-get install cryptsetup-bin")
	cpio := testenv.Tool(t, "cpio", "apt-get install cpio")
	for _, placement := range []string{"appended", "separate"} {
		t.Run(placement, func(t *testing.T) {
			dir := t.TempDir()
			c := load(t, writeRelease(t, dir, placement, ""))
			out := filepath.Join(dir, "out")
			res, err := Build(context.Background(), c, Options{OutDir: out, Epoch: time.Unix(1764201600, 0), InitBinary: fakeInit, Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			v := res.Lock.Verity
			img := filepath.Join(out, RootImageName)
			hashFile, hashOffset := img, v.HashOffset
			if placement == "separate" {
				hashFile = filepath.Join(out, HashTreeName)
			}
			run := func(name string, args ...string) (string, error) {
				b, err := exec.Command(name, args...).CombinedOutput()
				return string(b), err
			}
			// EROFS: the data part alone.
			data := filepath.Join(dir, "data.erofs")
			b, _ := os.ReadFile(img)
			os.WriteFile(data, b[:v.DataSize], 0o644)
			ext := filepath.Join(dir, "extract")
			if o, err := run(fsck, "--extract="+ext, "--preserve", data); err != nil {
				t.Fatalf("fsck.erofs: %v\n%s", err, o)
			}
			// Modes as the image stores them: dump.erofs (erofs-utils 1.5)
			// prints only the 0777 bits and extraction as root chowns after
			// chmod, which clears setuid and setgid, so the test takes the
			// inode number from dump.erofs and reads i_mode from the inode
			// (EROFS on-disk format: superblock at 1024, meta_blkaddr at
			// +40; inode at meta_blkaddr*block size + nid*32, i_mode at +4).
			img0, _ := os.ReadFile(data)
			metaBlk := int64(binary.LittleEndian.Uint32(img0[1024+40:]))
			for p, want := range map[string]uint16{
				"bin/tool": 0o104755, "bin/tool-link": 0o104755, "opt/app/fresh": 0o102755, "tmp": 0o041777, "etc/app/app.conf": 0o100600, "etc/labelled": 0o100644,
			} {
				o, err := run(dump, "--path=/"+p, data)
				if err != nil {
					t.Fatalf("dump.erofs %s: %v\n%s", p, err, o)
				}
				m := regexp.MustCompile(`NID: (\d+)`).FindStringSubmatch(o)
				if m == nil {
					t.Fatalf("dump.erofs %s: no NID in\n%s", p, o)
				}
				nid, _ := strconv.ParseInt(m[1], 10, 64)
				if got := binary.LittleEndian.Uint16(img0[metaBlk*4096+nid*32+4:]); got != want {
					t.Errorf("%s: i_mode %#o, want %#o", p, got, want)
				}
				if !strings.Contains(o, fmt.Sprintf("Access: %04o/", want&0o777)) {
					t.Errorf("%s: dump.erofs says\n%s\nwant permissions %04o", p, o, want&0o777)
				}
			}
			if o, _ := run(dump, "--path=/etc/app/app.conf", data); !regexp.MustCompile(`Uid: 1000\s+Gid: 1000`).MatchString(o) {
				t.Errorf("etc/app/app.conf owner: dump.erofs says\n%s", o)
			}
			for p, want := range map[string]string{
				"etc/hostname": "cvm\n", "etc/app/app.conf": "port = 8443\n", "opt/extra/a/b.txt": "b\n", "opt/app/fresh": "setgid",
				"bin/tool-link": "setuid tool", "usr/lib/os-release": "ID=cvmkit-test\n", "srv/model/README": "weights go here\n",
			} {
				if got, err := os.ReadFile(filepath.Join(ext, p)); err != nil || string(got) != want {
					t.Errorf("%s: %q, %v; want %q", p, got, err, want)
				}
			}
			for _, gone := range []string{"etc/old", "opt/app/stale"} {
				if _, err := os.Lstat(filepath.Join(ext, gone)); err == nil {
					t.Errorf("%s survived its whiteout", gone)
				}
			}
			if l, _ := os.Readlink(filepath.Join(ext, "etc/os-release")); l != "../usr/lib/os-release" {
				t.Errorf("etc/os-release links to %q", l)
			}
			// dm-verity.
			verify := func(dataFile string) (string, error) {
				return run(vs, "verify", "--hash-offset", fmt.Sprint(hashOffset), "--data-blocks", fmt.Sprint(v.DataBlocks), dataFile, hashFile, v.RootHash)
			}
			if o, err := verify(img); err != nil {
				t.Fatalf("veritysetup verify: %v\n%s", err, o)
			}
			b[v.DataSize-1] ^= 1
			bad := filepath.Join(dir, "bad.img")
			os.WriteFile(bad, b, 0o644)
			if placement == "appended" {
				hashFile = bad
			}
			if o, err := verify(bad); err == nil {
				t.Fatalf("veritysetup verify accepted a flipped byte:\n%s", o)
			}
			// The initrd.
			list := exec.Command("sh", "-c", "gzip -dc < \"$1\" | \"$2\" -t --quiet", "sh", filepath.Join(out, InitrdName), cpio)
			o, err := list.CombinedOutput()
			if err != nil {
				t.Fatalf("gzip | cpio -t: %v\n%s", err, o)
			}
			if got, want := strings.Fields(string(o)), []string{"dev", "dev/console", "init", "lib", "lib/modules", "lib/modules/cvmkit.load", "lib/modules/dm-mod.ko", "lib/modules/dm-verity.ko", "newroot", "proc", "sys"}; strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("initrd lists %v, want %v", got, want)
			}
			if !strings.Contains(res.Lock.Cmdline, "cvmkit.init=/bin/tool") || !strings.HasSuffix(res.Lock.Cmdline, "roothash="+v.RootHash) {
				t.Errorf("cmdline %q", res.Lock.Cmdline)
			}
		})
	}
}

// TestBuildLock checks the lock against the files it describes.
func TestBuildLock(t *testing.T) {
	dir := t.TempDir()
	c := load(t, writeRelease(t, dir, "appended", ""))
	out := filepath.Join(dir, "out")
	if _, err := Build(context.Background(), c, Options{OutDir: out, Epoch: time.Unix(1764201600, 0), InitBinary: fakeInit, Version: "test"}); err != nil {
		t.Fatal(err)
	}
	l, err := ReadLock(filepath.Join(out, LockName))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Outputs) != 4 { // rootfs.img (with the tree), initrd.img, vmlinuz, cmdline.txt
		t.Fatalf("lock lists %d outputs, want 4", len(l.Outputs))
	}
	for _, o := range l.Outputs {
		got, err := digestFile(filepath.Join(out, o.Name))
		if err != nil || got.SHA256 != o.SHA256 || got.SHA384 != o.SHA384 || got.Size != o.Size {
			t.Errorf("%s: lock says %+v, file is %+v (%v)", o.Name, o, got, err)
		}
	}
	kinds := map[string]bool{}
	for _, in := range l.Inputs {
		kinds[in.Kind] = true
		if !strings.HasPrefix(in.Digest, "sha256:") || len(in.Digest) != 71 {
			t.Errorf("input %s: digest %q", in.Key, in.Digest)
		}
	}
	for _, k := range []string{"layout", "dir", "overlay", "file", "embedded"} {
		if !kinds[k] {
			t.Errorf("no %s input in the lock", k)
		}
	}
	if l.Inputs[0].Kind != "layout" || len(l.Inputs[0].Layers) != 2 {
		t.Errorf("layout input: %+v", l.Inputs[0])
	}
}

// TestBuildErrors: bad inputs fail with the config key and a hint, and
// leave no output folder behind.
func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(t *testing.T, dir string)
		extra string
		want  string
		is    error
	}{
		{name: "hostile layer", edit: func(t *testing.T, dir string) {
			os.RemoveAll(filepath.Join(dir, "base-layout"))
			d := writeLayout(t, filepath.Join(dir, "base-layout"), tarBytes(t, tarEntry{h: tar.Header{Name: "../../etc/passwd"}, data: "x"}))
			rewriteDigest(t, dir, d)
		}, want: `image\.base\[0\]: layer 0`, is: tree.ErrUnsafePath},
		{name: "device node", edit: func(t *testing.T, dir string) {
			os.RemoveAll(filepath.Join(dir, "base-layout"))
			d := writeLayout(t, filepath.Join(dir, "base-layout"), tarBytes(t, tarEntry{h: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8}}))
			rewriteDigest(t, dir, d)
		}, want: `image\.base\[0\]: layer 0`, is: tree.ErrDevice},
		{name: "size bomb", extra: "    limits: {maxFileSize: 10B}\n", want: `image\.base\[0\]: layer 0`, is: tree.ErrLimit},
		{name: "tampered layer blob", edit: func(t *testing.T, dir string) {
			blobs, _ := filepath.Glob(filepath.Join(dir, "base-layout", "blobs", "sha256", "*"))
			for _, b := range blobs {
				if fi, _ := os.Stat(b); fi.Size() > 100 {
					data, _ := os.ReadFile(b)
					if data[0] == 0x1f { // a gzip layer
						data[len(data)-5] ^= 1
						os.WriteFile(b, data, 0o644)
					}
				}
			}
		}, want: "does not match|its descriptor says"},
		{name: "escaping symlink in a folder", edit: func(t *testing.T, dir string) {
			os.Symlink("../../../../etc/shadow", filepath.Join(dir, "root", "etc", "shadow"))
		}, want: "leaves the root filesystem", is: tree.ErrLink},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := writeRelease(t, dir, "appended", tc.extra)
			if tc.edit != nil {
				tc.edit(t, dir)
			}
			c := load(t, p)
			out := filepath.Join(dir, "out")
			_, err := Build(context.Background(), c, Options{OutDir: out, Epoch: time.Unix(0, 0), InitBinary: fakeInit})
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("error: %v; hints %q", err, outcome.Hints(err))
			if ok, _ := regexpMatch(tc.want, err.Error()); !ok {
				t.Errorf("error %q does not match %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if outcome.ExitCode(err) != outcome.Input {
				t.Errorf("exit code %v, want input", outcome.ExitCode(err))
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.Name() == "out" || strings.HasPrefix(e.Name(), ".out") {
					t.Errorf("%s left behind", e.Name())
				}
			}
		})
	}
}

func rewriteDigest(t *testing.T, dir, digest string) {
	p := filepath.Join(dir, "cvmkit.yaml")
	b, _ := os.ReadFile(p)
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "      digest: sha256:") {
			lines[i] = "      digest: " + digest
			break
		}
	}
	os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644)
}

func regexpMatch(pattern, s string) (bool, error) { return regexp.MatchString(pattern, s) }

// TestBuildWithoutInit: with neither an init binary nor initrd.file the
// build stops before writing anything and says how to get one.
func TestBuildWithoutInit(t *testing.T) {
	dir := t.TempDir()
	c := load(t, writeRelease(t, dir, "appended", ""))
	_, err := Build(context.Background(), c, Options{OutDir: filepath.Join(dir, "out")})
	if err == nil || !strings.Contains(err.Error(), "no cvmkit-init binary") || outcome.ExitCode(err) != outcome.Usage ||
		!strings.Contains(strings.Join(outcome.Hints(err), " "), "--init-binary") {
		t.Fatalf("err %v, hints %q", err, outcome.Hints(err))
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("an output folder was left behind")
	}
}

// TestBuildOutputInsideSource: an output folder inside a local source
// folder is refused before anything is written.
func TestBuildOutputInsideSource(t *testing.T) {
	dir := t.TempDir()
	c := load(t, writeRelease(t, dir, "appended", ""))
	out := filepath.Join(dir, "root", "srv", "image")
	_, err := Build(context.Background(), c, Options{OutDir: out, InitBinary: fakeInit})
	if err == nil || !strings.Contains(err.Error(), `inside image.base[1].dir ("root")`) || outcome.ExitCode(err) != outcome.Usage {
		t.Fatalf("err %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "root", "srv"))
	if len(ents) != 1 { // model/
		t.Errorf("the source folder changed: %v", ents)
	}
	// A sibling whose name starts like the source is fine.
	if _, err := Build(context.Background(), c, Options{OutDir: filepath.Join(dir, "rootfs-out"), InitBinary: fakeInit}); err != nil {
		t.Fatal(err)
	}
}
