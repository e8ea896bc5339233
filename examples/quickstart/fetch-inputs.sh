#!/usr/bin/env bash
# Fetch the quickstart's pinned inputs into examples/quickstart/cache/:
#   - Debian bookworm's OVMF firmware (ovmf 2022.11-6+deb12u2, usr/share/ovmf/OVMF.fd)
#   - Debian's signed kernel linux-image-6.1.0-56-amd64 6.1.192-2 (boot/vmlinuz-…)
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

ovmf_pkg="ovmf=2022.11-6+deb12u2"
ovmf_sha=7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773
kernel_pkg="linux-image-6.1.0-56-amd64=6.1.192-2"
kernel_file=boot/vmlinuz-6.1.0-56-amd64
kernel_sha=26f2e57c99338feaf71c46fa4babdc7e1a6c115943002d109fdb746667104f5f

ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum --quiet -c - 2>/dev/null; }

# Kernel modules the initrd loads before it can set up the verified root
# (Debian builds virtio_blk, erofs, dm-mod and dm-verity as modules).
modules="kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
  kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko
  kernel/drivers/virtio/virtio_pci.ko kernel/drivers/block/virtio_blk.ko kernel/crypto/crc32c_generic.ko
  kernel/lib/libcrc32c.ko kernel/fs/erofs/erofs.ko kernel/drivers/md/dm-mod.ko kernel/drivers/md/dm-bufio.ko
  kernel/lib/reed_solomon/reed_solomon.ko kernel/drivers/md/dm-verity.ko"
kmodroot=lib/modules/6.1.0-56-amd64

fetch_deb() { # fetch_deb PKG=VERSION MEMBER OUT SHA [MODULES]
  local pkg=$1 member=$2 out=$3 sha=$4 want_modules=${5:-}
  ok "$out" "$sha" && { [ -z "$want_modules" ] || [ -f modules/load.order ]; } && return 0
  command -v apt-get >/dev/null || { echo "fetch-inputs: apt-get is needed to fetch $pkg (Debian or Ubuntu)" >&2; exit 1; }
  local tmp; tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  # apt-get download needs package lists; refresh them once if the version is unknown.
  if ! apt-cache show "$pkg" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
  fi
  if ! (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null); then
    rm -rf "$tmp"
    echo "fetch-inputs: error: cannot download $pkg from the Debian archive" >&2
    echo "fetch-inputs: hint: the version may have left the archive; pick the current one (apt-cache policy ${pkg%%=*}), update this script and the digest in cvmkit.yaml" >&2
    exit 1
  fi
  dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp" "./$member"
  if ! ok "$tmp/$member" "$sha"; then
    echo "fetch-inputs: error: $member from $pkg does not have the pinned sha256 $sha" >&2
    rm -rf "$tmp"; exit 1
  fi
  mv "$tmp/$member" "$out.tmp" && mv "$out.tmp" "$out"
  if [ -n "$want_modules" ]; then
    rm -rf modules && mkdir -p modules
    dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp" "./$kmodroot"
    : > modules/load.order.tmp
    for m in $modules; do
      # Some are built into the kernel; keep the order of those that exist.
      if [ -f "$tmp/$kmodroot/$m" ]; then
        cp "$tmp/$kmodroot/$m" modules/ && basename "$m" >> modules/load.order.tmp
      fi
    done
    mv modules/load.order.tmp modules/load.order
  fi
  rm -rf "$tmp"
  echo "fetch-inputs: $out ($pkg)"
}

fetch_deb "$ovmf_pkg" usr/share/ovmf/OVMF.fd OVMF.fd "$ovmf_sha"
fetch_deb "$kernel_pkg" "$kernel_file" vmlinuz "$kernel_sha" with-modules

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
