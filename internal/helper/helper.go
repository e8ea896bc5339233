// Package helper finds and runs cvmkit's helper programs (cvmkit-sbom,
// cvmkit-sigstore): separate executables because the libraries they link
// (syft, sigstore-go) would add tens of milliseconds to every cvmkit start.
package helper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cvmkit/cvmkit/outcome"
)

// Find locates a helper: $env, else beside this executable, else on PATH.
func Find(name, env string, getenv func(string) (string, bool)) (string, error) {
	if p, ok := getenv(env); ok && p != "" {
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	install := "go install github.com/cvmkit/cvmkit/cmd/" + name + "@latest"
	if name == "cvmkit-sbom" {
		install = "build it from a checkout with cd sbom && go build ./cmd/cvmkit-sbom (its own Go module)"
	}
	return "", outcome.WithHint(fmt.Errorf("%s is not installed", name),
		fmt.Sprintf("make build puts it beside bin/cvmkit; or %s; or set %s to its path", install, env))
}

// Run runs a helper with extra environment variables and maps its exit
// code to cvmkit's outcomes (2 usage, 3 input, 4 signature); its stdout is
// returned.
func Run(ctx context.Context, path string, env []string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	c := Command(ctx, path, args...)
	c.Stdout, c.Stderr = &stdout, &stderr
	c.Env = append(os.Environ(), env...)
	return result(path, c.Run(), &stdout, &stderr)
}

// StopGrace is how long a cancelled helper has between SIGTERM and
// SIGKILL to remove its temporary files (cvmkit-sbom's extracted root
// filesystem).
const StopGrace = 10 * time.Second

// Command is exec.CommandContext whose cancellation sends SIGTERM first
// (the program cleans up and exits), then SIGKILL after StopGrace: for
// helpers and for the tools a firmware build runs.
func Command(ctx context.Context, path string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, path, args...)
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = StopGrace
	return c
}

// Process is a helper started ahead of its job: it does its fixed set-up
// (cvmkit-sbom builds its licence scanner, about a CPU-second) while the
// caller prepares the job's inputs, then reads the job from standard input.
type Process struct {
	path           string
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr bytes.Buffer
	err            error // starting it
	done           bool
}

// Start starts the helper at path with args; its job is given later with
// Finish, or never (Abort). An error starting it is returned by Finish.
func Start(ctx context.Context, path string, args ...string) *Process {
	p := &Process{path: path, cmd: Command(ctx, path, args...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if p.stdin, p.err = p.cmd.StdinPipe(); p.err == nil {
		p.err = p.cmd.Start()
	}
	return p
}

// Finish writes job to the helper's standard input, closes it, waits for
// the helper and maps its exit code as Run does.
func (p *Process) Finish(job []byte) ([]byte, error) {
	if p.err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(p.path), p.err)
	}
	if p.done {
		return nil, fmt.Errorf("%s: its job was already given", filepath.Base(p.path))
	}
	p.done = true
	_, werr := p.stdin.Write(job)
	cerr := p.stdin.Close()
	err := p.cmd.Wait()
	if err == nil && errors.Join(werr, cerr) != nil {
		err = errors.Join(werr, cerr)
	}
	return result(p.path, err, &p.stdout, &p.stderr)
}

// Abort ends a helper whose job will not come: its standard input closes
// empty, and it exits without doing anything.
func (p *Process) Abort() {
	if p.err != nil || p.done {
		return
	}
	p.done = true
	p.stdin.Close()
	_ = p.cmd.Wait()
}

// result maps a helper's exit to cvmkit's outcomes, with the message it
// printed on stderr.
func result(path string, err error, stdout, stderr *bytes.Buffer) ([]byte, error) {
	if err == nil {
		return stdout.Bytes(), nil
	}
	msg := strings.TrimSpace(stderr.String())
	if i := strings.Index(msg, ": error: "); i >= 0 {
		msg = msg[i+len(": error: "):]
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case 2:
			return nil, outcome.UsageError(errors.New(msg))
		case 3:
			return nil, outcome.InputError(errors.New(msg))
		case 4:
			return nil, outcome.SignatureError(errors.New(msg))
		}
	}
	return nil, fmt.Errorf("%s: %v: %s", filepath.Base(path), err, msg)
}
