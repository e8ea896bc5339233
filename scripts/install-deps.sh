#!/usr/bin/env bash
# Install what cvmkit's tests and demo need on a Debian (bookworm or later)
# machine. Idempotent: installs only what is missing. Run as root or with sudo.
#   scripts/install-deps.sh              everything the tests need
#   scripts/install-deps.sh --demo       only what make demo needs: the
#                                        firmware recipes' toolchain (cvmkit
#                                        release builds the quickstart's SEV-SNP
#                                        firmware) and jq
set -euo pipefail
only_demo=false
[ "${1:-}" = --demo ] && only_demo=true

# Debian packages: tool → package.
declare -A deb=(
  [apt-get]=apt
  [dpkg-deb]=dpkg
  [git]=git
  [make]=make
  [sha256sum]=coreutils
  [objcopy]=binutils
  [veritysetup]=cryptsetup-bin
  [cpio]=cpio
  [zstd]=zstd
  [xz]=xz-utils
  [lz4]=lz4
  [gcc]=gcc
  [jq]=jq
  [python3]=python3
  [curl]=curl
  [fsck.erofs]=erofs-utils
  [qemu-system-x86_64]=qemu-system-x86
  [xmllint]=libxml2-utils
  [xmlsec1]=xmlsec1
  # The firmware recipes' toolchain (docs/firmware.md; versions checked by
  # cvmkit firmware build).
  [nasm]=nasm
  [iasl]=acpica-tools
  [patch]=patch
  [gcc-12]=gcc-12
)
# Files the tests read (path → package).
declare -A files=(
  [/usr/lib/systemd/boot/efi/linuxx64.efi.stub]=systemd-boot-efi
  [/usr/include/uuid/uuid.h]=uuid-dev
  [/usr/bin/python3]=python3
  [/usr/lib/apt/apt-helper]=apt
)

if $only_demo; then
  deb=([jq]=jq [make]=make [objcopy]=binutils [xz]=xz-utils [python3]=python3 [nasm]=nasm [iasl]=acpica-tools [patch]=patch [gcc-12]=gcc-12 [dpkg-deb]=dpkg)
  files=([/usr/include/uuid/uuid.h]=uuid-dev [/usr/lib/apt/apt-helper]=apt)
fi
missing=()
for tool in "${!deb[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${deb[$tool]}")
done
for f in "${!files[@]}"; do
  [ -e "$f" ] || missing+=("${files[$f]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "install-deps: apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if $only_demo; then
  echo "install-deps: what make demo needs is installed"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "install-deps: Go 1.26 is needed (https://go.dev/dl/); go.mod pins the toolchain" >&2; exit 1; }

# Go tools the tests run: the real cosign verifies cvmkit's bundles.
gobin=$(go env GOPATH)/bin
if ! command -v cosign >/dev/null 2>&1 && [ ! -x "$gobin/cosign" ]; then
  echo "install-deps: go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5"
  go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5
fi
# oras: the tests pull the encrypted-model artifact with the real client.
if ! command -v oras >/dev/null 2>&1 && [ ! -x "$gobin/oras" ]; then
  echo "install-deps: go install oras.land/oras/cmd/oras@v1.3.6"
  go install oras.land/oras/cmd/oras@v1.3.6
fi
case ":$PATH:" in *":$gobin:"*) ;; *) echo "install-deps: note: add $gobin to PATH so the tests find cosign and oras" ;; esac
echo "install-deps: OK"
