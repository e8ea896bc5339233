#!/usr/bin/env bash
# Shell completions (bash, zsh, fish) and man pages for the release archives
# (.goreleaser.yaml), into .cache/release-docs. Reproducible: the man pages
# are dated SOURCE_DATE_EPOCH (goreleaser sets it to the commit time).
set -euo pipefail
cd "$(dirname "$0")/.."
# goreleaser passes the commit time; by hand, take it from git.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
fi
export SOURCE_DATE_EPOCH
out=.cache/release-docs
rm -rf "$out"
mkdir -p "$out/completions" "$out/man"
CGO_ENABLED=0 go build -trimpath -o "$out/cvmkit" ./cmd/cvmkit
for sh in bash zsh fish; do
  "$out/cvmkit" completion "$sh" >"$out/completions/cvmkit.$sh"
done
CGO_ENABLED=0 go run -trimpath ./internal/tools/mangen "$out/man"
rm "$out/cvmkit"
