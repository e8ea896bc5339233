#!/usr/bin/env bash
# The GitHub Action's step (action.yml): install cvmkit, run `cvmkit release`,
# write the step outputs. It runs the same way outside GitHub, which is how
# scripts/test-action.sh tests it:
#
#   GITHUB_ACTION_PATH  this repository (source builds, and the release key)
#   GITHUB_OUTPUT       the file the step outputs go to
#   RUNNER_TEMP         scratch space
#   INPUT_CONFIG INPUT_OUTPUT INPUT_CVMKIT_VERSION INPUT_ARGS  the inputs
#   CVMKIT_RELEASES_URL where release assets are downloaded from
#                       (default https://github.com/cvmkit/cvmkit/releases/download)
#   CVMKIT_COSIGN_IDENTITY, CVMKIT_COSIGN_ISSUER   the signer of checksums.txt
#                       (default: cvmkit's release workflow, keyless);
#   CVMKIT_COSIGN_KEY   a public key instead (mirrors, tests), with
#   CVMKIT_COSIGN_TRUSTED_ROOT  a trusted_root.json for cosign offline
set -euo pipefail

action=${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set}
out_file=${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}
tmp=$(mktemp -d "${RUNNER_TEMP:-/tmp}/cvmkit-action.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
config=${INPUT_CONFIG:-cvmkit.yaml}
output=${INPUT_OUTPUT:-dist}
want=${INPUT_CVMKIT_VERSION:-source}

log() { echo "cvmkit-action: $*" >&2; }
fail() { echo "::error title=cvmkit::${*//$'\n'/ }" >&2; exit 1; }

# Inputs are data, never syntax: a newline in a path would inject step
# outputs (GITHUB_OUTPUT is line-based), and the args are split on
# whitespace without glob expansion (a workspace file named like a flag
# must not become one).
for v in config output want; do
  case ${!v} in *$'\n'*|*$'\r'*) fail "input $v holds a line break: give a path on one line" ;; esac
done
case ${INPUT_ARGS:-} in *$'\n'*|*$'\r'*) fail "input args holds a line break: give the arguments on one line" ;; esac
read -r -a args <<<"${INPUT_ARGS:-}"

# output NAME VALUE appends a step output in GitHub's multi-line form
# (NAME<<DELIMITER ... DELIMITER) with a delimiter the value does not hold.
output() {
  local d
  d="cvmkit_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  case $2 in *"$d"*) fail "step output $1 holds its delimiter" ;; esac
  printf '%s<<%s\n%s\n%s\n' "$1" "$d" "$2" "$d" >>"$out_file"
}

# 1. cvmkit and its helpers.
if [ "$want" = source ]; then
  log "building cvmkit from $action (embedded cvmkit-init)"
  make -C "$action" build >&2
  bin="$action/bin"
else
  case "$want" in v[0-9]*) ;; *) fail "cvmkit-version '$want': want a release tag like v1.2.3, or source" ;; esac
  base=${CVMKIT_RELEASES_URL:-https://github.com/cvmkit/cvmkit/releases/download}/$want
  os=$(uname -s | tr A-Z a-z)
  case $(uname -m) in x86_64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) fail "unsupported machine $(uname -m)" ;; esac
  archive="cvmkit_${want#v}_${os}_${arch}.tar.gz"
  for f in "$archive" checksums.txt checksums.txt.sigstore.json; do
    curl -fsSL --retry 3 -o "$tmp/$f" "$base/$f" || fail "downloading $base/$f"
  done
  # The checksums file is signed by cvmkit's release workflow.
  if [ -n "${CVMKIT_COSIGN_KEY:-}" ]; then
    cosign verify-blob --new-bundle-format --key "$CVMKIT_COSIGN_KEY" ${CVMKIT_COSIGN_TRUSTED_ROOT:+--trusted-root "$CVMKIT_COSIGN_TRUSTED_ROOT"} \
      --bundle "$tmp/checksums.txt.sigstore.json" --insecure-ignore-tlog "$tmp/checksums.txt" >&2 \
      || fail "checksums.txt of $want is not signed by $CVMKIT_COSIGN_KEY"
  else
    cosign verify-blob --new-bundle-format --bundle "$tmp/checksums.txt.sigstore.json" \
      --certificate-identity "${CVMKIT_COSIGN_IDENTITY:-https://github.com/cvmkit/cvmkit/.github/workflows/release.yml@refs/tags/$want}" \
      --certificate-oidc-issuer "${CVMKIT_COSIGN_ISSUER:-https://token.actions.githubusercontent.com}" "$tmp/checksums.txt" >&2 \
      || fail "checksums.txt of $want is not signed by cvmkit's release workflow"
  fi
  (cd "$tmp" && grep -E "  $archive\$" checksums.txt | sha256sum -c --status) || fail "$archive does not match checksums.txt"
  mkdir -p "$tmp/bin"
  tar -xzf "$tmp/$archive" -C "$tmp/bin" cvmkit cvmkit-sbom cvmkit-sigstore
  bin="$tmp/bin"
fi
export PATH="$bin:$PATH"
version=$(cvmkit version --json | jq -r '.version + " " + (.commit // "")')
log "cvmkit $version"

# 2. The release. Its result (--json) names the folders it wrote: the
# secrets folder may be set by --secrets-out or the config's secrets.
cvmkit release -f "$config" -o "$output" --json ${args[@]+"${args[@]}"} >"$tmp/result.json"
jq -r '.stages[] | "cvmkit-action: \(.stage) \(.status) \(.detail // "")"' "$tmp/result.json" >&2
secrets=$(jq -r '.secrets // empty' "$tmp/result.json")
[ -z "$secrets" ] || [ -d "$secrets" ] || secrets=

# 3. Never a secret in what is uploaded: the secrets folder is beside the
# release, and no Tink keyset may be inside it.
if grep -rlq '"primaryKeyId"' "$output"; then
  fail "$output holds a cleartext keyset: not uploading it"
fi

# 4. Outputs.
lock="$output/image/image.lock.json"
root_hash=$(jq -r '.verity.rootHash // empty' "$lock")
measurements=$(cd "$output/measurements" && jq -cn '
  reduce (inputs | {name: (input_filename | sub("^\\./"; "") | sub("\\.json$"; "")), doc: .}) as $d ({};
    .[$d.name] = (if $d.doc.measurements then
        ($d.doc.measurements | map({key: .name, value: .digest}) | from_entries)
      else {mrtd: [$d.doc.mrtd[].value], rtmr: $d.doc.rtmr} end))' ./*.json)
output release-dir "$output"
output secrets-dir "$secrets"
output root-hash "$root_hash"
output measurements "$measurements"
output cvmkit-version "$version"
log "release in $output (root hash $root_hash)"
