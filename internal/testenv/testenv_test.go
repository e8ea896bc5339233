package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot = %q has no go.mod", root)
	}
}

func TestSharedOverride(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "vectors"), 0o755)
	os.WriteFile(filepath.Join(dir, "vectors", "x.json"), []byte("{}"), 0o644)
	t.Setenv(SharedEnv, dir)
	if got := Shared(t); got != dir {
		t.Errorf("Shared = %q, want %q", got, dir)
	}
	if got := SharedFile(t, "vectors/x.json"); got != filepath.Join(dir, "vectors", "x.json") {
		t.Errorf("SharedFile = %q", got)
	}
}

// fakeTB records whether the helper skipped or failed, so the CI rule can be
// tested without failing this test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = true
	panic(f)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = true
	panic(f)
}

func run(tb *fakeTB, fn func()) {
	defer func() {
		if r := recover(); r != nil && r != tb {
			panic(r)
		}
	}()
	fn()
}

func TestMissingSharedFailsInCI(t *testing.T) {
	t.Setenv(SharedEnv, filepath.Join(t.TempDir(), "absent"))
	t.Setenv("CI", "true")
	tb := &fakeTB{TB: t}
	run(tb, func() { Shared(tb) })
	if !tb.failed || tb.skipped {
		t.Errorf("in CI a missing shared folder must fail: failed=%v skipped=%v", tb.failed, tb.skipped)
	}
	t.Setenv("CI", "")
	tb = &fakeTB{TB: t}
	run(tb, func() { Shared(tb) })
	if !tb.skipped || tb.failed {
		t.Errorf("outside CI a missing shared folder must skip: failed=%v skipped=%v", tb.failed, tb.skipped)
	}
}

func TestMissingToolFailsInCI(t *testing.T) {
	t.Setenv("CI", "true")
	tb := &fakeTB{TB: t}
	run(tb, func() { Tool(tb, "cvmkit-no-such-tool", "apt-get install nothing") })
	if !tb.failed {
		t.Error("in CI a missing tool must fail")
	}
}
