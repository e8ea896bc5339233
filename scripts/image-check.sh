#!/usr/bin/env bash
# Build cvmkit's container image twice from the release archive in dist/
# (make snapshot, or a downloaded release) and check that both have the same
# digest; leave it in dist/image (an OCI image layout). Push it with e.g.
#   crane push dist/image REGISTRY/cvmkit:TAG   (or oras cp, skopeo copy)
set -euo pipefail
cd "$(dirname "$0")/.."
archive=$(ls dist/cvmkit_*_linux_amd64.tar.gz)
version=$(jq -r .version dist/metadata.json)
commit=$(jq -r .commit dist/metadata.json)
epoch=$(git log -1 --format=%ct "$commit" 2>/dev/null || git log -1 --format=%ct)
work=$(mktemp -d "${TMPDIR:-/tmp}/cvmkit-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
mk() { go run ./internal/tools/mkimage -archive "$archive" -epoch "$epoch" -version "$version" -revision "$commit" -o "$1"; }
a=$(mk "$work/a")
b=$(mk "$work/b")
echo "image A: $a"
echo "image B: $b"
[ "$a" = "$b" ] || { echo "image-check: FAIL: two builds of the image differ" >&2; exit 1; }
rm -rf dist/image && cp -r "$work/a" dist/image
echo "image-check: OK: $a in dist/image (OCI layout, linux/amd64, FROM scratch)"
