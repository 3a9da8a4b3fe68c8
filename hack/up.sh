#!/usr/bin/env bash
# make up: a kind cluster with the WordPress example (3 replicas with filesync, MariaDB, fake-gcs-server).
# Idempotent: a running cluster of that name is reused, images are (re)loaded, the overlay re-applied.
# Env: see hack/lib.sh (CLUSTER, AIRGAP, KIND_NODE_IMAGE, image names).
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/lib.sh"
start=$SECONDS

drop_dead_cluster "$CLUSTER"
if cluster_exists "$CLUSTER"; then
  log "reusing kind cluster $CLUSTER"
else
  ports_free
  image=$(node_image)
  log "creating kind cluster $CLUSTER${image:+ from $image}"
  "$KIND" create cluster --name "$CLUSTER" --config "$ROOT/kind-config.yaml" ${image:+--image "$image"} --wait 5m
fi
wait_system
load_images
"$ROOT/hack/deploy.sh"
log "up in $((SECONDS - start))s"
echo "WordPress: http://localhost:8080"
echo "fake-gcs-server: http://localhost:4443 (bucket wordpress-media)"
