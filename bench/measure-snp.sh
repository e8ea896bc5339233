#!/usr/bin/env bash
# Benchmark cvmkit measure snp as users run it, as whole processes (start-up,
# reading the 2 MiB Debian OVMF.fd, parsing, hashing, printing), against
# virtee/sev-snp-measure on the same firmware in the same run (alternating,
# RUNS times each), then the in-process go test benchmarks.
#
# Issue 17's targets, printed as ratios:
#   one digest (4 vCPUs, EPYC-v4)       <= 0.08x sev-snp-measure's time
#   the 21-entry matrix in one call     <= 1.1x one digest
#                                          (vCPUs 1,2,4,8,16,32,64 x EPYC-v4, -Milan, -Genoa)
#   start-up (cvmkit version)           <= 1.3x age --version
#
# Usage: bench/measure-snp.sh [RUNS]   (needs ../shared or CVMKIT_SHARED;
#   sev-snp-measure on PATH (pip install sev-snp-measure) or its command in
#   SEV_SNP_MEASURE, e.g. "python3 ~/sev-snp-measure/sev-snp-measure.py";
#   age: apt-get install -y age)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${CVMKIT_SHARED:-$root/../shared}
runs=${1:-30}
ovmf=$shared/fixtures/firmware/OVMF.fd
[ -f "$ovmf" ] || { echo "bench: $ovmf is missing: set CVMKIT_SHARED" >&2; exit 1; }
read -r -a peer <<<"${SEV_SNP_MEASURE:-$(command -v sev-snp-measure || true)}"
[ ${#peer[@]} -gt 0 ] || { echo "bench: sev-snp-measure is missing: pip install sev-snp-measure, or set SEV_SNP_MEASURE to its command" >&2; exit 1; }
command -v age >/dev/null || { echo "bench: age is missing: apt-get install -y age" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$work/cvmkit
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/cvmkit)

one=("$bin" measure snp --ovmf "$ovmf" --vcpus 4 --vcpu-type EPYC-v4)
matrix=("$bin" measure snp --ovmf "$ovmf" --vcpus 1,2,4,8,16,32,64 --vcpu-type EPYC-v4,EPYC-Milan,EPYC-Genoa)
theirs=("${peer[@]}" --mode snp --vcpus 4 --vcpu-type EPYC-v4 --ovmf "$ovmf")
[ "$("${one[@]}")" = "$("${theirs[@]}")" ] || { echo "bench: cvmkit and sev-snp-measure give different digests" >&2; exit 1; }
echo "same digest from both: $("${one[@]}" | cut -c1-16)…"

# Each command RUNS times, the commands alternating so that a busy moment of
# this (often shared) machine falls on all of them; mean in ms.
names=(one matrix theirs version age)
cmds=("${one[*]}" "${matrix[*]}" "${theirs[*]}" "$bin version" "age --version")
declare -A sum
for n in "${names[@]}"; do sum[$n]=0; done
for _ in $(seq "$runs"); do
  for i in "${!names[@]}"; do
    t0=$(date +%s%N); ${cmds[$i]} >/dev/null; t1=$(date +%s%N)
    sum[${names[$i]}]=$(( ${sum[${names[$i]}]} + (t1 - t0) / 1000 ))
  done
done
ms() { awk -v s="${sum[$1]}" -v n="$runs" 'BEGIN { printf "%.2f", s / n / 1000 }'; }
ratio() { awk -v a="${sum[$1]}" -v b="${sum[$2]}" -v t="$3" 'BEGIN { r = a / b; printf "%.3fx (target <= %s): %s", r, t, (r <= t ? "met" : "MISSED") }'; }
printf '%-36s %8s ms  (mean of %d)\n' "cvmkit, one digest (4 vCPUs)" "$(ms one)" "$runs" "cvmkit, 21-entry matrix" "$(ms matrix)" "$runs" \
  "sev-snp-measure, one digest" "$(ms theirs)" "$runs" "cvmkit version" "$(ms version)" "$runs" "age --version" "$(ms age)" "$runs"
echo "one digest / sev-snp-measure:        $(ratio one theirs 0.08)"
echo "matrix / one digest:                 $(ratio matrix one 1.1)"
echo "start-up / age --version:            $(ratio version age 1.3)"

echo
cd "$root" && go test ./measure/snp -run '^$' -bench . -benchmem
