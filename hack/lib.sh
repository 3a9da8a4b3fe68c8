# shellcheck shell=bash
# The one shell library of hack/ (sourced, not run): pins, logging, Debian packages, the registry probe, and
# the kind helpers of hack/up.sh, hack/deploy.sh and hack/e2e.sh (creating, waiting for and deploying to a
# cluster is Go: e2e/cmd/cluster and the suite share e2e/internal/cluster).
# Env: every key of hack/versions.env (the Makefile passes them; `load_pins` fills in what is unset),
#   CLUSTER (filesync), AIRGAP (auto|1|0), KIND_NODE_IMAGE, KIND (kind binary), KUBECTL (kubectl binary),
#   LOG_PREFIX (the script's name).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { echo "${LOG_PREFIX:-$(basename "$0")}: $*" >&2; }
die() { log "$*"; exit 1; }

# load_pins exports every KEY=value of hack/versions.env whose KEY is not already set in the environment
# (as the Makefile's `?=` does); `${KEY}` in a value refers to a key above it.
load_pins() {
  local key value
  while IFS='=' read -r key value; do
    [ -n "${!key+set}" ] && continue
    eval "value=\"$value\""
    export "$key=$value"
  done < <(sed -n 's/^\([A-Z0-9_]*=[^[:space:]]*\)[[:space:]]*$/\1/p' "$ROOT/hack/versions.env")
}
load_pins

# apt_install PKG... installs the Debian packages that are not installed yet: without refreshing the package
# lists first (fast on a warm machine), then once more after `apt-get update` when that fails (a fresh
# machine may have no lists). Uses sudo when not root.
apt_install() {
  local need=() p sudo=()
  for p; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  [ ${#need[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get to install them"
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: cannot install ${need[*]}"
    sudo=(sudo)
  fi
  log "installing ${need[*]}"
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
  fi
}

# registry_reachable IMAGE: does the container registry that Docker is configured for answer (asked
# through dockerd itself, so its mirrors and proxies count)? No answer within REGISTRY_PROBE_TIMEOUT (5 s)
# means no. IMAGE (a repository without tag) is what is searched for.
registry_reachable() {
  timeout "${REGISTRY_PROBE_TIMEOUT:-5}" docker search --limit 1 "$1" >/dev/null 2>&1
}

CLUSTER=${CLUSTER:-filesync}
AIRGAP=${AIRGAP:-auto}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-}
KIND=${KIND:-$(command -v "$ROOT/bin/kind" || command -v kind || echo kind)}
KUBECTL=${KUBECTL:-kubectl}
# shellcheck disable=SC2034 # OVERLAY and NAMESPACE are for hack/deploy.sh and hack/up.sh, which source this file
OVERLAY=$ROOT/examples/wordpress/overlays/kind NAMESPACE=wordpress
export KIND

kctl() { "$KUBECTL" --context "kind-$CLUSTER" "$@"; }

cluster_exists() { "$KIND" get clusters 2>/dev/null | grep -qx "$1"; }

# airgapped: the AIRGAP switch resolved (1: build and use the offline node image; 0: kind's default).
airgapped() {
  case $AIRGAP in
    1 | true | yes) return 0 ;;
    0 | false | no) return 1 ;;
    auto)
      if registry_reachable kindest/node; then return 1; fi # where kind's public node images live
      log "no container registry answers: using the offline node image (AIRGAP=0 to override)"
      return 0 ;;
    *) die "AIRGAP must be auto, 1 or 0, not '$AIRGAP'" ;;
  esac
}

# node_image prints the node image to create clusters with: KIND_NODE_IMAGE if set; the offline image
# (built or taken from the cache by hack/airgap/build.sh) when air-gapped; else nothing (kind's default).
node_image() {
  if [ -n "$KIND_NODE_IMAGE" ]; then echo "$KIND_NODE_IMAGE"; return; fi
  if airgapped; then
    "$ROOT/hack/airgap/build.sh" >&2
    "$ROOT/hack/airgap/build.sh" --print-image
  fi
}
