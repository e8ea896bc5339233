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
	cache, rel, img := recipeImage(t, "launched from the recipe")
	kernel := filepath.Join(cache, "vmlinuz")
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

// recipeImage builds a guest image as cvmkit release does (the quickstart's
// Debian kernel and modules, cvmkit-init, an EROFS root behind dm-verity
// whose init prints marker) into a release folder's image/.
func recipeImage(t *testing.T, marker string) (cache, rel string, img Image) {
	t.Helper()
	cache = filepath.Join(testenv.RepoRoot(t), "examples", "quickstart", "cache")
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
	os.WriteFile(filepath.Join(root, "etc", "cvmkit-marker"), []byte(marker), 0o644)
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
	rel = filepath.Join(dir, "release")
	initBin := filepath.Join(dir, "cvmkit-init")
	testenv.GoBuild(t, "./cmd/cvmkit-init", initBin)
	ib, _ := os.ReadFile(initBin)
	res, err := build.Build(context.Background(), c, build.Options{OutDir: filepath.Join(rel, "image"), Epoch: time.Unix(1764201600, 0), InitBinary: ib})
	if err != nil {
		t.Fatal(err)
	}
	img = Image{Cmdline: res.Lock.Cmdline}
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
	return cache, rel, img
}

// TestAmdSevFirmwareRefusesUnhashedKernel boots the SEV-SNP recipe of the
// quickstart's built amdsev firmware under TCG, where no SEV-SNP exists.
// What TCG cannot show is the measured launch itself: QEMU fills the
// firmware's SNP kernel-hashes table only for an SEV guest (kernel-hashes=on),
// so the launch digest is proven against sev-snp-measure instead
// (TestBuiltAmdSevVectors). What it does show is that the firmware enforces
// the table: with the table empty its BlobVerifierLibSevHashes refuses the
// kernel QEMU hands it, and the firmware falls back to its (empty) GRUB boot
// option instead of running an unverified kernel. Debian's OVMF.fd runs the
// same kernel (TestRecipeBoots).
func TestAmdSevFirmwareRefusesUnhashedKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU (about half a minute under TCG); run without -short")
	}
	qemu := testenv.Tool(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	cache, rel, img := recipeImage(t, "must not be reached")
	amdsev := filepath.Join(cache, "OVMF.amdsev.fd")
	if _, err := os.Stat(amdsev); err != nil {
		testenv.Tool(t, "cvmkit-amdsev-firmware", "make firmware (make test runs it)")
	}
	if err := os.Symlink(amdsev, filepath.Join(rel, "OVMF.amdsev.fd")); err != nil {
		t.Fatal(err)
	}
	fw := File{Path: "cache/OVMF.amdsev.fd", SHA256: testenv.FileSHA256(t, amdsev)}
	r, err := ForSNP("launch-test@1.0.0", img, SNP{Configuration: "snp-qemu.qemu-EPYC-v4-1vcpu", VMM: "qemu", Mode: "snp", VCPUType: "EPYC-v4", VCPUs: 1,
		Policy: 0x30000, GuestFeatures: 1, KernelHashes: true, Measurement: strings.Repeat("ab", 48), Firmware: fw})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(r.QEMU.Args, " "), "kernel-hashes=on") {
		t.Fatalf("the recipe of a firmware with kernel hashes lacks kernel-hashes=on: %q", r.QEMU.Args)
	}
	args := append(NonConfidential(r.QEMU.Args), "-no-reboot")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.Dir = rel
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The firmware waits after its last boot option: stop QEMU as soon as
	// the outcome is on the console.
	var got strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := out.Read(buf)
		got.Write(buf[:n])
		if s := got.String(); strings.Contains(s, "No bootable option was found") || strings.Contains(s, "Linux version") || err != nil {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	s := got.String()
	if ctx.Err() != nil {
		t.Fatalf("QEMU timed out:\n%s", s)
	}
	if strings.Contains(s, "Linux version") || strings.Contains(s, "must not be reached") {
		t.Fatalf("the amdsev firmware ran a kernel it could not verify:\n%s", s)
	}
	if !strings.Contains(s, "BdsDxe: No bootable option was found") {
		t.Fatalf("the firmware did not report that it refused the kernel:\n%s", s)
	}
	t.Logf("amdsev firmware under TCG: %s", strings.TrimSpace(s[strings.LastIndex(s, "BdsDxe"):]))
}
