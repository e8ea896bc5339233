package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The test binary is cvmkit-sbom when CVMKIT_SBOM_TEST_MAIN is set.
func TestMain(m *testing.M) {
	if os.Getenv("CVMKIT_SBOM_TEST_MAIN") != "" {
		os.Exit(run())
	}
	os.Exit(m.Run())
}

// sbomCmd runs this test binary as cvmkit-sbom with args and stdin.
func sbomCmd(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	c := exec.Command(os.Args[0], args...)
	c.Env = append(os.Environ(), "CVMKIT_SBOM_TEST_MAIN=1")
	c.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	err := c.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func root(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "etc", "os-release")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("ID=debian\nVERSION_ID=\"12\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestJobFromStdin: started ahead of its job ('cvmkit release' starts it
// before the image exists), cvmkit-sbom takes its arguments as a JSON array
// on stdin and writes what the same arguments on the command line write;
// with no job (the release failed first) it exits 0 and writes nothing; a
// malformed job is a usage error.
func TestJobFromStdin(t *testing.T) {
	in := root(t)
	out := t.TempDir()
	args := []string{"--name", "demo", "--version", "1", "--epoch", "1764201600", "--tool", "test"}
	direct := filepath.Join(out, "direct")
	stdout1, stderr, code := sbomCmd(t, "", append(args, "-o", direct, in)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	viaStdin := filepath.Join(out, "stdin")
	job, err := json.Marshal(append(args, "-o", viaStdin, in))
	if err != nil {
		t.Fatal(err)
	}
	stdout2, stderr, code := sbomCmd(t, string(job), "--job-stdin")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout1 != stdout2 {
		t.Fatalf("stdout %q with arguments, %q with the job on stdin", stdout1, stdout2)
	}
	for _, name := range []string{"sbom.spdx.json", "sbom.cdx.json"} {
		a, err1 := os.ReadFile(filepath.Join(direct, name))
		b, err2 := os.ReadFile(filepath.Join(viaStdin, name))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s differs between the two ways of giving the job (%v, %v)", name, err1, err2)
		}
	}

	if stdout, stderr, code := sbomCmd(t, "", "--job-stdin"); code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("no job: exit %d, stdout %q, stderr %q; want exit 0 and silence", code, stdout, stderr)
	}
	if _, stderr, code := sbomCmd(t, `{"name":"demo"}`, "--job-stdin"); code != 2 || !strings.Contains(stderr, "JSON array") {
		t.Fatalf("malformed job: exit %d, stderr %q; want a usage error", code, stderr)
	}
}
