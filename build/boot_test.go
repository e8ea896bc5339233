package build

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/internal/testenv"
)

// quickstartCache is the Debian kernel and its modules fetched by
// examples/quickstart/fetch-inputs.sh.
func quickstartCache(t *testing.T) (cache string, modules []string) {
	cache = filepath.Join(testenv.RepoRoot(t), "examples", "quickstart", "cache")
	order, err := os.ReadFile(filepath.Join(cache, "modules", "load.order"))
	if err != nil {
		testenv.Tool(t, "cvmkit-quickstart-modules", "examples/quickstart/fetch-inputs.sh (make test runs it)")
	}
	return cache, strings.Fields(string(order))
}

// bootConfig writes a release config whose image boots markerinit from a
// cvmkit root filesystem, and loads it.
func bootConfig(t *testing.T, dir, verityPlacement string) *config.Config {
	t.Helper()
	cache, mods := quickstartCache(t)
	root := filepath.Join(dir, "root")
	for _, d := range []string{"sbin", "etc", "data", "dev", "proc", "sys"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	testenv.GoBuild(t, "./build/testdata/markerinit", filepath.Join(root, "sbin", "init"))
	os.WriteFile(filepath.Join(root, "etc", "cvmkit-marker"), []byte("read from the verified root"), 0o644)
	big := make([]byte, 300<<10)
	rand.Read(big)
	os.WriteFile(filepath.Join(root, "data", "big.bin"), big, 0o644)
	kernel := filepath.Join(cache, "vmlinuz")
	var mb strings.Builder
	for _, m := range mods {
		p := filepath.Join(cache, "modules", m)
		fmt.Fprintf(&mb, "        - path: %s\n          digest: %s\n", p, "sha256:"+testenv.FileSHA256(t, p))
	}
	cfg := fmt.Sprintf(`apiVersion: cvmkit.dev/v1alpha1
kind: Release
metadata: {name: boot-test, version: 1.0.0}
image:
  base:
    - dir: root
  kernel:
    path: %s
    digest: %s
  initrd:
    init:
      compression: zstd
      modules:
%s  cmdline: "console=ttyS0 panic=-1 quiet {{.Root}}"
  rootfs:
    verity: %s
`, kernel, "sha256:"+testenv.FileSHA256(t, kernel), mb.String(), verityPlacement)
	p := filepath.Join(dir, "cvmkit.yaml")
	os.WriteFile(p, []byte(cfg), 0o644)
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func initBinary(t *testing.T) []byte {
	return testenv.GoBuild(t, "./cmd/cvmkit-init", filepath.Join(t.TempDir(), "cvmkit-init"))
}

// TestBoot builds an image with Build and boots it: Debian's kernel in
// QEMU (TCG), cvmkit-init from the initrd, the EROFS root behind dm-verity.
// The guest prints the marker read from the verified root; with one flipped
// byte in the root image the kernel reports a verity failure; with a wrong
// root hash on the command line the root is refused. Both hash tree
// placements boot.
func TestBoot(t *testing.T) {
	qemu := testenv.Tool(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	dir := t.TempDir()
	c := bootConfig(t, dir, "appended")
	out := filepath.Join(dir, "out")
	res, err := Build(context.Background(), c, Options{OutDir: out, Epoch: time.Unix(1700000000, 0), InitBinary: initBinary(t)})
	if err != nil {
		t.Fatal(err)
	}

	boot := func(name, cmdline string, drives ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		args := []string{"-accel", "tcg", "-m", "512", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
			"-kernel", filepath.Join(out, KernelName), "-initrd", filepath.Join(out, InitrdName), "-append", cmdline}
		for _, d := range drives {
			args = append(args, "-drive", "file="+d+",if=virtio,format=raw,readonly=on")
		}
		b, _ := exec.CommandContext(ctx, qemu, args...).CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("%s: QEMU timed out; output:\n%s", name, b)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "CVMKIT") || strings.Contains(l, "cvmkit-init") || strings.Contains(l, "verity") {
				t.Logf("%s: %s", name, strings.TrimSpace(l))
			}
		}
		return string(b)
	}
	cmdline := res.Lock.Cmdline
	img := filepath.Join(out, RootImageName)

	got := boot("clean", cmdline, img)
	if !strings.Contains(got, "CVMKIT-MARKER: read from the verified root") || !strings.Contains(got, "CVMKIT-READ: files=1 errors=0") {
		t.Fatalf("clean boot did not print the marker:\n%s", got)
	}

	// One flipped byte inside data/big.bin's blocks.
	big, _ := os.ReadFile(filepath.Join(dir, "root", "data", "big.bin"))
	b, _ := os.ReadFile(img)
	at := strings.Index(string(b), string(big[100<<10:100<<10+64]))
	if at < 0 {
		t.Fatal("big.bin's contents not found in the image")
	}
	b[at] ^= 0xff
	bad := filepath.Join(dir, "bad.img")
	os.WriteFile(bad, b, 0o644)
	got = boot("flipped byte", cmdline, bad)
	if !strings.Contains(got, "verity") || !strings.Contains(got, "is corrupted") || !strings.Contains(got, "CVMKIT-READ-ERROR: /data/big.bin") {
		t.Fatalf("a flipped byte did not give a verity failure in the guest:\n%s", got)
	}

	// A wrong root hash: the root is refused.
	wrong := strings.Replace(cmdline, res.Lock.Verity.RootHash, strings.Repeat("0", 64), 1)
	got = boot("wrong root hash", wrong, img)
	if strings.Contains(got, "CVMKIT-MARKER") || !strings.Contains(got, "cvmkit-init: error") {
		t.Fatalf("a wrong root hash was not refused:\n%s", got)
	}

	// The hash tree in its own file, on a second disk.
	dir2 := t.TempDir()
	c2 := bootConfig(t, dir2, "separate")
	out = filepath.Join(dir2, "out")
	res2, err := Build(context.Background(), c2, Options{OutDir: out, Epoch: time.Unix(1700000000, 0), InitBinary: initBinary(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res2.Lock.Cmdline, "cvmkit.hash=/dev/vdb") {
		t.Fatalf("separate hash tree: cmdline %q lacks cvmkit.hash=/dev/vdb", res2.Lock.Cmdline)
	}
	got = boot("separate hash tree", res2.Lock.Cmdline, filepath.Join(out, RootImageName), filepath.Join(out, HashTreeName))
	if !strings.Contains(got, "CVMKIT-MARKER: read from the verified root") {
		t.Fatalf("separate hash tree: boot did not print the marker:\n%s", got)
	}
}
