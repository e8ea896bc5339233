#!/usr/bin/env bash
# Fetch the NVIDIA RIMs this example pins into rims/ from NVIDIA's RIM service
# (GET https://rim.attestation.nvidia.com/v1/rim/<RIM ID> returns JSON whose
# "rim" field is the base64 XML) and check them against the pins in
# cvmkit.yaml. The pins are the copies NVIDIA ships in its nvtrust and
# attestation-sdk repositories, which cvmkit's tests use; NVIDIA re-issues RIMs
# under the same ID, so the service may serve a newer issue: the script then
# stops and says so. Verify the new file (cvmkit gpu reference --rim FILE)
# before updating the pin.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p rims
service=${NVIDIA_RIM_SERVICE:-https://rim.attestation.nvidia.com/v1/rim}
pin() { sed -n "/path: rims\/$1/{n;s/.*digest: sha256://p}" cvmkit.yaml; }
for id in NV_GPU_VBIOS_1010_0200_882_96005E0001 NV_GPU_DRIVER_GH100_550.144.03; do
  f=rims/$id.xml
  want=$(pin "$id.xml")
  if [ -f "$f" ] && echo "$want  $f" | sha256sum --quiet -c - 2>/dev/null; then continue; fi
  curl -fsSL "$service/$id" | grep -o '"rim" *: *"[^"]*"' | sed 's/.*: *"//; s/"$//' | base64 -d > "$f.tmp"
  got=$(sha256sum < "$f.tmp" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "fetch-rims: NVIDIA's RIM service serves $id with sha256 $got; cvmkit.yaml pins $want." >&2
    echo "fetch-rims: NVIDIA re-issued it. Check it (cvmkit gpu reference --rim $f.tmp --json), then update the pin." >&2
    exit 1
  fi
  mv "$f.tmp" "$f"
  echo "fetch-rims: $f"
done
