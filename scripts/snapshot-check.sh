#!/usr/bin/env bash
# Build cvmkit's release twice as goreleaser does (snapshot, this machine's
# platform, nothing published or signed) from a fresh clone of the current
# commit, and check that the archives are byte for byte the same; the second
# build is left in dist/ (for scripts/test-action.sh dist). Run by
# `make snapshot`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/cvmkit-snapshot.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
# A clone: goreleaser reads the commit (its date stamps every file in the
# archives) and needs a remote; uncommitted edits are not part of a release.
git clone --quiet "$root" "$work/src"
cd "$work/src"
# .goreleaser.yaml as it is, for this machine's platform only (goreleaser's
# release command has no --single-target).
goos=$(go env GOOS) goarch=$(go env GOARCH)
sed -e "s/goos: \[linux, darwin\]/goos: [$goos]/" -e "s/goarch: \[amd64, arm64\]/goarch: [$goarch]/" .goreleaser.yaml >"$work/goreleaser.yaml"
grep -q "goos: \[$goos\]" "$work/goreleaser.yaml" || { echo "snapshot-check: .goreleaser.yaml's platform lists changed; update this script" >&2; exit 1; }
goreleaser=(go run github.com/goreleaser/goreleaser/v2@v2.15.1 release --config "$work/goreleaser.yaml" --snapshot --clean --skip=sign)
sums() { (cd dist && sha256sum ./*.tar.gz) ; }
"${goreleaser[@]}" >&2
first=$(sums)
"${goreleaser[@]}" >&2
second=$(sums)
echo "first build:";  echo "$first"
echo "second build:"; echo "$second"
if [ "$first" != "$second" ]; then
  echo "snapshot-check: FAIL: the two snapshot builds differ" >&2
  exit 1
fi
archive=$(ls dist/*.tar.gz)
listing=$(tar -tzf "$archive")
for f in cvmkit cvmkit-sbom cvmkit-sigstore completions/cvmkit.bash completions/cvmkit.zsh completions/cvmkit.fish man/man1/cvmkit.1 man/man1/cvmkit-release.1; do
  grep -qx "$f" <<<"$listing" || { echo "snapshot-check: the archive has no $f" >&2; exit 1; }
done
ls dist/*.spdx.sbom.json >/dev/null || { echo "snapshot-check: no SBOM" >&2; exit 1; }
echo "files in $archive dated:"; tar -tvzf "$archive" | awk '{print $4, $5}' | sort | uniq -c
rm -rf "$root/dist"
cp -r dist "$root/dist"
echo "snapshot-check: OK: identical archives, with completions, man pages and SBOMs"
