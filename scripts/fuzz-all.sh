#!/usr/bin/env bash
# Run every fuzz target of both modules (the core and sbom/) for the given
# time each (default 1m), and report every target's result and exec count,
# whatever the others did; exit 1 if any target failed.
#
#   scripts/fuzz-all.sh [TIME] [MIN_EXECS]
#
# go test -fuzz takes one target per run, so the targets are listed first.
# New coverage inputs are minimised for at most 100 runs: minimising for
# the default 60 s stalls targets whose runs take milliseconds (a target
# spent its whole time minimising and ran 50 inputs). With MIN_EXECS, a
# target that ran fewer inputs than that fails too (CI: a target that
# barely runs proves nothing).
set -uo pipefail
t=${1:-1m}
min=${2:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp -d "${TMPDIR:-/tmp}/cvmkit-fuzz.XXXXXX")
trap 'rm -rf "$log"' EXIT
results=()
failed=0
for mod in . sbom; do
  cd "$root/$mod" || exit 1
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
      out="$log/$target.txt"
      echo "== $pkg $target ($t)" >&2
      go test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$t" -fuzzminimizetime 100x >"$out" 2>&1
      rc=$?
      execs=$(grep -o 'execs: [0-9]*' "$out" | tail -n 1 | awk '{print $2}')
      execs=${execs:-0}
      status=ok
      if [ $rc -ne 0 ]; then
        status=FAILED
        tail -n 30 "$out" >&2
      elif [ "$execs" -lt "$min" ]; then
        status="TOO FEW EXECS (< $min)"
      fi
      [ "$status" = ok ] || failed=$((failed + 1))
      results+=("$(printf '%-12s %10s  %-24s %s' "$status" "$execs" "$target" "${pkg#github.com/cvmkit/cvmkit}")")
    done
  done
done
echo
printf '%-12s %10s  %-24s %s\n' RESULT EXECS TARGET PACKAGE
printf '%s\n' "${results[@]}"
echo "fuzz-all: ${#results[@]} targets, $failed failed ($t each)"
[ "$failed" -eq 0 ]
