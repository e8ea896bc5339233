#!/usr/bin/env bash
# The whole release with a large model: the quickstart image and config with
# a generated model of MODEL_GIB GiB (default 4: one MODEL_GIB-1 GiB tensor
# file, one 1 GiB shard and a small config.json), on tmpfs when there is one,
# so that the disk does not set the pace. It prints each stage's seconds from
# 'cvmkit release --json' and, as its last line,
#
#   hashing after encrypt: R
#
# where R = (policies + sign seconds) / (encrypt seconds): the work spent
# after the weights are encrypted, which carries every digest forward from
# the stage that computed it instead of reading the release again (issue 14:
# R <= 0.10; it was about 0.9 when policies and signing re-hashed every file).
#
# Needs the quickstart inputs (make demo-inputs) and cvmkit's helpers, which
# it builds, from this checkout or SRC (another checkout, for a before/after
# comparison). Usage: bench/release.sh   (MODEL_GIB=4, REPEAT=1, SRC=.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
qs=$root/examples/quickstart
[ -f "$qs/cache/vmlinuz" ] || { echo "bench: the quickstart inputs are missing: run make demo-inputs" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: jq is missing: apt-get install -y jq" >&2; exit 1; }
gib=${MODEL_GIB:-4} repeat=${REPEAT:-1}
base=${TMPDIR:-/tmp}; [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
work=$(mktemp -d "$base/cvmkit-bench-release.XXXXXX")
trap 'rm -rf "$work"' EXIT

src=${SRC:-$root}
(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$work/bin/cvmkit" ./cmd/cvmkit)
if [ -d "$src/sbom/cmd/cvmkit-sbom" ]; then # its own module since issue 14
  (cd "$src/sbom" && CGO_ENABLED=0 go build -trimpath -o "$work/bin/cvmkit-sbom" ./cmd/cvmkit-sbom)
else
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$work/bin/cvmkit-sbom" ./cmd/cvmkit-sbom)
fi

# The quickstart config, its inputs in place, the model replaced.
mkdir -p "$work/rel/model"
cp -r "$qs/cache" "$qs/rootfs" "$work/rel/"
rm -rf "$work/rel/cache/weights"
sed -e "s|^  source: cache/weights|  source: $work/rel/model|" "$qs/cvmkit.yaml" >"$work/rel/cvmkit.yaml"
grep -q "source: $work/rel/model" "$work/rel/cvmkit.yaml" || { echo "bench: could not point the config at the generated model" >&2; exit 1; }
head -c $(((gib - 1) << 30)) /dev/urandom >"$work/rel/model/model-00001.safetensors"
head -c $((1 << 30)) /dev/urandom >"$work/rel/model/model-00002.safetensors"
echo '{"architectures":["bench"]}' >"$work/rel/model/config.json"
echo "bench: ${gib} GiB model, quickstart image, $(nproc) CPUs, on $base" >&2

export COSIGN_PASSWORD=${COSIGN_PASSWORD:-quickstart-demo} CVMKIT_SBOM=$work/bin/cvmkit-sbom
best=""
for i in $(seq "$repeat"); do
  rm -rf "$work/rel/dist" "$work/rel/dist.secrets"
  (cd "$work/rel" && "$work/bin/cvmkit" release -f cvmkit.yaml -o dist --json >"$work/out.json" 2>"$work/err") || { cat "$work/err" >&2; exit 1; }
  r=$(jq -r '[.stages[] | {(.stage): .seconds}] | add | ((.policies + .sign) / .encrypt)' "$work/out.json")
  if [ -z "$best" ] || awk -v a="$r" -v b="$best" 'BEGIN{exit !(a < b)}'; then best=$r; cp "$work/out.json" "$work/best.json"; fi
done
jq -r '.stages[] | "\(.stage)\t\(.seconds | . * 1000 | round / 1000) s\t\(.detail)"' "$work/best.json"
printf 'release size: %s\n' "$(du -sh "$work/rel/dist" | cut -f1)"
printf 'hashing after encrypt: %.4f\n' "$best"
