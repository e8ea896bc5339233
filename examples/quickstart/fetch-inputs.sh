#!/usr/bin/env bash
# Fetch the quickstart's pinned inputs into examples/quickstart/cache/:
#   - Debian trixie's OVMF firmware (ovmf 2025.02-8+deb13u1, usr/share/ovmf/OVMF.fd),
#     which measures TDX RTMR0 and RTMR1 (edk2-stable202502)
#   - Debian trixie's signed kernel linux-image-6.12.117+deb13-amd64 6.12.117-1
#     (boot/vmlinuz-…), whose EFI stub measures the command line and initrd
#     into RTMR2, and the modules the initrd loads
#   (the SEV-SNP firmware with kernel hashes, cache/OVMF.amdsev.fd, is built
#   from source by cvmkit release: firmware[].build in cvmkit.yaml)
#   - the synthetic model weights (examples/quickstart/genweights)
#   - the workload image: a static Go program as a one-layer OCI image layout
#     (examples/quickstart/mkoci), the same bytes with the same Go toolchain
# Every file is checked against the sha256 that cvmkit.yaml pins; a file that
# is already there and matches is not fetched again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/cache"
mkdir -p "$cache"
cd "$cache"

# Debian trixie's packages, by their pool path and the SHA-256 of trixie's
# signed Packages index (so a bookworm machine needs no trixie apt source):
# apt's own downloader fetches them and checks the digest as it goes.
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ovmf_deb=pool/main/e/edk2/ovmf_2025.02-8+deb13u1_all.deb
ovmf_deb_sha=78e0d54df11fc77406cb7a0bc9a39e5bca6d1cbe06556b91d9a73491c52decdf
ovmf_sha=14954040cc754ade0c625ac3470ea46d4c14318b5b1396de4ef77090203d76db
kver=6.12.117+deb13-amd64
kernel_deb=pool/main/l/linux-signed-amd64/linux-image-${kver}_6.12.117-1_amd64.deb
kernel_deb_sha=ca712d36790184f6ac125ce2b20ea4e2202ae6bb7817b7de268f1f0115ccda73
kernel_sha=14159c607ad9762133db41e479dafecde1d6a5fe715a8d65d292a3262e4b6bed

ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum --quiet -c - 2>/dev/null; }

# Kernel modules the initrd loads, in order, before it can set up the
# verified root: Debian's 6.12 builds virtio_blk, erofs, dm-mod and
# dm-verity as xz-compressed modules (the kernel decompresses them,
# CONFIG_MODULE_DECOMPRESS); virtio and virtio_pci are built in. libcrc32c
# needs the crc32c algorithm, which nothing would load in the initrd.
modules="kernel/drivers/block/virtio_blk.ko.xz kernel/crypto/crc32c_generic.ko.xz kernel/lib/libcrc32c.ko.xz
  kernel/fs/erofs/erofs.ko.xz kernel/drivers/md/dm-mod.ko.xz kernel/drivers/md/dm-bufio.ko.xz
  kernel/lib/reed_solomon/reed_solomon.ko.xz kernel/drivers/md/dm-verity.ko.xz"
kmodroot=usr/lib/modules/$kver

fetch_deb() { # fetch_deb POOLPATH DEBSHA MEMBER OUT SHA [with-modules]
  local deb=$1 debsha=$2 member=$3 out=$4 sha=$5 want_modules=${6:-}
  ok "$out" "$sha" && { [ -z "$want_modules" ] || [ -f modules/load.order ]; } && return 0
  [ -x /usr/lib/apt/apt-helper ] || { echo "fetch-inputs: apt's /usr/lib/apt/apt-helper is needed to fetch $deb (Debian or Ubuntu)" >&2; exit 1; }
  local tmp; tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  chmod 755 "$tmp" # apt-helper downloads as the _apt user where it can
  if ! /usr/lib/apt/apt-helper -qq download-file "$mirror/$deb" "$tmp/p.deb" "SHA256:$debsha" >/dev/null 2>"$tmp/err"; then
    cat "$tmp/err" >&2; rm -rf "$tmp"
    echo "fetch-inputs: error: cannot download $mirror/$deb (sha256 $debsha)" >&2
    echo "fetch-inputs: hint: superseded packages stay on https://snapshot.debian.org; set DEBIAN_MIRROR to a mirror that has it (for example https://snapshot.debian.org/archive/debian/20251201T000000Z)" >&2
    exit 1
  fi
  dpkg-deb --fsys-tarfile "$tmp/p.deb" | tar -x -C "$tmp" "./$member"
  if ! ok "$tmp/$member" "$sha"; then
    echo "fetch-inputs: error: $member from $deb does not have the pinned sha256 $sha" >&2
    rm -rf "$tmp"; exit 1
  fi
  mv "$tmp/$member" "$out.tmp" && mv "$out.tmp" "$out"
  if [ -n "$want_modules" ]; then
    rm -rf modules && mkdir -p modules
    dpkg-deb --fsys-tarfile "$tmp/p.deb" | tar -x -C "$tmp" "./$kmodroot"
    : > modules/load.order.tmp
    for m in $modules; do
      cp "$tmp/$kmodroot/$m" modules/ && basename "$m" >> modules/load.order.tmp
    done
    mv modules/load.order.tmp modules/load.order
  fi
  rm -rf "$tmp"
  echo "fetch-inputs: $out ($deb)"
}

fetch_deb "$ovmf_deb" "$ovmf_deb_sha" usr/share/ovmf/OVMF.fd OVMF.fd "$ovmf_sha"
fetch_deb "$kernel_deb" "$kernel_deb_sha" "boot/vmlinuz-$kver" vmlinuz "$kernel_sha" with-modules

workload_digest=sha256:fbce3c45852ccf8134bba9e13c9dc0af0d54508bfc19ef5a73a11d11a343c32c
if [ ! -f workload-oci/index.json ]; then
  rm -rf workload-oci.tmp
  got=$(cd "$here/../.." && go run ./examples/quickstart/mkoci "$cache/workload-oci.tmp")
  if [ "$got" != "$workload_digest" ]; then
    echo "fetch-inputs: the workload image has digest $got, cvmkit.yaml pins $workload_digest" >&2
    echo "fetch-inputs: a different Go toolchain builds different bytes; use the go.mod toolchain ($(go env GOVERSION) here)" >&2
    exit 1
  fi
  mv workload-oci.tmp workload-oci
  echo "fetch-inputs: workload-oci/ ($got)"
fi

if [ ! -f weights/model.safetensors ]; then
  (cd "$here/../.." && go run ./examples/quickstart/genweights "$cache/weights.tmp")
  rm -rf weights && mv weights.tmp weights
  echo "fetch-inputs: weights/ (synthetic)"
fi
