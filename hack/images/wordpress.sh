#!/usr/bin/env bash
# Build the WordPress stand-in ($WORDPRESS_IMAGE, hack/versions.env) from Debian packages:
# mmdebstrap rootfs -> docker import (base, cached) -> images/wordpress/Dockerfile. No registry needed.
# Skipped when an image with the same inputs exists (FORCE=1 rebuilds).
# shellcheck source=hack/images/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_debian_image wordpress "$WORDPRESS_IMAGE"
