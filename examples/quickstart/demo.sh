#!/usr/bin/env bash
# The quickstart release job (make demo runs it): fetch the pinned inputs,
# validate the config, run the whole release with cvmkit release (the SEV-SNP
# firmware from source the first time, then build, measure, encrypt, SBOMs,
# key-authority policies, sign), check every configuration binds the whole
# image, verify it as an
# auditor would (signatures, every file, a rebuild that recomputes every
# measurement), check that a second release gives the same bytes, and that
# the key authority's copy of the data key decrypts the weights.
# Outputs go to examples/quickstart/dist/ (rebuilt each run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cvmkit=${CVMKIT:-$here/../../bin/cvmkit}
cd "$here"
./fetch-inputs.sh
rm -rf dist dist.again dist.secrets dist.again.secrets

step() { printf '\n== %s\n' "$*" >&2; }

# The demo's signing key lives in cache/ with a demo password; a real
# release keeps its key (or uses keyless signing) and password out of the tree.
export COSIGN_PASSWORD=${COSIGN_PASSWORD:-quickstart-demo}
[ -f cache/cosign.key ] || "$cvmkit" keygen --signing -o cache/cosign > /dev/null

step "validate the release config"
"$cvmkit" config validate cvmkit.yaml

step "release: build, measure, encrypt, SBOMs, policies, sign"
"$cvmkit" release -f cvmkit.yaml -o dist

step "verify it as an auditor: signatures, every file, and a rebuild"
# The firmware is not built a second time here (a few minutes): the
# auditor's full rebuild drops --skip-firmware-build; make firmware-check
# builds it twice and compares.
"$cvmkit" verify dist --key cache/cosign.pub --rebuild cvmkit.yaml --skip-firmware-build

step "every configuration binds firmware, kernel, initrd, command line and root"
for b in dist/key-authority/*/bindings.json; do
  jq -e '.allow_unbound == false and all(.configurations[]; .unbound == [])' "$b" > /dev/null || {
    echo "demo: FAILED — $b leaves something unbound" >&2; jq '.configurations[] | select(.unbound != [])' "$b" >&2; exit 1; }
  echo "$b: $(jq '.configurations | length' "$b") configurations, none unbound"
done

step "reproducible: a second release gives the same bytes"
"$cvmkit" release -f cvmkit.yaml -o dist.again > /dev/null 2>&1
diff -r dist dist.again
rm -rf dist.again dist.again.secrets
echo "identical: $(find dist -type f | wc -l) files"

step "the published release holds no secret; the key authority's copy is in dist.secrets/"
if grep -rlE 'primaryKeyId|"keyMaterialType"' dist; then
  echo "demo: FAILED — a cleartext Tink keyset is inside the release" >&2
  exit 1
fi
echo "no cleartext keyset in dist/ ($(find dist -type f | wc -l) files); secrets: $(cd dist.secrets && find . -type f | sed 's|^\./||')"
"$cvmkit" verify dist --key cache/cosign.pub > /dev/null
echo "cvmkit verify dist: ok on exactly what is published"

step "the key authority's copy of the data key decrypts the weights"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cvmkit" decrypt dist/model -o "$tmp/weights" --keyset dist.secrets/trustee/default/model/quickstart
diff -r cache/weights "$tmp/weights"
echo "launch recipes: $(ls dist/launch | wc -l) (docs/launch.md), e.g."
sed -n '/"args"/,/\]/p' dist/launch/tdx-qemu-td.json | tr -d '\n ' | cut -c1-200; echo
echo "demo: OK — release in $here/dist, key-authority secrets in $here/dist.secrets (never publish them)"
