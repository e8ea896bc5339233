package build

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/build/initrd"
	"github.com/cvmkit/cvmkit/build/rootfs"
	"github.com/cvmkit/cvmkit/build/verity"
	"github.com/cvmkit/cvmkit/internal/testenv"
)

func goBuild(t *testing.T, pkg, out string) []byte {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	b, _ := os.ReadFile(out)
	return b
}

func bytesNode(p string, mode fs.FileMode, b []byte) rootfs.Node {
	return rootfs.Node{Path: p, Mode: mode, Size: int64(len(b)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// bootImage is a root image with its appended verity tree and the
// parameters cvmkit-init reads.
type bootImage struct {
	path   string
	data   int64 // bytes of EROFS data
	verity verity.Result
	salt   []byte
}

// TestBoot boots Debian's kernel in QEMU (TCG) with cvmkit-init in a cvmkit
// initrd and a cvmkit EROFS root behind dm-verity: the guest prints the
// marker read from the verified root; with one flipped byte in the root
// image the kernel reports a verity failure; with a wrong root hash the root
// is refused.
func TestBoot(t *testing.T) {
	qemu := testenv.Tool(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	cache := filepath.Join(testenv.RepoRoot(t), "examples", "quickstart", "cache")
	order, err := os.ReadFile(filepath.Join(cache, "modules", "load.order"))
	if err != nil {
		testenv.Tool(t, "cvmkit-quickstart-modules", "examples/quickstart/fetch-inputs.sh (make test runs it)")
	}
	dir := t.TempDir()
	initBin := goBuild(t, "./cmd/cvmkit-init", filepath.Join(dir, "cvmkit-init"))
	markerBin := goBuild(t, "./build/testdata/markerinit", filepath.Join(dir, "markerinit"))

	// The root filesystem: the target init, the marker, some data.
	big := make([]byte, 300<<10)
	rand.Read(big)
	nodes := []rootfs.Node{
		{Path: "sbin", Mode: fs.ModeDir | 0o755}, bytesNode("sbin/init", 0o755, markerBin),
		{Path: "etc", Mode: fs.ModeDir | 0o755}, bytesNode("etc/cvmkit-marker", 0o644, []byte("read from the verified root")),
		{Path: "data", Mode: fs.ModeDir | 0o755}, bytesNode("data/big.bin", 0o644, big),
		{Path: "dev", Mode: fs.ModeDir | 0o755}, {Path: "proc", Mode: fs.ModeDir | 0o755}, {Path: "sys", Mode: fs.ModeDir | 0o755},
	}
	var img bootImage
	img.path = filepath.Join(dir, "root.img")
	f, _ := os.Create(img.path)
	if err := rootfs.WriteEROFS(f, nodes, time.Unix(1700000000, 0), dir); err != nil {
		t.Fatal(err)
	}
	img.data, _ = f.Seek(0, io.SeekEnd)
	f.Seek(0, io.SeekStart)
	img.salt = verity.DeriveSalt([]byte("boot test"))
	img.verity, err = verity.Build(f, img.data, verity.Params{Salt: img.salt, UUID: verity.DeriveUUID([]byte("boot test")), Superblock: true}, f, img.data)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	// The initrd: cvmkit-init, /dev/console, the modules and their order.
	entries := []initrd.Entry{
		{Name: "init", Mode: 0o755, Data: initBin},
		{Name: "dev", Mode: fs.ModeDir | 0o755},
		{Name: "dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 5, Minor: 1},
		{Name: "lib", Mode: fs.ModeDir | 0o755}, {Name: "lib/modules", Mode: fs.ModeDir | 0o755},
	}
	var load []string
	for _, m := range strings.Fields(string(order)) {
		b, err := os.ReadFile(filepath.Join(cache, "modules", m))
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, initrd.Entry{Name: "lib/modules/" + m, Mode: 0o644, Data: b})
		load = append(load, "/lib/modules/"+m)
	}
	entries = append(entries, initrd.Entry{Name: "lib/modules/cvmkit.load", Mode: 0o644, Data: []byte(strings.Join(load, "\n") + "\n")})
	var raw bytes.Buffer
	if err := initrd.Write(&raw, entries, 1700000000); err != nil {
		t.Fatal(err)
	}
	initrdPath := filepath.Join(dir, "initrd.zst")
	of, _ := os.Create(initrdPath)
	zw, _ := initrd.Compress(of, "zstd")
	zw.Write(raw.Bytes())
	zw.Close()
	of.Close()

	boot := func(name, imgPath, rootHash string) string {
		t.Helper()
		cmdline := fmt.Sprintf("console=ttyS0 panic=-1 quiet cvmkit.root=/dev/vda cvmkit.verity=%s,%s,%d,%d",
			rootHash, hex.EncodeToString(img.salt), img.verity.DataBlocks, img.verity.DataBlocks+img.verity.HashStartBlock)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
			"-kernel", filepath.Join(cache, "vmlinuz"), "-initrd", initrdPath, "-append", cmdline,
			"-drive", "file="+imgPath+",if=virtio,format=raw,readonly=on")
		out, _ := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("%s: QEMU timed out; output:\n%s", name, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "CVMKIT") || strings.Contains(l, "cvmkit-init") || strings.Contains(l, "verity") || strings.Contains(l, "erofs") {
				t.Logf("%s: %s", name, strings.TrimSpace(l))
			}
		}
		return string(out)
	}
	root := hex.EncodeToString(img.verity.RootHash[:])

	out := boot("clean", img.path, root)
	if !strings.Contains(out, "CVMKIT-MARKER: read from the verified root") || !strings.Contains(out, "CVMKIT-READ: files=1 errors=0") {
		t.Fatalf("clean boot did not print the marker:\n%s", out)
	}

	// One flipped byte inside data/big.bin's blocks: the guest's read of it
	// fails with the kernel's verity error.
	bad := filepath.Join(dir, "bad.img")
	b, _ := os.ReadFile(img.path)
	at := bytes.Index(b, big[100<<10:100<<10+64])
	if at < 0 {
		t.Fatal("big.bin's contents not found in the image")
	}
	b[at] ^= 0xff
	os.WriteFile(bad, b, 0o644)
	out = boot("flipped byte", bad, root)
	if !strings.Contains(out, "verity") || !strings.Contains(out, "is corrupted") || !strings.Contains(out, "CVMKIT-READ-ERROR: /data/big.bin") {
		t.Fatalf("a flipped byte did not give a verity failure in the guest:\n%s", out)
	}

	// A wrong root hash: the root is refused.
	wrong := strings.Repeat("0", 64)
	out = boot("wrong root hash", img.path, wrong)
	if strings.Contains(out, "CVMKIT-MARKER") || !strings.Contains(out, "cvmkit-init: error") {
		t.Fatalf("a wrong root hash was not refused:\n%s", out)
	}
}
