#!/usr/bin/env bash
# make up: a kind cluster with the WordPress example (3 replicas with filesync, MariaDB, fake-gcs-server, and
# the Pub/Sub emulator fake-gcs-server sends bucket notifications to).
# Idempotent: a running cluster of that name is reused (a dead one is deleted first), images are (re)loaded,
# the overlay re-applied. The steps are the e2e suite's own (e2e/cmd/cluster up, e2e/internal/cluster.Steps):
# pre-flight checks, create, wait for the system pods and storage, load the images, apply, wait.
# Env: see hack/lib.sh (CLUSTER, AIRGAP, KIND_NODE_IMAGE, image names); WAIT_TIMEOUT (5m).
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/lib.sh"
start=$SECONDS

export E2E_CLUSTER=$CLUSTER E2E_KIND=$KIND E2E_WAIT_TIMEOUT=${WAIT_TIMEOUT:-5m}
E2E_NODE_IMAGE=$(node_image)
export E2E_NODE_IMAGE
log "kind cluster $CLUSTER${E2E_NODE_IMAGE:+ from $E2E_NODE_IMAGE}"
(cd "$ROOT/e2e" && go run -tags e2e ./cmd/cluster up)
kctl -n "$NAMESPACE" get pods -o wide >&2
# Bucket notifications: fake-gcs-server publishes to the Pub/Sub emulator, each sidecar has its subscription.
for pod in $(kctl -n "$NAMESPACE" get pods -l app.kubernetes.io/name=wordpress -o name); do
  line=$(kctl -n "$NAMESPACE" logs "$pod" -c filesync | grep -m1 'subscribed to bucket notifications' || true)
  log "${pod#pod/}: ${line:-no subscription yet (kubectl -n $NAMESPACE logs $pod -c filesync)}"
done
log "up in $((SECONDS - start))s"
echo "WordPress: http://localhost:8080"
echo "fake-gcs-server: http://localhost:4443 (bucket wordpress-media; notifications to the Pub/Sub emulator, in-cluster)"
