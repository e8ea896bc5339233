// Package testenv finds what tests need outside the module: the shared test
// data folder and external tools.
//
// Every test reads ../shared through [Shared] so that the rule is the same
// everywhere: CVMKIT_SHARED names the folder, or it is "shared" beside the
// repository root. When it (or a tool) is missing the test fails under
// CI=true, where a missing input means a broken CI setup, and is skipped
// with the reason otherwise, so that a contributor without the data can still
// run the rest.
package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// SharedEnv is the variable that overrides where the shared folder is.
const SharedEnv = "CVMKIT_SHARED"

// InCI reports whether the tests run in CI (CI=true), where missing inputs
// are failures rather than skips.
func InCI() bool { return os.Getenv("CI") == "true" }

var coreModule = regexp.MustCompile(`(?m)^module github\.com/cvmkit/cvmkit\s*$`)

var rootOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		// The core module's go.mod: the sbom module (sbom/go.mod) is
		// nested inside the repository.
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && coreModule.Match(b) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
})

// RepoRoot returns the repository's root, the folder holding the core
// module's go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := rootOnce()
	if err != nil {
		t.Fatalf("testenv: cannot find the repository root (go.mod) above the working folder: %v", err)
	}
	return root
}

// SharedDir returns where the shared folder is expected, without checking it.
func SharedDir(t testing.TB) string {
	if d := os.Getenv(SharedEnv); d != "" {
		return d
	}
	return filepath.Join(filepath.Dir(RepoRoot(t)), "shared")
}

// Shared returns the shared test data folder, or fails (CI) / skips the test
// when it is missing.
func Shared(t testing.TB) string {
	t.Helper()
	dir := SharedDir(t)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		missing(t, "the shared test data folder %q is missing: check out ../shared beside the repository or set %s to its path", dir, SharedEnv)
	}
	return dir
}

// SharedFile returns the path of rel (like "vectors/snp.json") inside the
// shared folder, or fails/skips when it is missing.
func SharedFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Shared(t), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		missing(t, "shared test data %q is missing (%v): update ../shared or set %s", rel, err, SharedEnv)
	}
	return p
}

// Tool returns the path of an external program, or fails/skips when it is
// not installed. pkg names the Debian package or go install line that
// provides it, for the message.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s is not installed: %s (.ci/run and make test install it)", name, pkg)
	}
	return p
}

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("testenv: "+format, args...)
	}
	t.Skipf("testenv: "+format+" (skipped outside CI; CI=true makes this a failure)", args...)
}

// GoBuild builds the package pkg (relative to the repository root) as a
// static, reproducible linux/amd64 binary at out, for tests that put Go
// programs into guest images, and returns its bytes.
func GoBuild(t testing.TB, pkg, out string) []byte {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ModuleDir is the folder of a module in the build list (go list -m), in
// the module cache: tests read data other projects publish (schemas, test
// reports) in place rather than copying it.
func ModuleDir(t testing.TB, mod string) string {
	t.Helper()
	// In the test's own folder: the module whose build list counts (the
	// sbom module's tests read syft's schemas).
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod)
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Fatalf("go list -m %s: %v (run go mod download)", mod, err)
	}
	return dir
}

// FileSHA256 is the hex SHA-256 of a file (for pinning test inputs).
func FileSHA256(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
