#!/usr/bin/env bash
# Build cvmkit twice from two copies of this checkout in different folders,
# with different environments (time zone, umask, locale, GOMAXPROCS, file
# mtimes) and the second with a cold build cache, then compare the binaries
# byte for byte. This is how the release is built (.goreleaser.yaml):
#   CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags=-buildid=
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/cvmkit-repro.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

copy() { # copy DEST: the tracked files (and uncommitted edits) of the checkout
  mkdir -p "$1"
  if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$root" ls-files -z --cached --others --exclude-standard | (cd "$root" && xargs -0 cp --parents -t "$1" 2>/dev/null || true)
  else
    cp -a "$root/." "$1"
  fi
}
build() { # build SRC OUT [env…]
  local src=$1 out=$2; shift 2
  (cd "$src" && env "$@" ./scripts/build-initbin.sh && env "$@" CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags=-buildid= -o "$out" ./cmd/cvmkit)
}

copy "$work/a/src"
copy "$work/b/some/deeper/folder/src"
# Different mtimes on every input file of the second copy.
find "$work/b" -type f -exec touch -d '2001-02-03 04:05:06' {} +

build "$work/a/src" "$work/cvmkit-a" TZ=UTC LANG=C GOMAXPROCS=2
(umask 077; build "$work/b/some/deeper/folder/src" "$work/cvmkit-b" \
  TZ=Pacific/Kiritimati LANG=de_DE.UTF-8 LC_ALL=de_DE.UTF-8 GOMAXPROCS=1 \
  GOCACHE="$work/cold-cache" GOFLAGS=-mod=mod)

a=$(sha256sum < "$work/cvmkit-a" | cut -d' ' -f1)
b=$(sha256sum < "$work/cvmkit-b" | cut -d' ' -f1)
echo "build A ($work/a/src, warm cache):              $a"
echo "build B ($work/b/some/deeper/folder/src, cold): $b"
if [ "$a" != "$b" ]; then
  echo "reproducible-build: FAIL: the two builds differ" >&2
  cmp "$work/cvmkit-a" "$work/cvmkit-b" | head -3 >&2 || true
  exit 1
fi
echo "reproducible-build: OK: identical binaries"
