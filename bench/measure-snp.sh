#!/usr/bin/env bash
# Benchmark cvmkit measure snp as users run it: whole processes (start-up,
# reading the 2 MiB Debian OVMF.fd, parsing, hashing, printing), then the
# in-process go test benchmarks.
#
# Targets (2-core machine): one digest (4 vCPUs) under 20 ms per process; the
# 21-entry matrix (vCPUs 1,2,4,8,16,32,64 × EPYC-v4, EPYC-Milan, EPYC-Genoa)
# under 50 ms per process.
#
# Usage: bench/measure-snp.sh [RUNS]   (needs ../shared or CVMKIT_SHARED)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${CVMKIT_SHARED:-$root/../shared}
runs=${1:-50}
ovmf=$shared/fixtures/firmware/OVMF.fd
[ -f "$ovmf" ] || { echo "bench: $ovmf is missing: set CVMKIT_SHARED" >&2; exit 1; }
bin=$(mktemp -d)/cvmkit
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/cvmkit)

# time_runs NAME TARGET_MS CMD…: run CMD RUNS times, print mean/min/max ms.
time_runs() {
  local name=$1 target=$2; shift 2
  "$@" >/dev/null # warm the page cache
  local t0 t1 ms all=()
  for _ in $(seq "$runs"); do
    t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N)
    all+=($(( (t1 - t0) / 1000 )))
  done
  printf '%s\n' "${all[@]}" | awk -v name="$name" -v target="$target" -v n="$runs" '
    { s += $1; if (min == "" || $1 < min) min = $1; if ($1 > max) max = $1 }
    END { mean = s / n / 1000; printf "%-34s %3d runs  mean %6.2f ms  min %6.2f ms  max %6.2f ms  target < %d ms: %s\n",
          name, n, mean, min / 1000, max / 1000, target, (mean < target ? "met" : "MISSED") }'
}

time_runs "one digest (4 vCPUs, EPYC-v4)" 20 \
  "$bin" measure snp --ovmf "$ovmf" --vcpus 4 --vcpu-type EPYC-v4
time_runs "21-entry matrix" 50 \
  "$bin" measure snp --ovmf "$ovmf" --vcpus 1,2,4,8,16,32,64 --vcpu-type EPYC-v4,EPYC-Milan,EPYC-Genoa

echo
cd "$root" && go test ./measure/snp -run '^$' -bench . -benchmem
