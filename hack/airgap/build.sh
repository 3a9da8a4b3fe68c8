#!/bin/bash
# make node-image: build the offline kind node image (Kubernetes compiled from the Go module proxy, Debian
# rootfs, every image kubeadm and kind need baked in) and cache everything on this machine, so that only the
# first run compiles. A stage runs only when its output is missing or its inputs (script, sources, versions,
# upstream stages) changed; the node image carries the key of its inputs as a label.
#
#   hack/airgap/build.sh                 build what is missing, print timings
#   hack/airgap/build.sh --print-image   print the node image's name and exit
#   hack/airgap/build.sh --force STAGE   forget one stage's cache (e.g. 30-node-image.sh) before building
#   hack/airgap/build.sh --adopt STAGE   take the existing output of a stage run by hand as current
#   hack/airgap/build.sh --smoke         then smoke-test the image on a throw-away cluster (stages 40, 50, 60, 99)
#
# Env: WORK (cache; default ${XDG_CACHE_HOME:-$HOME/.cache}/filesync/airgap), NODE_IMAGE
#      (kindest/node:$K8S_VERSION-offline); the versions (K8S_VERSION, KIND_VERSION, ETCD_VERSION,
#      COREDNS_VERSION, CRICTL_VERSION, LPP_VERSION) come from hack/versions.env and are exported to the stages.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/airgap/lib.sh
. "$HERE/lib.sh"
# bin/kind (stage 05 installs it there when no kind is on PATH) for the stages that run kind
export PATH=$ROOT/bin:$PATH
export WORK=$W NODE_IMAGE
# the stages build modules of their own (src/*, a scratch module in $WORK), never the repository's go.work
export GOWORK=off
L=$W/logs; S=$W/stamps
mkdir -p "$L" "$S"

ADOPT='' SMOKE=0
while [ $# -gt 0 ]; do
  case $1 in
    --print-image) echo "$NODE_IMAGE"; exit 0 ;;
    --force) rm -f "$S/${2:?stage}"; shift 2 ;;
    --adopt) ADOPT=${2:?stage}; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    *) echo "usage: $0 [--print-image] [--force STAGE] [--adopt STAGE] [--smoke]" >&2; exit 2 ;;
  esac
done

# key FILE|DIR... : a short hash of the content of files and directories, plus every pin the stages read
key() {
  { echo "$K8S_VERSION $KIND_VERSION $ETCD_VERSION $COREDNS_VERSION $CRICTL_VERSION $LPP_VERSION $NODE_IMAGE"; for p in "$@"; do
      if [ -d "$p" ]; then (cd "$p" && find . -type f ! -name go.sum -print0 | sort -z | xargs -0 sha256sum); else sha256sum < "$p"; fi
    done; } | sha256sum | cut -c1-16
}
have() { local f; for f in "$@"; do [ -e "$f" ] || return 1; done; }

T0=$(date +%s)
# run STAGE KEY OUTPUT... : run the stage unless its stamp holds KEY and its outputs exist
run() {
  local stage=$1 k=$2; shift 2
  if [ "$stage" = "$ADOPT" ] && have "$@"; then echo "$k" > "$S/$stage"; echo "   $stage adopted"; fi
  if [ "$(cat "$S/$stage" 2>/dev/null)" = "$k" ] && have "$@"; then echo "   $stage cached"; return; fi
  local s
  s=$(date +%s)
  echo "== $stage (log: $L/$stage.log)"
  if ! "$HERE/$stage" > "$L/$stage.log" 2>&1; then
    echo "FAILED $stage (see $L/$stage.log)"; tail -20 "$L/$stage.log"; exit 1
  fi
  echo "$k" > "$S/$stage"
  echo "   $stage $(( $(date +%s)-s ))s"
}

node_image_key() { docker image inspect -f '{{index .Config.Labels "filesync.airgap.key"}}' "$NODE_IMAGE" 2>/dev/null || true; }

K05=$(key "$HERE/05-prereqs.sh")
K20=$(key "$HERE/20-k8s-binaries.sh")
K22=$(key "$HERE/22-aux-binaries.sh" "$HERE/src/etcd" "$HERE/src/coredns")
K23=$(key "$HERE/23-storage-binaries.sh")
K25=$(key "$HERE/25-node-rootfs.sh")
K35=$(echo "$K20 $K22 $K25 $(key "$HERE/35-cluster-images.sh" "$HERE/lib.sh")" | sha256sum | cut -c1-16)
K36=$(echo "$K23 $(key "$HERE/36-storage-images.sh" "$HERE/lib.sh")" | sha256sum | cut -c1-16)
K30=$(echo "$K20 $K22 $K25 $K35 $K36 $(key "$HERE/30-node-image.sh" "$HERE/node-files")" | sha256sum | cut -c1-16)

smoke() {
  [ "$SMOKE" = 1 ] || return 0
  local k40
  k40=$(key "$HERE/40-app-images.sh" "$HERE/lib.sh")
  run 22-aux-binaries.sh "$K22" "$W/bin/smoke-server"
  run 40-app-images.sh "$k40" "$W/images/example.local_smoke_v1.tar"
  docker image inspect example.local/smoke:v1 >/dev/null 2>&1 || docker load -i "$W/images/example.local_smoke_v1.tar"
  rm -f "$S/50-kind-up.sh" "$S/60-smoke.sh" "$S/99-teardown.sh"
  run 50-kind-up.sh x
  run 60-smoke.sh x
  run 99-teardown.sh x
  echo "smoke test of $NODE_IMAGE passed"
}

if [ "$(node_image_key)" = "$K30" ]; then
  echo "node image $NODE_IMAGE is current (key $K30)"
  smoke
  exit 0
fi
run 05-prereqs.sh "$K05" "$(command -v mmdebstrap || echo /nonexistent)"
# the rootfs (network and dpkg bound) overlaps the Kubernetes compile (CPU bound)
( run 25-node-rootfs.sh "$K25" "$W/node-rootfs/etc/os-release" ) & R25=$!
run 20-k8s-binaries.sh "$K20" "$B/kubelet" "$B/kubeadm" "$B/kube-apiserver" "$B/kube-controller-manager" "$B/kube-scheduler" "$B/kube-proxy" "$B/kubectl"
wait $R25
run 22-aux-binaries.sh "$K22" "$B/etcd" "$B/coredns" "$B/crictl" "$B/pause"
run 23-storage-binaries.sh "$K23" "$B/local-path-provisioner"
run 35-cluster-images.sh "$K35" "$W/images"
run 36-storage-images.sh "$K36" "$W/default-storage.yaml"
export NODE_IMAGE_KEY=$K30
rm -f "$S/30-node-image.sh"
run 30-node-image.sh "$K30"
[ "$(node_image_key)" = "$K30" ] || { echo "FAILED: $NODE_IMAGE does not carry key $K30"; exit 1; }
echo "node image $NODE_IMAGE built (key $K30) in $(( $(date +%s)-T0 ))s"
smoke
