#!/usr/bin/env bash
# Build cvmkit's release twice as goreleaser does (snapshot, this machine's
# platform, nothing published or signed) and check that the archives are
# byte for byte the same; then leave the second build in dist/ (for
# scripts/test-action.sh dist). Run by `make snapshot`.
set -euo pipefail
cd "$(dirname "$0")/.."
# .goreleaser.yaml as it is, for this machine's platform only (goreleaser's
# release command has no --single-target).
mkdir -p .cache
goos=$(go env GOOS) goarch=$(go env GOARCH)
sed -e "s/goos: \[linux, darwin\]/goos: [$goos]/" -e "s/goarch: \[amd64, arm64\]/goarch: [$goarch]/" .goreleaser.yaml >.cache/goreleaser-snapshot.yaml
grep -q "goos: \[$goos\]" .cache/goreleaser-snapshot.yaml || { echo "snapshot-check: .goreleaser.yaml's platform lists changed; update this script" >&2; exit 1; }
goreleaser=(go run github.com/goreleaser/goreleaser/v2@v2.15.1 release --config .cache/goreleaser-snapshot.yaml --snapshot --clean --skip=sign)
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
for f in cvmkit cvmkit-sbom cvmkit-sigstore completions/cvmkit.bash completions/cvmkit.zsh completions/cvmkit.fish man/man1/cvmkit.1 man/man1/cvmkit-release.1; do
  tar -tzf dist/*.tar.gz | grep -qx "$f" || { echo "snapshot-check: the archive has no $f" >&2; exit 1; }
done
ls dist/*.spdx.sbom.json >/dev/null || { echo "snapshot-check: no SBOM" >&2; exit 1; }
echo "snapshot-check: OK: identical archives, with completions, man pages and SBOMs"
