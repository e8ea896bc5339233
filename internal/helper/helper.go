// Package helper finds and runs cvmkit's helper programs (cvmkit-sbom,
// cvmkit-sigstore): separate executables because the libraries they link
// (syft, sigstore-go) would add tens of milliseconds to every cvmkit start.
package helper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

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
	c := exec.CommandContext(ctx, path, args...)
	c.Stdout, c.Stderr = &stdout, &stderr
	c.Env = append(os.Environ(), env...)
	err := c.Run()
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
