package helper

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/outcome"
)

// The test binary stands in for a helper started ahead of its job: with
// HELPER_TEST_MODE set it reads its job from stdin and answers as a helper
// would.
func TestMain(m *testing.M) {
	switch os.Getenv("HELPER_TEST_MODE") {
	case "":
		os.Exit(m.Run())
	case "echo": // prints its job back; no job, no output
		b, _ := io.ReadAll(os.Stdin)
		fmt.Print(strings.ToUpper(string(b)))
		os.Exit(0)
	case "input-error": // refuses its job as a bad input (exit 3)
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		fmt.Fprintf(os.Stderr, "helper: error: %s is not an image\n", strings.TrimSpace(line))
		os.Exit(3)
	}
}

func start(t *testing.T, mode string) *Process {
	t.Helper()
	t.Setenv("HELPER_TEST_MODE", mode)
	return Start(context.Background(), os.Args[0])
}

func TestProcessFinish(t *testing.T) {
	p := start(t, "echo")
	out, err := p.Finish([]byte(`["--name","x"]`))
	if err != nil || string(out) != `["--NAME","X"]` {
		t.Fatalf("Finish = %q, %v", out, err)
	}
	if _, err := p.Finish(nil); err == nil {
		t.Fatal("a second Finish was accepted")
	}
	p.Abort() // after Finish: nothing to do
}

func TestProcessInputError(t *testing.T) {
	_, err := start(t, "input-error").Finish([]byte("rootfs.img\n"))
	if outcome.ExitCode(err) != outcome.Input || err.Error() != "rootfs.img is not an image" {
		t.Fatalf("err = %v (exit %v), want the helper's message as an input error", err, outcome.ExitCode(err))
	}
}

// TestProcessAbort: a helper waiting for a job that never comes ends when
// its standard input closes, and Abort returns.
func TestProcessAbort(t *testing.T) {
	p := start(t, "echo")
	done := make(chan struct{})
	go func() { p.Abort(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Abort did not return: the helper did not see its standard input close")
	}
	if p.stdout.Len() != 0 {
		t.Fatalf("an aborted helper printed %q", p.stdout.String())
	}
}

func TestProcessNotStarted(t *testing.T) {
	p := Start(context.Background(), "/nonexistent/cvmkit-helper")
	p.Abort()
	_, err := p.Finish([]byte("job"))
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "cvmkit-helper") {
		t.Fatalf("err = %v, want one naming the helper that could not start", err)
	}
}
