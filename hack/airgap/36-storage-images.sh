#!/bin/bash
# Stage 36: the images of kind's default storage, offline, and the manifest that runs them:
#  - kind.local/local-path-provisioner:<LPP_VERSION>  (static binary from stage 23)
#  - kind.local/local-path-helper:busybox              (busybox-static: the helper pod runs `sh` setup/teardown scripts)
#  - $W/default-storage.yaml: kind's own storage manifest (read from the kind module, so it follows KIND_VERSION)
#    with those two image names; it makes the StorageClass `standard` (default) provision local-path PVs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
PROVISIONER=kind.local/local-path-provisioner:$LPP_VERSION
HELPER=kind.local/local-path-helper:busybox
start=$(date +%s)
T=$W/imgroot; rm -rf "$T/lpp" "$T/lpp-helper"
mkdir -p "$T/lpp/usr/local/bin" "$T/lpp/tmp" "$T/lpp/etc"; chmod 1777 "$T/lpp/tmp"
cp "$B/local-path-provisioner" "$T/lpp/usr/local/bin/"
echo 'nobody:x:65534:65534:nobody:/:/bin/false' > "$T/lpp/etc/passwd"
mkimg "$PROVISIONER" "$T/lpp" "$PATHENV" 'ENTRYPOINT ["/usr/local/bin/local-path-provisioner"]'
busybox_into "$T/lpp-helper"
mkimg "$HELPER" "$T/lpp-helper" "$PATHENV" 'CMD ["/bin/sh"]'
KIND_DIR=$(go mod download -json sigs.k8s.io/kind@"$KIND_VERSION" | jq -r .Dir)
SRC=$KIND_DIR/pkg/build/nodeimage/const_storage.go
# the manifest is the Go raw string after `const defaultStorageManifest = `, with the two image constants spliced in
awk '/^const defaultStorageManifest = `/ {on=1; next} on && /^`/ {exit} on {print}' "$SRC" |
  sed -e "s#\` + storageProvisionerImage + \`#$PROVISIONER#g" -e "s#\` + storageHelperImage + \`#$HELPER#g" > "$W/default-storage.yaml"
if ! { grep -q "image: $PROVISIONER" "$W/default-storage.yaml" && grep -q "image: $HELPER" "$W/default-storage.yaml" &&
  grep -q 'provisioner: rancher.io/local-path' "$W/default-storage.yaml"; }; then
  echo "could not extract kind's storage manifest from $SRC"; exit 1
fi
echo "  default-storage.yaml from kind $KIND_VERSION ($(grep -c '^kind:' "$W/default-storage.yaml") objects)"
echo "stage36 $(( $(date +%s)-start ))s"
