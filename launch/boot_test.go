package launch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/build"
	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/measure/tdx"
)

// TestRecipeBoots builds a guest image as cvmkit release does (Debian's
// kernel and modules, cvmkit-init, an EROFS root behind dm-verity whose
// init prints a marker), writes the SEV-SNP and TDX launch recipes for it,
// and boots each recipe's non-confidential equivalent in QEMU (TCG) with
// Debian's OVMF: the guest's kernel banner is the kernel's version string,
// the command line the kernel reports is the recipe's (with the
// " initrd=initrd" OVMF's loader appends, as measure tdx predicts for
// LoadOptions), and the init from the recipe's initrd mounts the verified
// root named by that command line and prints its marker. So the recipe's
// firmware, kernel, initrd, command line and disk are the ones that reach
// the guest.
func TestRecipeBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU twice (about a minute each under TCG); run without -short")
	}
	qemu := testenv.Tool(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	cache := filepath.Join(testenv.RepoRoot(t), "examples", "quickstart", "cache")
	order, err := os.ReadFile(filepath.Join(cache, "modules", "load.order"))
	if err != nil {
		testenv.Tool(t, "cvmkit-quickstart-inputs", "examples/quickstart/fetch-inputs.sh (make test runs it)")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"sbin", "etc", "dev", "proc", "sys"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	testenv.GoBuild(t, "./build/testdata/markerinit", filepath.Join(root, "sbin", "init"))
	os.WriteFile(filepath.Join(root, "etc", "cvmkit-marker"), []byte("launched from the recipe"), 0o644)
	kernel := filepath.Join(cache, "vmlinuz")
	var mods strings.Builder
	for _, m := range strings.Fields(string(order)) {
		p := filepath.Join(cache, "modules", m)
		fmt.Fprintf(&mods, "        - path: %s\n          digest: sha256:%s\n", p, testenv.FileSHA256(t, p))
	}
	cfg := fmt.Sprintf(`apiVersion: cvmkit.dev/v1alpha1
kind: Release
metadata: {name: launch-test, version: 1.0.0}
image:
  base:
    - dir: root
  kernel:
    path: %s
    digest: sha256:%s
  initrd:
    init:
      modules:
%s  cmdline: "console=ttyS0 panic=-1 {{.Root}}"
`, kernel, testenv.FileSHA256(t, kernel), mods.String())
	os.WriteFile(filepath.Join(dir, "cvmkit.yaml"), []byte(cfg), 0o644)
	c, err := config.Load(filepath.Join(dir, "cvmkit.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rel := filepath.Join(dir, "release")
	initBin := filepath.Join(dir, "cvmkit-init")
	testenv.GoBuild(t, "./cmd/cvmkit-init", initBin)
	ib, _ := os.ReadFile(initBin)
	res, err := build.Build(context.Background(), c, build.Options{OutDir: filepath.Join(rel, "image"), Epoch: time.Unix(1764201600, 0), InitBinary: ib})
	if err != nil {
		t.Fatal(err)
	}
	img := Image{Cmdline: res.Lock.Cmdline}
	for _, o := range res.Lock.Outputs {
		f := File{Path: "image/" + o.Name, SHA256: o.SHA256}
		switch o.Name {
		case build.KernelName:
			img.Kernel = f
		case build.InitrdName:
			img.Initrd = f
		case build.RootImageName:
			img.RootFS = f
		}
	}
	// The firmware sits beside the release's image/, under its own name.
	fw := File{Path: "cache/OVMF.fd", SHA256: testenv.FileSHA256(t, filepath.Join(cache, "OVMF.fd"))}
	if err := os.Symlink(filepath.Join(cache, "OVMF.fd"), filepath.Join(rel, "OVMF.fd")); err != nil {
		t.Fatal(err)
	}
	kb, _ := os.ReadFile(kernel)
	info, err := tdx.ReadKernelInfo(kb)
	if err != nil {
		t.Fatal(err)
	}

	snp, err := ForSNP("launch-test@1.0.0", img, SNP{Configuration: "snp-qemu.qemu-EPYC-Milan-2vcpu", VMM: "qemu", Mode: "snp", VCPUType: "EPYC-Milan", VCPUs: 2,
		Policy: 0x30000, GuestFeatures: 1, Measurement: strings.Repeat("ab", 48), Firmware: fw})
	if err != nil {
		t.Fatal(err)
	}
	td, err := ForTDX("launch-test@1.0.0", img, TDX{Configuration: "tdx-qemu-td", MRTD: strings.Repeat("cd", 48), QEMUVersion: "10.1.0", Memory: 2 << 30, VCPUs: 2, Firmware: fw})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Recipe{snp, td} {
		args := NonConfidential(r.QEMU.Args)
		t.Logf("%s: %s", r.Configuration, (&QEMU{Binary: "qemu-system-x86_64", Args: args}).ShellCommand())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, qemu, append(args, "-no-reboot")...)
		cmd.Dir = rel // the recipe's paths are relative to the release folder
		out, _ := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("%s: QEMU timed out:\n%s", r.Configuration, out)
		}
		got := string(out)
		// The banner is "Linux version RELEASE (BUILDER) (COMPILER) #BUILD",
		// the setup header's string without the compiler.
		release, build, _ := strings.Cut(info.Version, " #")
		for _, want := range []string{
			"Linux version " + strings.Fields(release)[0] + " ",
			"#" + build,
			"Command line: " + img.Cmdline + " initrd=initrd",
			"CVMKIT-MARKER: launched from the recipe",
		} {
			if !strings.Contains(got, want) {
				t.Fatalf("%s: the guest did not print %q:\n%s", r.Configuration, want, got)
			}
		}
		t.Logf("%s: kernel %q, command line and verified root reached the guest", r.Configuration, info.Version)
	}
}
