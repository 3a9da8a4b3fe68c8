#!/usr/bin/env bash
# Build the Pub/Sub emulator image ($PUBSUB_EMULATOR_IMAGE, hack/versions.env) with no registry: the small
# main in images/pubsub-emulator on cloud.google.com/go/pubsub/v2/pstest ($PUBSUB_VERSION, its own module,
# GOWORK=off, CGO_ENABLED=0) into a FROM scratch image (images/pubsub-emulator/Dockerfile).
# Skipped when an image with the same inputs (the directory, the Go version) exists; FORCE=1 rebuilds.
# shellcheck source=hack/images/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ref=$PUBSUB_EMULATOR_IMAGE
dir=$IMAGES_DIR/pubsub-emulator
grep -q "cloud.google.com/go/pubsub/v2 $PUBSUB_VERSION\$" "$dir/go.mod" ||
  die "$dir/go.mod does not require cloud.google.com/go/pubsub/v2 $PUBSUB_VERSION (PUBSUB_VERSION in hack/versions.env)"

hash=$(hash_inputs "$dir" "pubsub $PUBSUB_VERSION" "$(go env GOVERSION GOARCH)")
exit_if_up_to_date "$ref" "$hash"
start=$SECONDS
new_context
log "go build images/pubsub-emulator (pstest $PUBSUB_VERSION)"
(cd "$dir" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$ctx/pubsub-emulator" .)
docker_build "$ref" "$hash" "$ctx" "$dir/Dockerfile" --build-arg "VERSION=${PUBSUB_VERSION#v}"
done_msg "$ref" "$start"
