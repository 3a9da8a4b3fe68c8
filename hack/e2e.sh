#!/usr/bin/env bash
# make e2e: run the kind e2e suite (e2e/suite, build tag e2e). The suite itself checks the images and the
# host ports, creates the cluster from kind-config.yaml (or reuses a live one), loads the images, applies the
# kind overlay, and deletes the cluster at the end; this script only resolves the node image and keeps a log.
# Env: E2E_CLUSTER (filesync-e2e), E2E_KEEP=1 (keep the cluster), E2E_RUN (go test -run regexp),
#      E2E_TIMEOUT (go test -timeout, 60m), E2E_PROPAGATION_BOUND (30s), AIRGAP, KIND_NODE_IMAGE, image names.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/lib.sh"
start=$SECONDS

export E2E_CLUSTER=${E2E_CLUSTER:-filesync-e2e}
export E2E_KEEP=${E2E_KEEP:-0}
export E2E_KIND=$KIND
export E2E_ARTIFACTS=${E2E_ARTIFACTS:-$ROOT/e2e/_artifacts}
E2E_NODE_IMAGE=${E2E_NODE_IMAGE:-$(node_image)}
export E2E_NODE_IMAGE
mkdir -p "$E2E_ARTIFACTS"
LOG=$E2E_ARTIFACTS/e2e-$(date -u +%Y%m%d-%H%M%S).log

log "cluster $E2E_CLUSTER${E2E_NODE_IMAGE:+ from ${E2E_NODE_IMAGE}} (keep=$E2E_KEEP)"
cd "$ROOT/e2e"
set +o errexit
go test -tags e2e -count=1 -v -timeout "${E2E_TIMEOUT:-60m}" ${E2E_RUN:+-run "$E2E_RUN"} ./suite/ 2>&1 |
  tee "$LOG"
rc=${PIPESTATUS[0]}
set -o errexit
grep -h 'MEASURED' "$LOG" >&2 || true
log "e2e finished with exit code $rc in $((SECONDS - start))s (log: ${LOG#"$ROOT"/})"
exit "$rc"
