#!/usr/bin/env bash
# Run the GitHub Action's step (scripts/action.sh) the way the runner does,
# on the quickstart example, and check its outputs: no GitHub needed.
#   scripts/test-action.sh            cvmkit built from this checkout (source)
#   scripts/test-action.sh DIST_DIR   cvmkit installed from a release in
#                                     DIST_DIR (goreleaser's dist/, e.g. from
#                                     make snapshot), served over loopback and
#                                     verified with the key in DIST_DIR/cosign.pub
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/cvmkit-action-test.XXXXXX")
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export GITHUB_ACTION_PATH=$root GITHUB_OUTPUT=$work/output RUNNER_TEMP=$work
export INPUT_CONFIG=cvmkit.yaml INPUT_OUTPUT=$work/dist INPUT_ARGS="" INPUT_CVMKIT_VERSION=source
: >"$GITHUB_OUTPUT"
# The quickstart's signing key (demo.sh); in a workflow, a secret.
export COSIGN_PASSWORD=${COSIGN_PASSWORD:-quickstart-demo}

if [ $# -gt 0 ]; then
  dist=$(cd "$1" && pwd)
  version=$(jq -r .version "$dist/metadata.json")
  mkdir -p "$work/releases/v$version"
  cp "$dist"/*.tar.gz "$dist/checksums.txt" "$dist/checksums.txt.sigstore.json" "$work/releases/v$version/"
  port=$((20000 + RANDOM % 20000))
  (cd "$work/releases" && exec python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1) &
  server=$!
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
  export INPUT_CVMKIT_VERSION=v$version CVMKIT_RELEASES_URL=http://127.0.0.1:$port CVMKIT_COSIGN_KEY=$dist/cosign.pub
fi

# The runner starts the step in the workspace (here: the quickstart).
(cd "$root/examples/quickstart" && "$root/scripts/action.sh")

echo "== step outputs"
cat "$GITHUB_OUTPUT"
get() { sed -n "s/^$1=//p" "$GITHUB_OUTPUT"; }
[ "$(get release-dir)" = "$work/dist" ] || { echo "test-action: release-dir wrong" >&2; exit 1; }
[ -d "$(get secrets-dir)" ] || { echo "test-action: no secrets folder" >&2; exit 1; }
hash=$(get root-hash)
[ "$hash" = "$(jq -r .verity.rootHash "$work/dist/image/image.lock.json")" ] && [ ${#hash} -eq 64 ] || { echo "test-action: root-hash wrong" >&2; exit 1; }
get measurements | jq -e '."snp-qemu-epyc"."qemu-EPYC-Milan-2vcpu" | length == 96' >/dev/null || { echo "test-action: SNP measurement missing" >&2; exit 1; }
get measurements | jq -e '."tdx-qemu-td".mrtd[0] | length == 96' >/dev/null || { echo "test-action: MRTD missing" >&2; exit 1; }
if grep -rlq primaryKeyId "$work/dist"; then echo "test-action: a keyset in the uploaded folder" >&2; exit 1; fi
"$root/bin/cvmkit" verify "$work/dist" --key "$root/examples/quickstart/cache/cosign.pub" >/dev/null 2>&1 || [ $# -gt 0 ] || { echo "test-action: the release does not verify" >&2; exit 1; }
echo "test-action: OK ($INPUT_CVMKIT_VERSION)"
