package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the scripts run "cvmkit" as a real process built from this
// package's main, so exit codes, stdout and stderr are the real ones.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"cvmkit": main})
}

// TestScripts runs the CLI tests in testdata/*.txtar. Scripts see:
//
//	$REPO      the repository root
//	$SHARED    the shared test data folder (may be missing outside CI)
//	exit N cmd args…   run cmd and require exit code N
//	cvmkit-flip FILE OFF  flip one bit of FILE at byte offset OFF
//	cvmkit-mode PATH MODE require PATH's permission bits to be MODE (octal)
//	fake-vault NAME PUB   serve a Vault transit key NAME on loopback for the
//	                      rest of the script (VAULT_ADDR, VAULT_TOKEN set) and
//	                      write its public key to PUB
//	[quickstart]       the quickstart inputs are fetched (CI requires them)
//	[cosign]           the cosign binary is on PATH (CI requires it)
//	$CVMKIT_SBOM, $CVMKIT_SIGSTORE  the helper programs, built once per run
//	$COSIGN            the cosign binary, when installed
//	[shared]           the shared test data folder exists (CI requires it)
func TestScripts(t *testing.T) {
	root := testenv.RepoRoot(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			env.Setenv("REPO", root)
			env.Setenv("SHARED", testenv.SharedDir(t))
			bins, err := helpers(root)
			if err != nil {
				return err
			}
			env.Setenv("CVMKIT_SBOM", filepath.Join(bins, "cvmkit-sbom"))
			env.Setenv("CVMKIT_SIGSTORE", filepath.Join(bins, "cvmkit-sigstore"))
			if cosign, err := exec.LookPath("cosign"); err == nil {
				env.Setenv("COSIGN", cosign)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exit":        exitCmd,
			"cvmkit-flip": flipCmd,
			"cvmkit-mode": modeCmd,
			"fake-vault":  fakeVaultCmd,
			"cvmkit-mkfifo": func(ts *testscript.TestScript, neg bool, args []string) {
				ts.Check(syscall.Mkfifo(ts.MkAbs(args[0]), 0o644))
			},
			// cvmkit-newline-file [-rm] DIR A B: create (or remove) the file
			// "A\nB" in DIR (testscript cannot spell a newline in a name).
			"cvmkit-newline-file": func(ts *testscript.TestScript, neg bool, args []string) {
				if args[0] == "-rm" {
					ts.Check(os.Remove(filepath.Join(ts.MkAbs(args[1]), args[2]+"\n"+args[3])))
					return
				}
				ts.Check(os.WriteFile(filepath.Join(ts.MkAbs(args[0]), args[1]+"\n"+args[2]), nil, 0o644))
			},
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "shared":
				_, err := os.Stat(testenv.SharedDir(t))
				if err != nil && testenv.InCI() {
					return false, fmt.Errorf("the shared test data folder is missing in CI: set %s", testenv.SharedEnv)
				}
				return err == nil, nil
			case "cosign":
				_, err := exec.LookPath("cosign")
				if err != nil && testenv.InCI() {
					return false, fmt.Errorf("cosign is not installed in CI: .ci/run installs it (go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5)")
				}
				return err == nil, nil
			case "quickstart":
				_, err := os.Stat(filepath.Join(root, "examples", "quickstart", "cache", "vmlinuz"))
				if err != nil && testenv.InCI() {
					return false, fmt.Errorf("the quickstart inputs are missing in CI: run examples/quickstart/fetch-inputs.sh (make test does)")
				}
				return err == nil, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		RequireExplicitExec: true,
	})
}

// exitCmd runs a program and checks its exit code: exit N prog args…
func exitCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exit CODE program [args…]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exit: bad code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exit: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with code %d, want %d", args[1], got, want)
	}
}

// modeCmd checks permission bits: cvmkit-mode PATH MODE (octal).
func modeCmd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: cvmkit-mode PATH MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := uint64(fi.Mode().Perm()); (got == want) == neg {
		ts.Fatalf("%s has mode %04o, want %s%04o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// flipCmd flips the low bit of one byte of a file: cvmkit-flip FILE OFFSET.
func flipCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: cvmkit-flip FILE OFFSET")
	}
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	off, err := strconv.Atoi(args[1])
	if err != nil || off < 0 || off >= len(b) {
		ts.Fatalf("cvmkit-flip: offset %q outside the %d-byte file", args[1], len(b))
	}
	b[off] ^= 1
	ts.Check(os.WriteFile(p, b, 0o644))
}

// helpers builds the helper programs cvmkit runs (cvmkit-sbom,
// cvmkit-sigstore) once per test binary, into a temporary folder.
var helpers = func() func(root string) (string, error) {
	var once sync.Once
	var dir string
	var err error
	return func(root string) (string, error) {
		once.Do(func() {
			dir, err = os.MkdirTemp("", "cvmkit-helpers-*")
			if err != nil {
				return
			}
			// cvmkit-sbom is built in its own module (sbom/go.mod).
			for _, h := range []struct{ name, module string }{{"cvmkit-sbom", "sbom"}, {"cvmkit-sigstore", "."}} {
				c := exec.Command("go", "build", "-o", filepath.Join(dir, h.name), "./cmd/"+h.name)
				c.Dir = filepath.Join(root, h.module)
				if out, berr := c.CombinedOutput(); berr != nil {
					err = fmt.Errorf("building %s: %v\n%s", h.name, berr, out)
					return
				}
			}
		})
		return dir, err
	}
}()

// fakeVaultCmd starts a loopback HashiCorp Vault transit server holding a
// fresh ECDSA P-256 key for the rest of the script.
func fakeVaultCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: fake-vault NAME PUB")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	srv := httptest.NewServer(testenv.VaultTransit(args[0], "script-token", key))
	ts.Defer(srv.Close)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644))
	ts.Setenv("VAULT_ADDR", srv.URL)
	ts.Setenv("VAULT_TOKEN", "script-token")
}
