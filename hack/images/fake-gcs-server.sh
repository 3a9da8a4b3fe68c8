#!/usr/bin/env bash
# Build the fake-gcs-server image ($FAKE_GCS_IMAGE, hack/versions.env) with no
# registry: `go install github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION` (CGO_ENABLED=0, from the Go module
# proxy) into a FROM scratch image (images/fake-gcs-server/Dockerfile).
# Skipped when an image with the same inputs exists (FORCE=1 rebuilds); the binary is cached per version.
# `fake-gcs-server.sh --binary` only builds (or finds) that cached binary and prints its path: `make bench`
# takes bin/fake-gcs-server from there, so the emulator is built in one place.
# shellcheck source=hack/images/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ref=$FAKE_GCS_IMAGE
version=$FAKE_GCS_VERSION
dir=$IMAGES_DIR/fake-gcs-server
bin=$CACHE_DIR/fake-gcs-server/$version/$(go env GOVERSION)/fake-gcs-server

build_binary() {
  if [ "${FORCE:-0}" = 1 ] || [ ! -x "$bin" ]; then
    log "go install github.com/fsouza/fake-gcs-server@$version"
    mkdir -p "$(dirname "$bin")"
    GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN=$(dirname "$bin") \
      go install -trimpath -ldflags '-s -w' "github.com/fsouza/fake-gcs-server@$version"
  fi
}
if [ "${1:-}" = --binary ]; then
  build_binary
  echo "$bin"
  exit 0
fi
mime=${MIME_TYPES:-/etc/mime.types}
[ -s "$mime" ] || [ "$mime" != /etc/mime.types ] || apt_install media-types
[ -s "$mime" ] || die "$mime is missing (Debian: apt-get install media-types)"

hash=$(hash_inputs "$dir" "$mime" "fake-gcs-server $version" "$(go env GOVERSION GOARCH)")
exit_if_up_to_date "$ref" "$hash"
start=$SECONDS
build_binary
new_context
cp "$bin" "$ctx/fake-gcs-server"
cp "$mime" "$ctx/mime.types"
docker_build "$ref" "$hash" "$ctx" "$dir/Dockerfile" --build-arg "VERSION=${version#v}"
done_msg "$ref" "$start"
