#!/usr/bin/env bash
# Build the filesync image ($FILESYNC_IMAGE, hack/versions.env) from bin/filesync (`make build`)
# and the host's CA bundle, with sidecar/Dockerfile (FROM scratch) and the legacy builder: no registry.
# The build context is a temporary directory holding only the binary and the bundle.
# Skipped when an image with the same inputs (binary, bundle, Dockerfile, version) exists; FORCE=1 rebuilds.
# Env: FILESYNC_BIN (default bin/filesync), CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt), VERSION.
# shellcheck source=hack/images/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ref=$FILESYNC_IMAGE
bin=${FILESYNC_BIN:-$ROOT/bin/filesync}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
dockerfile=$ROOT/sidecar/Dockerfile
version=${VERSION:-$(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null || echo dev)}
revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)

[ -x "$bin" ] || die "$bin is missing: run \`make build\` first"
[ -s "$ca" ] || [ "$ca" != /etc/ssl/certs/ca-certificates.crt ] || apt_install ca-certificates
[ -s "$ca" ] || die "CA bundle $ca is missing (Debian: apt-get install ca-certificates; or set CA_BUNDLE)"
# The image has no libc: refuse a dynamically linked binary rather than ship one that cannot start.
if command -v file >/dev/null && file -L "$bin" | grep -q 'dynamically linked'; then
  die "$bin is dynamically linked; build it with CGO_ENABLED=0 (make build)"
fi

hash=$(hash_inputs "$dockerfile" "$bin" "$ca" "version $version" "revision $revision")
exit_if_up_to_date "$ref" "$hash"
start=$SECONDS
new_context
cp "$bin" "$ctx/filesync"
cp -L "$ca" "$ctx/ca-certificates.crt"
docker_build "$ref" "$hash" "$ctx" "$dockerfile" --build-arg "VERSION=$version" --build-arg "REVISION=$revision"
done_msg "$ref" "$start"
