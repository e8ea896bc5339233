package atomicfile

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.json")
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	if err := WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v", got, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644 whatever the umask", fi.Mode().Perm())
	}
	assertOnly(t, dir, "out.json")
}

func TestWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	boom := errors.New("disk on fire")
	err := Write(p, 0o644, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "out.bin") {
		t.Fatalf("err = %v, want it to wrap the fill error and name the file", err)
	}
	assertOnly(t, dir)
}

func TestWriteFailureKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	if err := WriteFile(p, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	Write(p, 0o600, func(w io.Writer) error { return errors.New("fail") })
	if got, _ := os.ReadFile(p); string(got) != "v1" {
		t.Fatalf("previous content lost: %q", got)
	}
	assertOnly(t, dir, "out.bin")
}

func TestAbortAfterCommitIsNoop(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(filepath.Join(dir, "x"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	if err := f.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
	assertOnly(t, dir, "x")
}

func TestCreateInMissingDir(t *testing.T) {
	_, err := Create(filepath.Join(t.TempDir(), "nope", "x"), 0o600)
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v, want an error naming the path", err)
	}
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("folder holds %v, want %v", got, names)
	}
}

func TestDir(t *testing.T) {
	parent := t.TempDir()
	p := filepath.Join(parent, "out")
	err := Dir(p, func(tmp string) error {
		return os.WriteFile(filepath.Join(tmp, "a"), []byte("x"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(p, "a")); string(b) != "x" {
		t.Fatal("content")
	}
	if err := Dir(p, func(string) error { return nil }); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("existing folder: %v", err)
	}
	p2 := filepath.Join(parent, "out2")
	boom := errors.New("boom")
	if err := Dir(p2, func(tmp string) error { os.WriteFile(filepath.Join(tmp, "half"), nil, 0o644); return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	assertOnly(t, parent, "out")
}

// TestDeviceIsWrittenNotReplaced: writing to /dev/null (or /dev/stdout, a
// FIFO) writes to the device; it must never rename a regular file over the
// device node.
func TestDeviceIsWrittenNotReplaced(t *testing.T) {
	before, err := os.Stat(os.DevNull)
	if err != nil || before.Mode()&fs.ModeCharDevice == 0 {
		t.Skipf("%s is not a character device here", os.DevNull)
	}
	if err := WriteFile(os.DevNull, []byte("discarded"), 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(os.DevNull)
	if err != nil || after.Mode()&fs.ModeCharDevice == 0 || !os.SameFile(before, after) {
		t.Fatalf("%s was replaced: %v, %v", os.DevNull, after.Mode(), err)
	}
	if err := Write(os.DevNull, 0o644, func(w io.Writer) error { return errors.New("fill failed") }); err == nil {
		t.Fatal("a failed fill reported success")
	}
	if after, err := os.Stat(os.DevNull); err != nil || !os.SameFile(before, after) {
		t.Fatalf("%s was replaced after a failed fill", os.DevNull)
	}
}

// TestDirPrivateWhileFilling: the temporary folder is 0700 while it is
// filled, whatever the final mode, and DirMode gives the final mode.
func TestDirPrivateWhileFilling(t *testing.T) {
	parent := t.TempDir()
	for _, perm := range []fs.FileMode{0o755, 0o700} {
		p := filepath.Join(parent, "out"+perm.String())
		err := DirMode(p, perm, func(tmp string) error {
			fi, err := os.Stat(tmp)
			if err != nil {
				return err
			}
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("temporary folder has mode %v, want 0700", fi.Mode().Perm())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != perm {
			t.Errorf("final folder has mode %v, want %v", fi.Mode().Perm(), perm)
		}
	}
}

// TestStaleFromKilledRun: a child process starts a folder, writes a
// "secret" into it and is killed with SIGKILL (no cleanup runs); the next
// Begin for the same path removes the leftover and reports it, while a
// folder a live run still holds is kept.
func TestStaleFromKilledRun(t *testing.T) {
	if dir := os.Getenv("ATOMICFILE_CHILD"); dir != "" {
		tx, err := Begin(filepath.Join(dir, "dist"), 0o755)
		if err != nil {
			os.Exit(3)
		}
		os.WriteFile(filepath.Join(tx.Path, "secret"), []byte("key"), 0o600)
		os.Stdout.WriteString(tx.Path + "\n")
		select {} // wait to be killed
	}
	parent := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStaleFromKilledRun$")
	cmd.Env = append(os.Environ(), "ATOMICFILE_CHILD="+parent)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	leftover := strings.TrimSpace(line)

	// While the child lives, its folder is locked: kept.
	if removed, err := RemoveStale(filepath.Join(parent, "dist")); err != nil || len(removed) != 0 {
		t.Fatalf("a live run's folder: removed %v, %v", removed, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(leftover, "secret")); err != nil {
		t.Fatalf("the killed run should have left its folder: %v", err)
	}
	tx, err := Begin(filepath.Join(parent, "dist"), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	if len(tx.Stale) != 1 || tx.Stale[0] != leftover {
		t.Fatalf("Stale = %v, want [%s]", tx.Stale, leftover)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("leftover still there: %v", err)
	}
}

// TestRemoveStaleFiles: a temporary file a live writer holds is kept; one
// nobody holds (a writer killed between write and rename or link, which may
// have held a key) is removed and named.
func TestRemoveStaleFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.keyset")
	live, err := Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	dead := filepath.Join(dir, ".k.keyset.tmp-999")
	if err := os.WriteFile(dead, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	removed, err := WriteNewFile(path, []byte("key"), 0o600)
	if err != nil || len(removed) != 1 || removed[0] != dead {
		t.Fatalf("removed %v, %v", removed, err)
	}
	if _, err := os.Stat(live.Name()); err != nil {
		t.Fatalf("the live writer's file was removed: %v", err)
	}
	if _, err := WriteNewFile(path, []byte("other"), 0o600); err == nil {
		t.Fatal("WriteNewFile replaced a key file")
	}
	if b, _ := os.ReadFile(path); string(b) != "key" {
		t.Fatalf("%q", b)
	}
}
