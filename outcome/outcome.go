// Package outcome defines the errors that callers branch on and the process
// exit codes they map to.
//
// Domain packages return these typed errors (wrapped with context) so that a
// script running cvmkit can tell a bad signature from a measurement that does
// not match, from a policy violation, from a missing file. The CLI maps them
// to exit codes with [ExitCode]; the table in docs/exit-codes.md is generated
// from [Codes].
package outcome

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Code is a process exit status with its documented meaning.
type Code struct {
	Value   int
	Name    string
	Meaning string
}

// The exit codes. Values are part of cvmkit's interface: never renumber.
var (
	OK          = Code{0, "ok", "The command did what was asked; every check it ran passed."}
	Failure     = Code{1, "failure", "Any failure not listed below: an I/O error, a tool that could not run, a bug."}
	Usage       = Code{2, "usage", "The command line was wrong: unknown command or flag, missing or extra argument, bad flag value."}
	Input       = Code{3, "input", "An input file was invalid: a config that does not validate, malformed firmware, a file whose digest differs from its pin."}
	Signature   = Code{4, "signature", "A signature or certificate chain did not verify (wrong key, tampered bundle, untrusted or expired signer)."}
	Mismatch    = Code{5, "mismatch", "A recomputed value differs from the expected one: a measurement, a subject digest, a rebuilt artifact."}
	Policy      = Code{6, "policy", "Evidence was well-formed and authentic but a policy rejected it (debug enabled, version not allowed, unbound input)."}
	Inventory   = Code{7, "inventory", "A release folder has a missing or an unexpected file."}
	Interrupted = Code{130, "interrupted", "The command was stopped by SIGINT or SIGTERM; no output that looks complete was left behind."}
)

// Codes lists every exit code in ascending order.
var Codes = []Code{OK, Failure, Usage, Input, Signature, Mismatch, Policy, Inventory, Interrupted}

// Error is an error classified with an exit code and optional hints for the
// user. Use the constructors ([InputError], [SignatureError], …) or [WithHint].
type Error struct {
	Code  Code
	Err   error
	Hints []string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func classify(c Code, err error, hints []string) error {
	if err == nil {
		return nil
	}
	return &Error{Code: c, Err: err, Hints: hints}
}

// UsageError marks err as a command-line mistake.
func UsageError(err error, hints ...string) error { return classify(Usage, err, hints) }

// InputError marks err as caused by an invalid input file.
func InputError(err error, hints ...string) error { return classify(Input, err, hints) }

// SignatureError marks err as a failed signature or certificate check.
func SignatureError(err error, hints ...string) error { return classify(Signature, err, hints) }

// PolicyError marks err as a policy rejecting otherwise valid evidence.
func PolicyError(err error, hints ...string) error { return classify(Policy, err, hints) }

// InventoryError marks err as a missing or unexpected file in a release.
func InventoryError(err error, hints ...string) error { return classify(Inventory, err, hints) }

// WithHint adds hints to err without changing its exit code.
func WithHint(err error, hints ...string) error { return classify(Failure, err, hints) }

// MismatchError reports that a recomputed value differs from the expected one.
// Subject names what was compared (a file, a platform configuration) and
// Register the value within it (MEASUREMENT, MRTD, RTMR1, sha256 …).
type MismatchError struct {
	Subject  string
	Register string
	Want     string
	Got      string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s: %s mismatch: want %s, got %s", e.Subject, e.Register, e.Want, e.Got)
}

// ExitCode maps an error to the exit code of the most specific
// classification in its chain. A nil error is [OK].
func ExitCode(err error) Code {
	if err == nil {
		return OK
	}
	if errors.Is(err, context.Canceled) {
		return Interrupted
	}
	var mm *MismatchError
	if errors.As(err, &mm) {
		return Mismatch
	}
	// The outermost classification other than Failure wins; WithHint wrappers
	// (Failure) do not hide a classification underneath them.
	code := Failure
	walk(err, func(e error) bool {
		if oe, ok := e.(*Error); ok && oe.Code != Failure {
			code = oe.Code
			return false
		}
		return true
	})
	return code
}

// Hints returns every hint attached anywhere in err's chain, outermost first,
// without duplicates.
func Hints(err error) []string {
	var hints []string
	seen := map[string]bool{}
	walk(err, func(e error) bool {
		if oe, ok := e.(*Error); ok {
			for _, h := range oe.Hints {
				h = strings.TrimSpace(h)
				if h != "" && !seen[h] {
					seen[h] = true
					hints = append(hints, h)
				}
			}
		}
		return true
	})
	return hints
}

// walk visits err and everything it wraps (including joined errors) depth
// first until visit returns false.
func walk(err error, visit func(error) bool) bool {
	if err == nil {
		return true
	}
	if !visit(err) {
		return false
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return walk(u.Unwrap(), visit)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if !walk(e, visit) {
				return false
			}
		}
	}
	return true
}
