#!/usr/bin/env bash
# Make the images the example and the e2e use available locally, under the names the kind overlay expects:
#   fake-gcs-server -> $FAKE_GCS_IMAGE, wordpress -> $WORDPRESS_IMAGE, mariadb -> $MARIADB_IMAGE,
#   pubsub-emulator -> $PUBSUB_EMULATOR_IMAGE
# (the filesync image is built by `make image`).
# Usage: all.sh [fake-gcs-server|wordpress|mariadb|pubsub-emulator]... (default all)
# IMAGES=auto (default): public when a container registry answers (asked through dockerd, 5 s), else local.
# IMAGES=local: build fake-gcs-server from its Go module and the WordPress/MariaDB stand-ins from
#   Debian packages; nothing is pulled; each one is skipped when it is up to date.
# IMAGES=public: pull the official images (PUBLIC_FAKE_GCS_IMAGE, PUBLIC_WORDPRESS_IMAGE, PUBLIC_MARIADB_IMAGE
#   in hack/versions.env) and tag them with the names above, so manifests and e2e run unchanged on either.
# The Pub/Sub emulator has no official image that runs without downloading itself: it is always built here.
# shellcheck source=hack/images/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HERE=$(dirname "${BASH_SOURCE[0]}")

pull_tag() {
  local src=$1 dst=$2
  if [ "${FORCE:-0}" != 1 ] && docker image inspect "$src" >/dev/null 2>&1; then
    log "$src is present"
  else
    docker pull "$src"
  fi
  docker tag "$src" "$dst"
  log "$dst <- $src"
}

# resolve_images turns IMAGES=auto into local or public.
resolve_images() {
  case ${IMAGES:=auto} in
    auto)
      if registry_reachable "${PUBLIC_WORDPRESS_IMAGE%%:*}"; then
        IMAGES=public
      else
        IMAGES=local
        log "no container registry answers: building the images locally (IMAGES=public to pull instead)"
      fi ;;
  esac
}

make_one() {
  case ${IMAGES}:$1 in
    local:fake-gcs-server | local:wordpress | local:mariadb | *:pubsub-emulator) "$HERE/$1.sh" ;;
    public:fake-gcs-server) pull_tag "$PUBLIC_FAKE_GCS_IMAGE" "$FAKE_GCS_IMAGE" ;;
    public:wordpress) pull_tag "$PUBLIC_WORDPRESS_IMAGE" "$WORDPRESS_IMAGE" ;;
    public:mariadb) pull_tag "$PUBLIC_MARIADB_IMAGE" "$MARIADB_IMAGE" ;;
    local:* | public:*) die "unknown image $1 (want fake-gcs-server, wordpress, mariadb or pubsub-emulator)" ;;
    *) die "IMAGES must be auto, local or public, not ${IMAGES}" ;;
  esac
}

start=$SECONDS
resolve_images
[ $# -gt 0 ] || set -- fake-gcs-server wordpress mariadb pubsub-emulator
for name; do make_one "$name"; done
log "images ready ($*, IMAGES=${IMAGES}) in $((SECONDS - start))s"
