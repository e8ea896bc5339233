#!/usr/bin/env bash
# Build cmd/cvmkit-init for the guest (linux/amd64, static, reproducible) into
# internal/initbin/bin/, where cvmkit embeds it (see internal/initbin).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false -ldflags='-s -w -buildid=' \
  -o internal/initbin/bin/cvmkit-init-linux-amd64 ./cmd/cvmkit-init
