// Package epoch reads SOURCE_DATE_EPOCH, the one source of time for every
// artifact cvmkit writes (https://reproducible-builds.org/specs/source-date-epoch/).
//
// It is the only place that interprets the variable, so that every command
// accepts and rejects the same values with the same message.
package epoch

import (
	"fmt"
	"strconv"
	"time"
)

// Var is the environment variable's name.
const Var = "SOURCE_DATE_EPOCH"

// max is 9999-12-31T23:59:59Z: formats such as tar, cpio and SPDX cannot
// express later times, and a larger value is almost certainly a typo (for
// example milliseconds instead of seconds).
const max = 253402300799

// Parse interprets s as SOURCE_DATE_EPOCH: a non-negative decimal count of
// seconds since 1970-01-01T00:00:00Z, with no sign, fraction or spaces.
func Parse(s string) (time.Time, error) {
	bad := func(why string) error {
		return fmt.Errorf("%s=%q is not valid: %s; it must be a decimal count of seconds since 1970-01-01 UTC, such as 1700000000 (for the last commit: SOURCE_DATE_EPOCH=$(git log -1 --format=%%ct))", Var, s, why)
	}
	if s == "" {
		return time.Time{}, bad("it is empty")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return time.Time{}, bad(fmt.Sprintf("%q is not a decimal digit", c))
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > max {
		return time.Time{}, bad("it is after the year 9999 (milliseconds instead of seconds?)")
	}
	return time.Unix(n, 0).UTC(), nil
}

// FromEnv reads SOURCE_DATE_EPOCH through lookup (os.LookupEnv in the CLI;
// a map in tests). It returns ok=false when the variable is unset, and an
// error when it is set but invalid: a set-but-wrong value must never fall
// back to a default silently.
func FromEnv(lookup func(string) (string, bool)) (t time.Time, ok bool, err error) {
	s, set := lookup(Var)
	if !set {
		return time.Time{}, false, nil
	}
	t, err = Parse(s)
	if err != nil {
		return time.Time{}, false, err
	}
	return t, true, nil
}
