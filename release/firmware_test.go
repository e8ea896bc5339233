package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/firmware"
)

// builtConfig is a config whose SEV-SNP and TDX configurations use firmware
// built from the recipes amdsev and tdx, neither built yet.
func builtConfig(t *testing.T, snpRecipe, digest string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	y := `apiVersion: cvmkit.dev/v1alpha1
kind: Release
metadata: {name: fw, version: 1.0.0}
image:
  base: [{dir: root}]
  kernel: {path: vmlinuz, digest: "sha256:` + strings.Repeat("0", 64) + `"}
  cmdline: "console=ttyS0 {{.Root}}"
firmware:
  - name: snp
    path: out/OVMF.snp.fd
    digest: "` + digest + `"
    build: {recipe: ` + snpRecipe + `, cache: fwcache}
platforms:
  snp:
    - {name: q, firmware: snp, vcpus: [1], vcpuTypes: [EPYC-v4], kernelHashes: true}
keyAuthorities:
  targets: [sev-check]
`
	c, err := config.Parse(filepath.Join(dir, "cvmkit.yaml"), []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBuiltFirmwareBindsBeforeBuilding: release's early checks read what a
// firmware that is yet to be built measures from its recipe, so a config
// of the amdsev recipe is bound and valid before anything is built, and one
// of a recipe without the SEV-SNP kernel-hashes table is refused.
func TestBuiltFirmwareBindsBeforeBuilding(t *testing.T) {
	amdsev := "sha256:" + firmware.Recipes["amdsev"].SHA256
	c := builtConfig(t, "amdsev", amdsev)
	if ps := FirmwareProblems(c); len(ps) != 0 {
		t.Fatalf("problems: %v", ps)
	}
	if u := PredictUnbound(c); len(u) != 0 {
		t.Fatalf("unbound: %v", u)
	}
	if err := c.CheckInputs(); err != nil && strings.Contains(err.Error(), "OVMF.snp.fd") {
		t.Fatalf("a firmware release builds was reported missing: %v", err)
	}

	other := firmware.Recipes["amdsev"]
	other.SHA256 = strings.Repeat("1", 64)
	withRecipe(t, "other", other)
	c = builtConfig(t, "other", amdsev)
	ps := FirmwareProblems(c)
	if len(ps) != 1 || !strings.Contains(ps[0].Msg, "recipe other builds sha256:") {
		t.Fatalf("a digest that is not the recipe's: %v", ps)
	}

	r := firmware.Recipes["tdx"]
	r.SHA256 = ""
	withRecipe(t, "no-hashes", r)
	c = builtConfig(t, "no-hashes", amdsev)
	ps = FirmwareProblems(c)
	if len(ps) != 1 || !strings.Contains(ps[0].Msg, "has no SNP_KERNEL_HASHES section") {
		t.Fatalf("kernelHashes with a recipe without the table: %v", ps)
	}
	u := PredictUnbound(c)
	if len(u) != 1 || strings.Join(u[0].Parts, ",") != "kernel,initrd,cmdline,rootfs" || !strings.Contains(u[0].Why, "no SEV-SNP kernel-hashes table") {
		t.Fatalf("unbound: %v", u)
	}
}

// withRecipe adds a recipe for the test's duration.
func withRecipe(t *testing.T, name string, r firmware.Recipe) {
	t.Helper()
	r.Name = name
	firmware.Recipes[name] = r
	t.Cleanup(func() { delete(firmware.Recipes, name) })
}

// TestPrepareFirmware: a missing firmware is built (or taken from the
// cache) and copied to its path with its provenance; a file already there
// with the pinned digest is used as it is; verify --rebuild's Rebuild
// builds again; a build with other bytes is refused, naming both digests.
func TestPrepareFirmware(t *testing.T) {
	fw := []byte("firmware bytes of the test recipe")
	sum := sha256.Sum256(fw)
	r := firmware.Recipes["amdsev"]
	r.SHA256 = hex.EncodeToString(sum[:])
	withRecipe(t, "test", r)
	c := builtConfig(t, "test", "sha256:"+r.SHA256)

	var calls []firmware.Options
	out := fw
	fake := func(ctx context.Context, got firmware.Recipe, o firmware.Options) (*firmware.Result, error) {
		calls = append(calls, o)
		if got.Name != "test" {
			t.Fatalf("recipe %q", got.Name)
		}
		p := filepath.Join(t.TempDir(), "built.fd")
		os.WriteFile(p, out, 0o644)
		os.WriteFile(p+".provenance.json", []byte(`{"recipe":{"name":"test"}}`), 0o644)
		s := sha256.Sum256(out)
		return &firmware.Result{Path: p, Provenance: firmware.Provenance{SHA256: hex.EncodeToString(s[:])}}, nil
	}
	o := FirmwareOptions{Build: fake}
	got, err := PrepareFirmware(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	path := c.Resolve("out/OVMF.snp.fd")
	if b, _ := os.ReadFile(path); string(b) != string(fw) || len(got) != 1 || got[0].How != "built" {
		t.Fatalf("prepared %+v, file %q", got, b)
	}
	if _, err := os.Stat(path + ".provenance.json"); err != nil {
		t.Fatal("no provenance beside the firmware")
	}
	if len(calls) != 1 || calls[0].CacheDir != c.Resolve("fwcache") || calls[0].Rebuild {
		t.Fatalf("build options %+v", calls)
	}

	got, err = PrepareFirmware(context.Background(), c, o)
	if err != nil || len(calls) != 1 || got[0].How != "present" {
		t.Fatalf("a second run built again: %v %+v", err, got)
	}

	o.Rebuild = true
	if _, err = PrepareFirmware(context.Background(), c, o); err != nil || len(calls) != 2 || !calls[1].Rebuild {
		t.Fatalf("rebuild: %v %+v", err, calls)
	}

	out = []byte("other bytes")
	_, err = PrepareFirmware(context.Background(), c, o)
	if err == nil || !strings.Contains(err.Error(), "recipe test built sha256:") || !strings.Contains(err.Error(), "the config pins sha256:"+r.SHA256) {
		t.Fatalf("other bytes: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(fw) {
		t.Fatal("a build with other bytes replaced the firmware")
	}
}
