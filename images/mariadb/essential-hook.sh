#!/bin/sh
# mmdebstrap essential hook ($1 = the rootfs): create the mysql user and group with uid/gid 999 before
# mariadb-server is installed (its maintainer scripts keep an existing mysql user), so the stand-in uses the
# same ids as the official mariadb image and volumes/fsGroup settings carry over between the two.
set -eu
grep -q '^mysql:' "$1/etc/group" || echo 'mysql:x:999:' >>"$1/etc/group"
grep -q '^mysql:' "$1/etc/passwd" || echo 'mysql:x:999:999:MySQL Server:/nonexistent:/bin/false' >>"$1/etc/passwd"
