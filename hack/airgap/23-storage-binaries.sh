#!/bin/bash
# Stage 23: local-path-provisioner (kind's default dynamic storage) from its Go module, statically.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"; mkdir -p "$B"
start=$(date +%s)
CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN=$B go install -trimpath -ldflags "-s -w -X main.VERSION=$LPP_VERSION" \
  github.com/rancher/local-path-provisioner@"$LPP_VERSION"
ls -la "$B/local-path-provisioner"
echo "stage23 $(( $(date +%s)-start ))s"
