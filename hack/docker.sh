#!/usr/bin/env bash
# Make a working Docker engine available, idempotently, and fast when everything is already there:
#   1. install Debian's docker.io (and jq) when dockerd is missing (apt-get update only if the install needs it);
#   2. on a host whose capability bounding set lacks a capability runc asks for (this Firecracker VM has no
#      CAP_SYS_RESOURCE, so `docker run --privileged` and kind's node containers fail with "unable to apply
#      caps"), install the runc wrapper from hack/airgap/src/runc-nosysres and make it dockerd's default
#      runtime (daemon.json; a running dockerd reloads it on SIGHUP, nothing is restarted);
#   3. start dockerd with setsid when it is not running, and wait until `docker info` answers.
# A running dockerd is never stopped or restarted.
#
# Env: DOCKER_WAIT (seconds to wait for the engine, default 60), DOCKERD_LOG (default /var/log/dockerd.log),
#      RUNC_WRAPPER=auto|1|0 (auto: only when the bounding set lacks a capability; default auto).
set -o errexit -o nounset -o pipefail

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
WRAPPER_SRC=$ROOT/hack/airgap/src/runc-nosysres
WRAPPER_BIN=${RUNC_WRAPPER_BIN:-/usr/local/bin/runc-nosysres}
DAEMON_JSON=${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
DOCKER_WAIT=${DOCKER_WAIT:-60}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
RUNC_WRAPPER=${RUNC_WRAPPER:-auto}

# sudo only when we are not root and it exists; the recipe is meant for root on CI machines.
SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot install or start Docker"
  SUDO=(sudo)
fi

engine_up() { docker info >/dev/null 2>&1; }

# Fast path: engine answers and the wrapper (when wanted) is already the default runtime.
needs_wrapper() {
  case $RUNC_WRAPPER in
    0) return 1 ;;
    1) return 0 ;;
  esac
  # Every capability runc's default set for --privileged asks for is in the low 41 bits (0..40).
  local bnd
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  [ $(( 0x$bnd & 0x1ffffffffff )) != $(( 0x1ffffffffff )) ]
}

wrapper_current() {
  [ -x "$WRAPPER_BIN" ] || return 1
  # Rebuild when a source file is newer than the installed binary.
  [ -z "$(find "$WRAPPER_SRC" -type f -newer "$WRAPPER_BIN" -print -quit)" ]
}

daemon_json_current() {
  [ -f "$DAEMON_JSON" ] &&
    jq -e --arg p "$WRAPPER_BIN" '.runtimes["runc-nosysres"].path == $p and .["default-runtime"] == "runc-nosysres"' \
      "$DAEMON_JSON" >/dev/null 2>&1
}

install_packages() {
  local need=() p
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v docker >/dev/null || need+=(docker.io)
  if needs_wrapper; then command -v jq >/dev/null || need+=(jq); fi
  [ ${#need[@]} -eq 0 ] && return 0
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  apt_install "${need[@]}"
  for p in dockerd docker; do command -v "$p" >/dev/null || die "$p still missing after installing docker.io"; done
}

install_wrapper() {
  needs_wrapper || return 0
  if ! wrapper_current; then
    [ -d "$WRAPPER_SRC" ] || die "runc wrapper source not found at $WRAPPER_SRC"
    log "building $WRAPPER_BIN from ${WRAPPER_SRC#"$ROOT"/}"
    local tmp
    tmp=$(mktemp)
    (cd "$WRAPPER_SRC" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tmp" .)
    "${SUDO[@]}" install -m 0755 "$tmp" "$WRAPPER_BIN"
    rm -f "$tmp"
  fi
  if ! daemon_json_current; then
    log "registering runc-nosysres as dockerd's default runtime in $DAEMON_JSON"
    local base='{}' tmp
    "${SUDO[@]}" mkdir -p "$(dirname "$DAEMON_JSON")"
    if [ -s "$DAEMON_JSON" ]; then
      base=$(cat "$DAEMON_JSON")
      # Keep the first original around, so the change can be undone.
      [ -f "$DAEMON_JSON.orig" ] || "${SUDO[@]}" cp "$DAEMON_JSON" "$DAEMON_JSON.orig"
    fi
    tmp=$(mktemp)
    jq --arg p "$WRAPPER_BIN" '.runtimes["runc-nosysres"] = {"path": $p} | .["default-runtime"] = "runc-nosysres"' \
      <<<"$base" >"$tmp"
    "${SUDO[@]}" install -m 0644 "$tmp" "$DAEMON_JSON"
    rm -f "$tmp"
    local pid
    pid=$(pidof dockerd || true)
    if [ -n "$pid" ]; then
      # runtimes and default-runtime are live-reloadable: SIGHUP, no restart (a kind cluster may be running).
      "${SUDO[@]}" kill -HUP "$pid"
      local i
      for i in $(seq 20); do
        docker info --format '{{.DefaultRuntime}}' 2>/dev/null | grep -qx runc-nosysres && break
        sleep 0.5
      done
    fi
  fi
}

start_engine() {
  engine_up && return 0
  if ! pidof dockerd >/dev/null; then
    log "starting dockerd (log: $DOCKERD_LOG)"
    "${SUDO[@]}" mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid: dockerd must outlive this script and the CI step that ran it. Only stdin, stdout and stderr
    # are passed on: any other inherited descriptor stays open as long as dockerd runs (one from
    # `flock LOCK make e2e` kept that lock held by dockerd and containerd after the e2e had ended).
    # shellcheck disable=SC2016 # expanded by the inner shell
    "${SUDO[@]}" setsid bash -c 'for fd in /proc/self/fd/*; do n=${fd##*/}; [ "$n" -le 2 ] || eval "exec $n>&-"; done
      exec dockerd' >>"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  local i
  for ((i = 0; i < DOCKER_WAIT * 2; i++)); do
    engine_up && return 0
    sleep 0.5
  done
  tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
  die "Docker did not answer within ${DOCKER_WAIT}s"
}

main() {
  local start=$SECONDS
  install_packages
  install_wrapper
  start_engine
  if needs_wrapper; then
    [ "$(docker info --format '{{.DefaultRuntime}}')" = runc-nosysres ] ||
      die "dockerd does not use runc-nosysres as its default runtime (see $DAEMON_JSON)"
  fi
  log "ready: server $(docker version --format '{{.Server.Version}}'), default runtime $(docker info --format '{{.DefaultRuntime}}') ($((SECONDS - start))s)"
}

main "$@"
