#!/usr/bin/env bash
# make deploy: (re)apply examples/wordpress/overlays/kind to the kind cluster and wait until MariaDB, the
# Pub/Sub emulator, fake-gcs-server and every WordPress replica are Ready. RESTART=1 also restarts WordPress (to pick up a
# rebuilt image with the same tag after `make up` reloaded it).
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/lib.sh"
t=${WAIT_TIMEOUT:-300s}

cluster_exists "$CLUSTER" || die "no kind cluster $CLUSTER: run 'make up'"
# server-side, with the field manager `make up` and the e2e suite apply with
kctl apply --server-side --force-conflicts --field-manager filesync-e2e -k "$OVERLAY" >&2
if [ "${RESTART:-0}" = 1 ]; then
  kctl -n "$NAMESPACE" rollout restart deploy/wordpress >&2
fi
kctl -n "$NAMESPACE" rollout status statefulset/mariadb --timeout="$t" >&2
kctl -n "$NAMESPACE" rollout status deploy/pubsub-emulator --timeout="$t" >&2
kctl -n "$NAMESPACE" rollout status deploy/fake-gcs-server --timeout="$t" >&2
kctl -n "$NAMESPACE" rollout status deploy/wordpress --timeout="$t" >&2
kctl -n "$NAMESPACE" get pods -o wide >&2
