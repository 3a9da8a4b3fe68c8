#!/usr/bin/env bash
# healthcheck.sh of the MariaDB stand-in: the subset of the official image's script that probes use.
#   --connect              a client can connect (TCP to 127.0.0.1 when networking is on, else the socket)
#   --innodb_initialized   InnoDB is initialised and usable
#   --su-mysql             accepted for compatibility (the checks already run as any user that can read
#                          the credentials file)
# With no test, --connect is run. Credentials: /var/lib/mysql/.my-healthcheck.cnf, written by the
# entrypoint when it initialised the data directory (user healthcheck, USAGE only).
set -eo pipefail

DATADIR=${DATADIR:-/var/lib/mysql}
defaults=()
if [ -r "$DATADIR/.my-healthcheck.cnf" ]; then
	defaults=(--defaults-extra-file="$DATADIR/.my-healthcheck.cnf")
fi

sql() { mariadb "${defaults[@]}" --skip-column-names --batch -e "$1"; }

connect() {
	# The port is reachable and the server answers a query over TCP, as clients in other containers do.
	mariadb "${defaults[@]}" --protocol=tcp -h127.0.0.1 --skip-column-names --batch -e 'SELECT 1' >/dev/null
}

innodb_initialized() {
	[ "$(sql "SELECT 1 FROM information_schema.ENGINES WHERE engine='innodb' AND support in ('YES', 'DEFAULT', 'ENABLED')")" = 1 ]
}

tests=()
for arg; do
	case "$arg" in
		--connect) tests+=(connect) ;;
		--innodb_initialized) tests+=(innodb_initialized) ;;
		--su-mysql|--su=mysql) ;;
		*) echo "healthcheck.sh: unsupported option $arg" >&2; exit 2 ;;
	esac
done
[ ${#tests[@]} -gt 0 ] || tests=(connect)
for t in "${tests[@]}"; do
	if ! "$t"; then
		echo "healthcheck $t failed" >&2
		exit 1
	fi
done
