#!/usr/bin/env bash
# Benchmark weight encryption as users run it, in one go: encrypt and decrypt
# a file from the page cache with cvmkit, age (Debian package) and
# `openssl enc -aes-256-ctr`, and report GB/s and peak RSS (GNU time).
#
# Targets (2 cores): cvmkit encrypt >= 4 GB/s and >= 3x age; peak RSS under
# 256 MiB for an 8 GiB input (SIZE=8G); one random 1 MiB segment decrypted in
# under 1 ms (go test -bench BenchmarkReadAtSegment, run at the end).
#
# Usage: bench/encrypt.sh            (2 GiB)
#        SIZE=8G bench/encrypt.sh    (needs 3x SIZE of free disk under $TMPDIR)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size=${SIZE:-2G}
need() { command -v "$1" >/dev/null || { echo "bench: $1 is missing: apt-get install -y $2" >&2; exit 1; }; }
need age age; need age-keygen age; need openssl openssl; [ -x /usr/bin/time ] || { echo "bench: apt-get install -y time" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cvmkit-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/cvmkit" ./cmd/cvmkit)
mkdir "$work/model"
head -c "$size" /dev/urandom > "$work/model/weights.bin"
bytes=$(stat -c %s "$work/model/weights.bin")
sync # no writeback of the input competes with the runs
cat "$work/model/weights.bin" > /dev/null # into the page cache

# run NAME CMD…: time CMD, print GB/s and peak RSS.
run() {
  local name=$1; shift
  sync
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" > /dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r secs kib < "$work/time"
  awk -v n="$name" -v b="$bytes" -v s="$secs" -v k="$kib" 'BEGIN { printf "%-26s %6.2f s  %6.2f GB/s  peak RSS %6.1f MiB\n", n, s, b / s / 1e9, k / 1024 }'
}

echo "input: $(numfmt --to=iec "$bytes") on $(nproc) CPUs"
"$work/cvmkit" keygen --hpke -o "$work/kbs" > /dev/null
run "cvmkit encrypt" "$work/cvmkit" encrypt "$work/model" -o "$work/enc" --release-id bench@1 --recipient "hpke:$work/kbs.hpke.pub.json"
run "cvmkit decrypt" "$work/cvmkit" decrypt "$work/enc" -o "$work/dec" --hpke-key "$work/kbs.hpke.key.json"
cmp -s "$work/model/weights.bin" "$work/dec/weights.bin" || { echo "bench: decrypted file differs" >&2; exit 1; }
rm -rf "$work/dec"

age-keygen -o "$work/age.key" 2>/dev/null
recipient=$(age-keygen -y "$work/age.key")
run "age encrypt" age -r "$recipient" -o "$work/age.enc" "$work/model/weights.bin"
run "age decrypt" age -d -i "$work/age.key" -o "$work/age.dec" "$work/age.enc"
rm -f "$work/age.enc" "$work/age.dec"

k=$(openssl rand -hex 32); iv=$(openssl rand -hex 16)
run "openssl aes-256-ctr enc" openssl enc -aes-256-ctr -K "$k" -iv "$iv" -in "$work/model/weights.bin" -out "$work/ossl.enc"
run "openssl aes-256-ctr dec" openssl enc -d -aes-256-ctr -K "$k" -iv "$iv" -in "$work/ossl.enc" -out "$work/ossl.dec"

echo
cd "$root" && go test ./encrypt -run '^$' -bench 'Engine|ReadAtSegment' -benchmem
