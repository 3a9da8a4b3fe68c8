#!/bin/sh
# mmdebstrap customize hook ($1 = the rootfs): check that the mysql user kept uid/gid 999.
set -eu
test "$(chroot "$1" id -u mysql):$(chroot "$1" id -g mysql)" = 999:999
