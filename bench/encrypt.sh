#!/usr/bin/env bash
# Weight encryption side by side with age (Debian package), in one run, on
# tmpfs (/dev/shm when present) so that the disk does not set the pace:
#   - one 2 GiB file: cvmkit (random salts), cvmkit --deterministic (what
#     cvmkit release does) and age; wall time, CPU-seconds per GB, peak RSS;
#   - a folder of 8 × 512 MiB: cvmkit on the folder, age file by file;
#   - decrypting the 2 GiB file: cvmkit and age.
# Issue 17's targets are printed beside the measured ratios:
#   CPU <= 1.7 CPU-s/GB (both modes); 2 GiB wall <= 1.0x age;
#   8 x 512 MiB wall <= 0.7x age; decrypt <= 0.8x age; peak RSS < 64 MiB.
#
# Usage: bench/encrypt.sh           (SIZE_MIB=2048, FILES=8, FILE_MIB=512)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${SIZE_MIB:-2048} files=${FILES:-8} file_mib=${FILE_MIB:-512}
need() { command -v "$1" >/dev/null || { echo "bench: $1 is missing: apt-get install -y $2" >&2; exit 1; }; }
need age age; need age-keygen age; [ -x /usr/bin/time ] || { echo "bench: apt-get install -y time" >&2; exit 1; }
base=${TMPDIR:-/tmp}; [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
work=$(mktemp -d "$base/cvmkit-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/cvmkit" ./cmd/cvmkit)
cv=$work/cvmkit

mkdir -p "$work/one" "$work/many"
head -c $((size_mib << 20)) /dev/urandom >"$work/one/weights.bin"
for i in $(seq 1 "$files"); do head -c $((file_mib << 20)) /dev/urandom >"$work/many/shard-$i.bin"; done
one_bytes=$((size_mib << 20)) many_bytes=$((files * file_mib << 20))

# run NAME BYTES OUT CMD…: the best of REPEAT runs (this is often a shared
# VM: the minimum is the least disturbed), wall seconds, CPU-s/GB, peak RSS;
# OUT (a file or folder the command creates) is removed between runs.
declare -A WALL CPU
repeat=${REPEAT:-3}
run() {
  local name=$1 bytes=$2 out=$3; shift 3
  local best="" line
  for _ in $(seq "$repeat"); do
    rm -rf "$out"
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    line=$(cat "$work/time")
    if [ -z "$best" ] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then best=$line; fi
  done
  read -r e u s k <<<"$best"
  WALL[$name]=$e CPU[$name]=$(awk -v u="$u" -v s="$s" -v b="$bytes" 'BEGIN { printf "%.2f", (u + s) / (b / 1e9) }')
  printf "%-34s %6.2f s wall  %5s CPU-s/GB  peak RSS %6.1f MiB  (best of %d)\n" "$name" "$e" "${CPU[$name]}" "$(awk -v k="$k" 'BEGIN { print k / 1024 }')" "$repeat"
}
ratio() { awk -v a="${WALL[$1]}" -v b="${WALL[$2]}" 'BEGIN { printf "%.2f", a / b }'; }

echo "on $(nproc) CPUs, work folder $work"
"$cv" keygen --hpke -o "$work/kbs" >/dev/null
"$cv" encrypt "$work/one" -o "$work/k" --release-id b@1 --recipient "hpke:$work/kbs.hpke.pub.json" --keyset-out "$work/dek.keyset" >/dev/null 2>&1
rm -rf "$work/k"
age-keygen -o "$work/age.key" 2>/dev/null
recipient=$(age-keygen -y "$work/age.key")

echo "== one $(numfmt --to=iec $one_bytes) file"
run "cvmkit encrypt (random)" $one_bytes "$work/e1" "$cv" encrypt "$work/one" -o "$work/e1" --release-id b@1 --recipient "hpke:$work/kbs.hpke.pub.json"
run "cvmkit encrypt --deterministic" $one_bytes "$work/e2" "$cv" encrypt "$work/one" -o "$work/e2" --release-id b@1 --keyset "$work/dek.keyset" --deterministic --recipient "hpke:$work/kbs.hpke.pub.json"
run "age encrypt" $one_bytes "$work/one.age" age -r "$recipient" -o "$work/one.age" "$work/one/weights.bin"
run "cvmkit decrypt" $one_bytes "$work/d1" "$cv" decrypt "$work/e1" -o "$work/d1" --hpke-key "$work/kbs.hpke.key.json"
cmp -s "$work/one/weights.bin" "$work/d1/weights.bin" || { echo "bench: decrypted file differs" >&2; exit 1; }
run "age decrypt" $one_bytes "$work/one.dec" age -d -i "$work/age.key" -o "$work/one.dec" "$work/one.age"
rm -rf "$work/e1" "$work/e2" "$work/d1" "$work/one.age" "$work/one.dec"

echo "== $files × $file_mib MiB folder"
run "cvmkit encrypt (folder)" $many_bytes "$work/e3" "$cv" encrypt "$work/many" -o "$work/e3" --release-id b@1 --keyset "$work/dek.keyset" --deterministic --recipient "hpke:$work/kbs.hpke.pub.json"
run "age, file by file" $many_bytes "$work/none" bash -c 'for f in "$1"/*.bin; do age -r "$2" -o "$f.age" "$f"; done; rm -f "$1"/*.age' _ "$work/many" "$recipient"

echo
echo "== ratios (target)"
echo "2 GiB encrypt, random:        $(ratio 'cvmkit encrypt (random)' 'age encrypt')x age (<= 1.0), ${CPU['cvmkit encrypt (random)']} CPU-s/GB (<= 1.7)"
echo "2 GiB encrypt, deterministic: $(ratio 'cvmkit encrypt --deterministic' 'age encrypt')x age (<= 1.0), ${CPU['cvmkit encrypt --deterministic']} CPU-s/GB (<= 1.7)"
echo "folder encrypt:               $(ratio 'cvmkit encrypt (folder)' 'age, file by file')x age file by file (<= 0.7)"
echo "decrypt:                      $(ratio 'cvmkit decrypt' 'age decrypt')x age (<= 0.8)"
