#!/usr/bin/env bash
# The quickstart release job, as far as cvmkit goes today (make demo runs it):
# fetch the pinned inputs, validate the config, build the guest image, compute the SEV-SNP and TDX
# launch measurements of its platform matrices, encrypt the weights for an
# HPKE recipient and a Trustee KBS resource, check that they decrypt, write
# the SBOMs, sign the release and verify it (rebuilding the image).
# Outputs go to examples/quickstart/dist/ (rebuilt each run).
# `cvmkit release -f cvmkit.yaml` will replace this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cvmkit=${CVMKIT:-$here/../../bin/cvmkit}
cd "$here"
./fetch-inputs.sh
rm -rf dist && mkdir -p dist/measurements

step() { printf '\n== %s\n' "$*" >&2; }

step "validate the release config"
"$cvmkit" config validate cvmkit.yaml

step "build the guest image (EROFS root + dm-verity, initrd, kernel, cmdline, image.lock.json)"
"$cvmkit" build -f cvmkit.yaml -o dist/image

step "SEV-SNP launch digests (platforms.snp: qemu-epyc)"
"$cvmkit" measure snp --ovmf cache/OVMF.fd --vcpus 1,2,4 --vcpu-type EPYC-v4,EPYC-Milan,EPYC-Genoa \
  --guest-features 0x1 --sev-check-dir dist/measurements/sev-check --json > dist/measurements/snp.json
"$cvmkit" measure snp --ovmf cache/OVMF.fd --vcpus 1,2,4 --vcpu-type EPYC-v4,EPYC-Milan,EPYC-Genoa

step "TDX MRTD (platforms.tdx: qemu-td, QEMU 9.2.0; bookworm's OVMF measures nothing into RTMRs)"
"$cvmkit" measure tdx --firmware cache/OVMF.fd --qemu-version 9.2.0 --json > dist/measurements/tdx.json
"$cvmkit" measure tdx --firmware cache/OVMF.fd --qemu-version 9.2.0

step "encrypt the weights (release quickstart@0.1.0)"
[ -f cache/kbs.hpke.pub.json ] || "$cvmkit" keygen --hpke -o cache/kbs > /dev/null
"$cvmkit" encrypt cache/weights -o dist/model --release-id quickstart@0.1.0 \
  --recipient hpke:cache/kbs.hpke.pub.json --recipient trustee:default/model/quickstart \
  --oci-layout dist/model-oci

step "decrypt with the HPKE key and compare"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cvmkit" decrypt dist/model -o "$tmp/weights" --hpke-key cache/kbs.hpke.key.json
diff -r cache/weights "$tmp/weights"

step "SBOMs of the image's root filesystem (SPDX 2.3, CycloneDX 1.6)"
"$cvmkit" sbom dist/image -o dist/sbom

step "sign the release (reference values + SLSA provenance, sigstore bundles)"
# The demo's signing key lives in cache/ with a demo password; a real
# release keeps its key (or uses --keyless) and password out of the tree.
export COSIGN_PASSWORD=${COSIGN_PASSWORD:-quickstart-demo}
[ -f cache/cosign.key ] || "$cvmkit" keygen --signing -o cache/cosign > /dev/null
"$cvmkit" sign dist --key cache/cosign.key

step "verify it as an auditor: signatures, every file, and a rebuild"
"$cvmkit" verify dist --key cache/cosign.pub --rebuild cvmkit.yaml
echo "demo: OK — outputs in $here/dist"
