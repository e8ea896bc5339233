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
  cp "$dist"/*.tar.gz "$dist/checksums.txt" "$work/releases/v$version/"
  key=$dist/cosign.pub
  if [ -f "$dist/checksums.txt.sigstore.json" ]; then
    cp "$dist/checksums.txt.sigstore.json" "$work/releases/v$version/"
  else
    # A snapshot is not signed: sign its checksums with a throwaway key, as
    # the release's signs step does with the real identity.
    (cd "$work" && COSIGN_PASSWORD= cosign generate-key-pair --output-key-prefix release >/dev/null 2>&1)
    COSIGN_PASSWORD= cosign sign-blob --key "$work/release.key" --new-bundle-format --tlog-upload=false --yes \
      --bundle "$work/releases/v$version/checksums.txt.sigstore.json" "$work/releases/v$version/checksums.txt" >/dev/null 2>&1
    key=$work/release.pub
  fi
  # cosign reads Sigstore's trusted root from TUF unless given one: a key
  # needs no CA or log, so an empty root keeps the check offline.
  echo '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}' >"$work/trusted_root.json"
  export CVMKIT_COSIGN_TRUSTED_ROOT=$work/trusted_root.json
  port=$((20000 + RANDOM % 20000))
  (cd "$work/releases" && exec python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1) &
  server=$!
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
  export INPUT_CVMKIT_VERSION=v$version CVMKIT_RELEASES_URL=http://127.0.0.1:$port CVMKIT_COSIGN_KEY=$key
fi

# The runner starts the step in the workspace (here: the quickstart).
(cd "$root/examples/quickstart" && "$root/scripts/action.sh")

echo "== step outputs"
cat "$GITHUB_OUTPUT"
# get NAME: a step output, read as the runner reads GITHUB_OUTPUT (NAME=VALUE
# lines, or NAME<<DELIMITER, the value's lines, DELIMITER).
get() {
  awk -v name="$1" '
    d != "" { if ($0 == d) { d = ""; done = 1; next } if (!done) { out = out (n++ ? "\n" : "") $0 }; next }
    index($0, name "<<") == 1 { d = substr($0, length(name) + 3); next }
    index($0, name "=") == 1 && !done { out = substr($0, length(name) + 2); done = 1 }
    END { print out }' "$GITHUB_OUTPUT"
}
# names: every output name the file declares.
names() { awk 'd != "" { if ($0 == d) d = ""; next } /<</ { split($0, a, "<<"); print a[1]; d = a[2]; next } /=/ { split($0, a, "="); print a[1] }' "$GITHUB_OUTPUT" | sort; }
[ "$(get release-dir)" = "$work/dist" ] || { echo "test-action: release-dir wrong" >&2; exit 1; }
[ -d "$(get secrets-dir)" ] || { echo "test-action: no secrets folder" >&2; exit 1; }
hash=$(get root-hash)
[ "$hash" = "$(jq -r .verity.rootHash "$work/dist/image/image.lock.json")" ] && [ ${#hash} -eq 64 ] || { echo "test-action: root-hash wrong" >&2; exit 1; }
get measurements | jq -e '."snp-qemu-epyc"."qemu-EPYC-Milan-2vcpu" | length == 96' >/dev/null || { echo "test-action: SNP measurement missing" >&2; exit 1; }
get measurements | jq -e '."tdx-qemu-td".mrtd[0] | length == 96' >/dev/null || { echo "test-action: MRTD missing" >&2; exit 1; }
if grep -rlq primaryKeyId "$work/dist"; then echo "test-action: a keyset in the uploaded folder" >&2; exit 1; fi
"$root/bin/cvmkit" verify "$work/dist" --key "$root/examples/quickstart/cache/cosign.pub" >/dev/null 2>&1 || [ $# -gt 0 ] || { echo "test-action: the release does not verify" >&2; exit 1; }
[ "$(names | tr '\n' ' ')" = "cvmkit-version measurements release-dir root-hash secrets-dir " ] || { echo "test-action: unexpected step outputs: $(names)" >&2; exit 1; }
if [ $# -eq 0 ]; then
  # Hostile inputs (issue 23 item 8). A line break in the output path
  # injected step outputs: refused, and nothing is written.
  : >"$GITHUB_OUTPUT"
  if (cd "$root/examples/quickstart" && INPUT_OUTPUT=$'$work/d\ninjected-key=evil' "$root/scripts/action.sh") 2>"$work/err"; then
    echo "test-action: an output path with a line break was taken" >&2; exit 1
  fi
  grep -q "input output holds a line break" "$work/err" && [ ! -s "$GITHUB_OUTPUT" ] || { cat "$work/err" >&2; echo "test-action: injected outputs" >&2; exit 1; }
  # The args are not glob-expanded (a workspace file named like a flag
  # redirected the secrets), and secrets-dir is where the secrets went.
  ws=$work/workspace
  cp -r "$root/examples/quickstart/." "$ws"
  rm -rf "$ws/dist" "$ws/dist.secrets"
  touch "$ws/--secrets-out=globbed"
  : >"$GITHUB_OUTPUT"
  (cd "$ws" && INPUT_OUTPUT=$work/dist3 INPUT_ARGS='--secrets-out=keys-glob*' "$root/scripts/action.sh") 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  [ "$(get secrets-dir)" = "keys-glob*" ] && [ -d "$ws/keys-glob*" ] && [ ! -e "$ws/globbed" ] || { echo "test-action: secrets-dir $(get secrets-dir); the args were globbed or secrets-dir is not where the secrets are" >&2; exit 1; }
  echo "test-action: a line break in an input is refused; args are not globbed; secrets-dir follows --secrets-out"
fi
if [ $# -gt 0 ]; then
  # A changed archive is refused before anything runs.
  a=$(ls "$work/releases/$INPUT_CVMKIT_VERSION"/*.tar.gz)
  printf 'x' | dd of="$a" bs=1 seek=100 conv=notrunc 2>/dev/null
  : >"$GITHUB_OUTPUT"
  if (cd "$root/examples/quickstart" && INPUT_OUTPUT=$work/dist2 "$root/scripts/action.sh") 2>"$work/err"; then
    echo "test-action: a tampered archive was installed" >&2; exit 1
  fi
  grep -q "does not match checksums.txt" "$work/err" || { cat "$work/err" >&2; echo "test-action: wrong refusal" >&2; exit 1; }
  echo "test-action: a tampered archive is refused: $(grep -o 'cvmkit_.*does not match checksums.txt' "$work/err")"
fi
echo "test-action: OK ($INPUT_CVMKIT_VERSION)"
