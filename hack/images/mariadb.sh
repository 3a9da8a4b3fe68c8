#!/usr/bin/env bash
# Build the MariaDB stand-in ($MARIADB_IMAGE, hack/versions.env) from Debian's mariadb-server:
# mmdebstrap rootfs -> docker import (base, cached) -> images/mariadb/Dockerfile. No registry needed.
# Skipped when an image with the same inputs exists (FORCE=1 rebuilds).
# shellcheck source=hack/images/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_debian_image mariadb "$MARIADB_IMAGE"
