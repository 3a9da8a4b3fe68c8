# shellcheck shell=bash
# Shared helpers for hack/images/*.sh: content-addressed caching of locally built images.
#
# Every image we build carries a label with the hash of its inputs (Dockerfile, files, pinned versions,
# package lists). A build is skipped when an image with that name and that hash exists, so a second
# `make image` / `make images` on the same machine takes a second or two. FORCE=1 rebuilds anyway.
# Debian-based stand-ins are built in two steps: an mmdebstrap rootfs imported as a one-layer base image
# (tagged with the hash of its package list and hook, so it is reused while only the entrypoint changes),
# then a Dockerfile `FROM` that base. Nothing is pulled from a registry.
set -o errexit -o nounset -o pipefail

LOG_PREFIX=images
# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
IMAGES_DIR=$ROOT/images
CACHE_DIR=${FILESYNC_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/filesync-images}
INPUTS_LABEL=io.filesync.image.inputs
# Bump to invalidate every cached image when the build recipe itself changes in a way hashes do not see.
RECIPE_VERSION=1
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
export DOCKER_BUILDKIT=0

# hash_inputs ARG... prints a sha256 over the arguments: an existing file or directory contributes its
# relative paths, modes and contents; anything else is taken as a literal string (a version, a name).
hash_inputs() {
  local a
  {
    echo "recipe $RECIPE_VERSION"
    for a in "$@"; do
      if [ -d "$a" ]; then
        echo "dir ${a#"$ROOT"/}"
        (cd "$a" && find . -type f -print0 | LC_ALL=C sort -z |
          xargs -0 -r stat -c '%n %a' && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
      elif [ -f "$a" ]; then
        echo "file ${a#"$ROOT"/} $(stat -c %a "$a") $(sha256sum <"$a" | cut -d' ' -f1)"
      else
        echo "lit $a"
      fi
    done
  } | sha256sum | cut -d' ' -f1
}

# image_inputs REF prints the inputs label of a local image (empty when the image does not exist).
image_inputs() {
  docker image inspect --format "{{ index .Config.Labels \"$INPUTS_LABEL\" }}" "$1" 2>/dev/null || true
}

# up_to_date REF HASH succeeds when REF exists locally with inputs HASH (and FORCE is not 1).
up_to_date() {
  [ "${FORCE:-0}" != 1 ] && [ "$(image_inputs "$1")" = "$2" ]
}

# exit_if_up_to_date REF HASH ends the script (status 0, saying so) when REF is up to date.
exit_if_up_to_date() {
  if up_to_date "$1" "$2"; then
    log "$1 is up to date"
    exit 0
  fi
}

# new_context sets ctx to a new, empty build context directory, removed when the script exits.
new_context() {
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
}

# image_size REF prints the image's size in MB.
image_size() {
  docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f MB", $1 / 1000 / 1000}'
}

# docker_build REF HASH CONTEXT DOCKERFILE [docker build args...] builds with the legacy builder and labels
# the result with its inputs hash. Output goes to a log file, shown only on failure.
docker_build() {
  local ref=$1 hash=$2 context=$3 dockerfile=$4
  shift 4
  local logf old
  old=$(docker image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
  logf=$(mktemp)
  if ! docker build --force-rm --label "$INPUTS_LABEL=$hash" --tag "$ref" --file "$dockerfile" "$@" "$context" >"$logf" 2>&1; then
    cat "$logf" >&2
    rm -f "$logf"
    die "docker build of $ref failed"
  fi
  rm -f "$logf"
  # The image this one replaces is dead weight once untagged (kept if a container still uses it).
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect --format '{{.Id}}' "$ref")" ] &&
    [ "$(docker image inspect --format '{{len .RepoTags}}' "$old" 2>/dev/null)" = 0 ]; then
    docker image rm "$old" >/dev/null 2>&1 || true
  fi
}

# done_msg REF START prints the one-line summary of a build.
done_msg() {
  log "built $1 in $((SECONDS - $2))s ($(image_size "$1"))"
}

# apt_sources prints the MIRROR arguments for mmdebstrap: APT_SOURCES when set (a sources file or a
# one-line "deb ..." entry), else the host's own sources when the host runs the same Debian release
# (keeps a local mirror or proxy configuration working), else nothing (mmdebstrap's default mirror).
apt_sources() {
  if [ -n "${APT_SOURCES:-}" ]; then
    echo "$APT_SOURCES"
    return
  fi
  local codename=""
  codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null || true)
  [ "$codename" = "$DEBIAN_SUITE" ] || return 0
  if [ -s /etc/apt/sources.list.d/debian.sources ]; then
    echo /etc/apt/sources.list.d/debian.sources
  elif [ -s /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
    echo /etc/apt/sources.list
  fi
}

# debian_base NAME prints the ref of the one-layer base image for images/NAME, building it with mmdebstrap
# when missing. images/NAME/packages lists the Debian packages (one a line, # comments);
# images/NAME/essential-hook.sh and images/NAME/rootfs-hook.sh, when present, run as mmdebstrap's essential
# and customize hooks with the rootfs directory as $1.
debian_base() {
  local name=$1 dir=$IMAGES_DIR/$1
  local ehook=$dir/essential-hook.sh hook=$dir/rootfs-hook.sh
  local hash
  hash=$(hash_inputs "$dir/packages" "$ehook" "$hook" "suite $DEBIAN_SUITE" "arch $(dpkg --print-architecture)")
  local ref=local/filesync-$name-rootfs:${hash:0:16}
  if [ "${FORCE:-0}" != 1 ] && docker image inspect "$ref" >/dev/null 2>&1; then
    echo "$ref"
    return
  fi
  command -v mmdebstrap >/dev/null || apt_install mmdebstrap
  local start=$SECONDS pkgs sources=()
  pkgs=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$dir/packages" | tr -s ' \n' ',' | sed 's/,$//')
  mapfile -t sources < <(apt_sources)
  local hookargs=()
  [ -f "$ehook" ] && hookargs+=(--essential-hook="$ehook \"\$1\"")
  [ -f "$hook" ] && hookargs+=(--customize-hook="$hook \"\$1\"")
  log "mmdebstrap $DEBIAN_SUITE for $name: $pkgs"
  local tarball logf
  mkdir -p "$CACHE_DIR"
  tarball=$(mktemp "$CACHE_DIR/$name-rootfs.XXXXXX.tar")
  logf=$CACHE_DIR/$name-mmdebstrap.log
  # Docs, man pages and translations are left out; apt's lists and caches are removed at the end.
  # shellcheck disable=SC2016 # "$1" is expanded by mmdebstrap's hook shell
  if ! mmdebstrap --variant=minbase --mode=root --format=tar \
    --include="$pkgs" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "${hookargs[@]}" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log "$1"/var/log/apt/*' \
    "$DEBIAN_SUITE" "$tarball" "${sources[@]}" >"$logf" 2>&1; then
    tail -n 40 "$logf" >&2
    rm -f "$tarball"
    die "mmdebstrap for $name failed (full log: $logf)"
  fi
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "$ref" >/dev/null
  rm -f "$tarball"
  # Older bases of the same image are dead weight now.
  docker image ls --format '{{.Repository}}:{{.Tag}}' "local/filesync-$name-rootfs" |
    grep -vx "$ref" | xargs -r docker image rm >/dev/null 2>&1 || true
  log "base $ref in $((SECONDS - start))s ($(image_size "$ref"))"
  echo "$ref"
}

# build_debian_image NAME REF builds images/NAME/Dockerfile FROM the mmdebstrap base of images/NAME,
# with images/NAME as the build context. Skipped when REF is up to date.
build_debian_image() {
  local name=$1 ref=$2 dir=$IMAGES_DIR/$1
  local hash
  hash=$(hash_inputs "$dir" "suite $DEBIAN_SUITE" "arch $(dpkg --print-architecture)")
  if up_to_date "$ref" "$hash"; then
    log "$ref is up to date"
    return
  fi
  local start=$SECONDS base
  base=$(debian_base "$name")
  docker_build "$ref" "$hash" "$dir" "$dir/Dockerfile" --build-arg "BASE=$base"
  done_msg "$ref" "$start"
}
