package build

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

// TestBuildReproducible builds the same release twice with the cvmkit
// binary, from two copies in different folders, with different TZ, umask,
// LANG, GOMAXPROCS, SOURCE_DATE_EPOCH source (variable vs. config) and input
// file mtimes, and requires byte-identical outputs.
func TestBuildReproducible(t *testing.T) {
	testenv.Tool(t, "sh", "apt-get install dash")
	work := t.TempDir()
	cvmkit := filepath.Join(work, "cvmkit")
	cmd := exec.Command("go", "build", "-trimpath", "-o", cvmkit, "./cmd/cvmkit")
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	initBin := filepath.Join(work, "cvmkit-init")
	testenv.GoBuild(t, "./cmd/cvmkit-init", initBin)

	a := filepath.Join(work, "a")
	b := filepath.Join(work, "some", "deeper", "folder", "b")
	os.MkdirAll(a, 0o755)
	os.MkdirAll(b, 0o755)
	writeRelease(t, a, "appended", "")
	if out, err := exec.Command("cp", "-r", a+"/.", b).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	filepath.Walk(b, func(p string, _ os.FileInfo, _ error) error { os.Chtimes(p, old, old); return nil })

	run := func(dir string, umask string, env ...string) {
		t.Helper()
		c := exec.Command("sh", "-c", "umask "+umask+" && exec \"$0\" build -f cvmkit.yaml -o out --init-binary \"$1\"", cvmkit, initBin)
		c.Dir = dir
		c.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + work}, env...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("cvmkit build in %s: %v\n%s", dir, err, out)
		}
	}
	run(a, "022", "TZ=UTC", "LANG=C", "GOMAXPROCS=2")
	run(b, "077", "TZ=Pacific/Kiritimati", "LANG=de_DE.UTF-8", "LC_ALL=de_DE.UTF-8", "GOMAXPROCS=1", "SOURCE_DATE_EPOCH=1764201600")

	names := []string{RootImageName, InitrdName, KernelName, CmdlineName, LockName}
	for _, n := range names {
		x, err1 := os.ReadFile(filepath.Join(a, "out", n))
		y, err2 := os.ReadFile(filepath.Join(b, "out", n))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v %v", n, err1, err2)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between the two builds", n)
		}
		fa, _ := os.Stat(filepath.Join(a, "out", n))
		fb, _ := os.Stat(filepath.Join(b, "out", n))
		if fa.Mode() != fb.Mode() {
			t.Errorf("%s: modes %v and %v", n, fa.Mode(), fb.Mode())
		}
	}
	lock, _ := os.ReadFile(filepath.Join(a, "out", LockName))
	t.Logf("identical outputs; lock root hash line: %s", grepLine(string(lock), "rootHash"))
}

func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// TestQuickstartVector rebuilds the quickstart's image and compares its
// dm-verity values with the ones docs/image.md publishes: a regression
// check that the root filesystem bytes do not drift between cvmkit
// versions (the independent check of those bytes is veritysetup's, in
// TestBuildOutputsWithRealTools and build/verity).
func TestQuickstartVector(t *testing.T) {
	quickstartCache(t)
	c := load(t, filepath.Join(testenv.RepoRoot(t), "examples", "quickstart", "cvmkit.yaml"))
	res, err := Build(t.Context(), c, Options{OutDir: filepath.Join(t.TempDir(), "image"), Epoch: time.Unix(*c.SourceDateEpoch, 0), InitBinary: fakeInit})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Lock.Verity
	if v.RootHash != "92aa9af48733a9871dc6921a0f3730885ef2c6659292199e396b01174a969fc1" ||
		v.Salt != "d0052240d05ff56895b377b863f54e5e9c27997bab26ab0a4ee3289bcbd7cd97" ||
		v.UUID != "07aaa7a0-0d02-8075-8f2e-cbdb473f916a" || v.DataBlocks != 1487 || v.HashStartBlock != 1488 {
		t.Errorf("quickstart verity values %+v differ from docs/image.md", v)
	}
}
