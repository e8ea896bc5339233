#!/usr/bin/env bash
# Run every fuzz target in the module for the given time each (default 1m).
# go test -fuzz takes one target per run, so this lists them first. New
# coverage inputs are minimised for at most 10 s (the default 60 s stalls the
# targets whose runs take milliseconds, such as FuzzDigest).
set -euo pipefail
t=${1:-1m}
cd "$(dirname "$0")/.."
# Both modules: the core and sbom/ (its own module, for syft).
for mod in . sbom; do (
cd "$mod"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $target ($t)"
    go test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$t" -fuzzminimizetime 10s
  done
done
) done
