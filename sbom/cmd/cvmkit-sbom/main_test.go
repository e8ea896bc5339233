package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/sbom/internal/initrdtest"
)

// The test binary is cvmkit-sbom when CVMKIT_SBOM_TEST_MAIN is set.
func TestMain(m *testing.M) {
	if os.Getenv("CVMKIT_SBOM_TEST_MAIN") != "" {
		code := run()
		if os.Getenv("CVMKIT_SBOM_TEST_HWM") != "" {
			// The process's own peak RSS (VmHWM of its address space since
			// exec): the rusage of a child started with vfork also counts
			// the parent's pages.
			if b, err := os.ReadFile("/proc/self/status"); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if strings.HasPrefix(l, "VmHWM:") {
						fmt.Fprintln(os.Stderr, l)
					}
				}
			}
		}
		os.Exit(code)
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

// TestHostileInitrdMemory: the hostile-input pass's initrds, through the
// helper as a process, each within a peak RSS of 256 MiB (the helper
// alone, with syft's licence scanner, is about 200 MiB): a 64 KiB gzip
// initrd with a 64 MiB .modinfo of zeros (2.1 GiB before), a 2 MiB one
// whose compressed .modinfo declares and holds 2 GiB (out of memory
// before), and 300,000 tiny ELF files in 1 MiB (2.85 GiB, 25.6 s and a
// 475 MB SBOM before).
func TestHostileInitrdMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("makes a 2 GiB zlib stream and runs the helper three times: the long tier")
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inputs := map[string]string{
		"modinfo of zeros": write("zeros.img", initrdtest.Gzip(initrdtest.CPIO(initrdtest.Entry{Name: "lib/modules/bomb.ko", Data: initrdtest.Module(make([]byte, 64<<20))}))),
		"compressed modinfo": write("zlib.img", initrdtest.CPIO(initrdtest.Entry{Name: "lib/modules/zbomb.ko",
			Data: initrdtest.CompressedModule(initrdtest.ZlibZeros(2<<30), 2<<30)})),
		"300k tiny ELF files": write("tiny.img", initrdtest.GzipStream(func(w io.Writer) {
			hdr := initrdtest.ELFHeader(2)
			for i := range 300000 {
				fmt.Fprintf(w, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, 0o100755, 0, 0, 1, 0, len(hdr), 0, 0, 0, 0, 12, 0)
				fmt.Fprintf(w, "bin/f%06d\x00\x00\x00", i)
				w.Write(hdr)
			}
			w.Write(initrdtest.CPIO())
		})),
	}
	in := root(t)
	for name, initrd := range inputs {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "sbom")
			c := exec.Command(os.Args[0], "--name", "demo", "--initrd", initrd, "-o", out, in)
			c.Env = append(os.Environ(), "CVMKIT_SBOM_TEST_MAIN=1", "CVMKIT_SBOM_TEST_HWM=1")
			var e bytes.Buffer
			c.Stderr = &e
			start := time.Now()
			if err := c.Run(); err != nil {
				t.Fatalf("%v\n%s", err, e.String())
			}
			var kib int64
			if _, err := fmt.Sscanf(e.String()[strings.Index(e.String(), "VmHWM:"):], "VmHWM: %d kB", &kib); err != nil {
				t.Fatalf("no VmHWM line: %v\n%s", err, e.String())
			}
			rss := kib << 10
			fi, _ := os.Stat(filepath.Join(out, "sbom.spdx.json"))
			t.Logf("peak RSS %d MiB, %v, SPDX %d KiB", rss>>20, time.Since(start).Round(time.Millisecond), fi.Size()>>10)
			if rss > 256<<20 {
				t.Fatalf("peak RSS %d MiB, more than 256 MiB", rss>>20)
			}
		})
	}
}

// TestNotRegularInputs: a FIFO or a device given as the kernel, the
// initrd or the image is refused at once (they hung or ran out of memory:
// /dev/zero passed the kernel's size check, which trusted stat).
func TestNotRegularInputs(t *testing.T) {
	in := root(t)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--kernel", "/dev/zero", in}, {"--initrd", fifo, in}, {"--firmware", "ovmf=" + fifo, in}, {fifo},
	} {
		done := make(chan struct{})
		var code int
		var stderr string
		go func() {
			_, stderr, code = sbomCmd(t, "", append([]string{"--name", "demo", "-o", filepath.Join(t.TempDir(), "out")}, args...)...)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%v: still running after 30 s", args)
		}
		if code != 3 || !strings.Contains(stderr, "not a") {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
	}
}

// TestInterruptedCleansUp: a helper stopped with SIGTERM (what cvmkit sends
// first when a release is interrupted) removes the root filesystem it
// extracted; the folder of a helper killed outright is removed by the
// next run (9 of 20 interrupted releases left one in the system temporary
// folder).
func TestInterruptedCleansUp(t *testing.T) {
	mkfs := testenv.Tool(t, "mkfs.erofs", "apt-get install erofs-utils")
	img := filepath.Join(t.TempDir(), "rootfs.img")
	if out, err := exec.Command(mkfs, img, root(t)).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	tmp := t.TempDir()
	stale := filepath.Join(tmp, "cvmkit-sbom-12345")
	if err := os.MkdirAll(filepath.Join(stale, "rootfs", "etc"), 0o700); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(os.Args[0], "--name", "demo", "-o", filepath.Join(t.TempDir(), "out"), img)
	c.Env = append(os.Environ(), "CVMKIT_SBOM_TEST_MAIN=1", "TMPDIR="+tmp)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the stale folder to be swept and the helper's own to appear
	// (it extracts, then waits for its licence scanner), then stop it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(tmp, "cvmkit-sbom-*"))
		if len(m) == 1 && m[0] != stale {
			break
		}
		if time.Now().After(deadline) {
			c.Process.Kill()
			t.Fatalf("no extraction folder of its own: %v", m)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Process.Signal(syscall.SIGTERM)
	c.Wait()
	if m, _ := filepath.Glob(filepath.Join(tmp, "cvmkit-sbom-*")); len(m) != 0 {
		t.Fatalf("left after SIGTERM: %v", m)
	}
}
