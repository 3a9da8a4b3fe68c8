#!/usr/bin/env bash
# make lint: shellcheck over every shell script of the kit: hack/ (with hack/images and hack/airgap), images/
# and .ci/. Installs Debian's shellcheck when it is missing (apt_install, as hack/docker.sh installs
# docker.io), so that actionlint, which `make lint` runs next, checks the workflows' run: blocks with it too.
# A script is a *.sh file, or a file whose first line is a sh or bash shebang; the settings are in
# .shellcheckrc.
#   hack/shellcheck.sh           check every script
#   hack/shellcheck.sh --install only make sure shellcheck is installed
set -o errexit -o nounset -o pipefail

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v shellcheck >/dev/null || apt_install shellcheck
command -v shellcheck >/dev/null || die "shellcheck still missing after installing Debian's shellcheck"
[ "${1:-}" = --install ] && exit 0

cd "$ROOT"
scripts=()
while IFS= read -r -d '' f; do
  case $f in
    *.sh) scripts+=("$f") ;;
    *) head -n1 "$f" | grep -Eq '^#!.*[/ ](ba)?sh([[:space:]]|$)' && scripts+=("$f") ;;
  esac
done < <(find hack images .ci -type f -print0 | sort -z)
[ ${#scripts[@]} -ge 30 ] || die "found only ${#scripts[@]} shell scripts under hack/, images/ and .ci/"
log "$(shellcheck --version | sed -n 's/^version: //p'): ${#scripts[@]} scripts"
shellcheck "${scripts[@]}"
