#!/usr/bin/env bash
# Entrypoint of the MariaDB stand-in; mirrors the official mariadb image's docker-entrypoint.sh: when the data
# directory has no database yet, initialise it from MARIADB_* (or the MYSQL_* aliases) with a temporary server
# that listens on the socket only, run /docker-entrypoint-initdb.d/*, stop it, then exec mariadbd as mysql.
# Supported: MARIADB_ROOT_PASSWORD[_FILE], MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, MARIADB_RANDOM_ROOT_PASSWORD,
# MARIADB_ROOT_HOST (default %), MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD[_FILE], each also as
# MYSQL_*; initdb files *.sh, *.sql, *.sql.gz. Not supported (docs/images.md): *_HASH passwords, time zone
# tables (MARIADB_INITDB_SKIP_TZINFO is implied), MARIADB_AUTO_UPGRADE, replication variables.
set -eo pipefail
shopt -s nullglob

mysql_log() {
	local type="$1"; shift
	printf '%s [%s] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$type" "$*"
}
mysql_note() { mysql_log Note "$@"; }
mysql_warn() { mysql_log Warn "$@" >&2; }
mysql_error() { mysql_log ERROR "$@" >&2; exit 1; }

# file_env VAR [DEFAULT] [ALIAS]: VAR from VAR, VAR_FILE, ALIAS or ALIAS_FILE (in that order), else DEFAULT.
file_env() {
	local var="$1" def="${2:-}" alias="${3:-}"
	local fileVar="${var}_FILE" aliasFileVar="${alias}_FILE"
	if [ -n "${!var:-}" ] && [ -n "${!fileVar:-}" ]; then
		mysql_error "both $var and $fileVar are set (but are exclusive)"
	fi
	local val="$def"
	if [ -n "${!var:-}" ]; then
		val="${!var}"
	elif [ -n "${!fileVar:-}" ]; then
		val="$(< "${!fileVar}")"
	elif [ -n "$alias" ] && [ -n "${!alias:-}" ]; then
		val="${!alias}"
	elif [ -n "$alias" ] && [ -n "${!aliasFileVar:-}" ]; then
		val="$(< "${!aliasFileVar}")"
	fi
	unset "$fileVar" "$alias" "$aliasFileVar"
	export "$var"="$val"
}

# mysql_get_config NAME [mariadbd args...]: the effective value of a server option.
mysql_get_config() {
	local conf="$1"; shift
	"$@" --verbose --help 2>/dev/null | awk -v conf="$conf" '$1 == conf && /^[^ \t]/ { sub(/^[^ \t]+[ \t]+/, ""); print; exit }'
}

docker_setup_env() {
	declare -g DATADIR SOCKET
	DATADIR="$(mysql_get_config 'datadir' "$@")"
	SOCKET="$(mysql_get_config 'socket' "$@")"
	file_env 'MARIADB_ROOT_HOST' '%' 'MYSQL_ROOT_HOST'
	file_env 'MARIADB_DATABASE' '' 'MYSQL_DATABASE'
	file_env 'MARIADB_USER' '' 'MYSQL_USER'
	file_env 'MARIADB_PASSWORD' '' 'MYSQL_PASSWORD'
	file_env 'MARIADB_ROOT_PASSWORD' '' 'MYSQL_ROOT_PASSWORD'
	file_env 'MARIADB_ALLOW_EMPTY_ROOT_PASSWORD' '' 'MYSQL_ALLOW_EMPTY_PASSWORD'
	file_env 'MARIADB_RANDOM_ROOT_PASSWORD' '' 'MYSQL_RANDOM_ROOT_PASSWORD'
	declare -g DATABASE_ALREADY_EXISTS=
	if [ -d "$DATADIR/mysql" ]; then
		DATABASE_ALREADY_EXISTS='true'
	fi
}

docker_create_db_directories() {
	local user
	user="$(id -u)"
	mkdir -p "$DATADIR" /run/mysqld
	if [ "$user" = 0 ]; then
		# Only the top of a fresh data directory is chowned; an existing one is left as it is.
		find "$DATADIR" \! -user mysql -maxdepth 0 -exec chown mysql: '{}' \;
		chown mysql: /run/mysqld || :
	fi
}

docker_verify_minimum_env() {
	if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
		mysql_error $'Database is uninitialized and password option is not specified\n\tYou need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD'
	fi
	if [ -n "$MARIADB_USER" ] && [ -z "$MARIADB_PASSWORD" ]; then
		mysql_warn 'MARIADB_USER is set but MARIADB_PASSWORD is empty: the user will have no password'
	fi
	if [ "$MARIADB_USER" = root ]; then
		mysql_error 'MARIADB_USER="root", MARIADB_USER and MARIADB_PASSWORD are for configuring a regular user and cannot be used for the root user'
	fi
}

# random_string SET: 32 random characters of SET (no quotes or backslashes). `head` closing the pipe is
# expected, so SIGPIPE of the producers is not an error here.
random_string() {
	LC_ALL=C tr -dc "$1" </dev/urandom | LC_ALL=C tr -d "'\\\\\"" | head -c 32 || true
}

docker_sql_escape_string_literal() {
	local escaped=${1//\\/\\\\}
	echo "${escaped//\'/\\\'}"
}

# docker_process_sql [--dont-use-mysql-root-password] [mariadb args...] < SQL
docker_process_sql() {
	local passfileArgs=()
	if [ '--dont-use-mysql-root-password' = "$1" ]; then
		shift
		MYSQL_PWD='' mariadb --protocol=socket -uroot -hlocalhost --socket="$SOCKET" "$@"
		return
	fi
	MYSQL_PWD=$MARIADB_ROOT_PASSWORD mariadb --protocol=socket -uroot -hlocalhost --socket="$SOCKET" "${passfileArgs[@]}" "$@"
}

docker_temp_server_start() {
	"$@" --skip-networking --default-time-zone=SYSTEM --socket="${SOCKET}" --wsrep_on=OFF \
		--expire-logs-days=0 --skip-slave-start \
		--loose-innodb_buffer_pool_load_at_startup=0 --loose-innodb_buffer_pool_dump_at_shutdown=0 &
	declare -g MARIADB_PID
	MARIADB_PID=$!
	mysql_note "Waiting for server startup"
	local i
	for i in {30..0}; do
		if docker_process_sql --dont-use-mysql-root-password --database=mysql <<<'SELECT 1' &>/dev/null; then
			break
		fi
		kill -0 "$MARIADB_PID" 2>/dev/null || mysql_error 'Unable to start server.'
		sleep 1
	done
	if [ "$i" = 0 ]; then
		mysql_error 'Unable to start server.'
	fi
}

docker_temp_server_stop() {
	kill "$MARIADB_PID"
	wait "$MARIADB_PID"
}

docker_init_database_dir() {
	mysql_note "Initializing database files"
	mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal --skip-test-db \
		--old-mode='UTF8_IS_UTF8MB3' --default-time-zone=SYSTEM --enforce-storage-engine= --skip-log-bin \
		--expire-logs-days=0 --loose-innodb_buffer_pool_load_at_startup=0 \
		--loose-innodb_buffer_pool_dump_at_shutdown=0 "${@:2}" >/dev/null
	mysql_note "Database files initialized"
}

docker_setup_db() {
	if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
		MARIADB_ROOT_PASSWORD="$(random_string '[:graph:]')"
		export MARIADB_ROOT_PASSWORD
		mysql_note "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
	fi
	local rootPasswordEscaped rootCreate='' rootLocalhostPass=''
	rootPasswordEscaped=$(docker_sql_escape_string_literal "${MARIADB_ROOT_PASSWORD}")
	if [ -n "$MARIADB_ROOT_HOST" ] && [ "$MARIADB_ROOT_HOST" != 'localhost' ]; then
		rootCreate="CREATE USER 'root'@'${MARIADB_ROOT_HOST}' IDENTIFIED BY '${rootPasswordEscaped}' ;
			GRANT ALL ON *.* TO 'root'@'${MARIADB_ROOT_HOST}' WITH GRANT OPTION ;
			GRANT PROXY ON ''@'%' TO 'root'@'${MARIADB_ROOT_HOST}' WITH GRANT OPTION;"
	fi
	if [ -n "$MARIADB_ROOT_PASSWORD" ]; then
		rootLocalhostPass="SET PASSWORD FOR 'root'@'localhost'= PASSWORD('${rootPasswordEscaped}');"
	fi

	# The healthcheck user (USAGE only) and its credentials file, as in the official image.
	local healthPass healthPassEscaped
	healthPass="$(random_string 'A-Za-z0-9')"
	healthPassEscaped=$(docker_sql_escape_string_literal "$healthPass")
	printf '[mariadb-client]\nport=3306\nsocket=%s\nuser=healthcheck\npassword=%s\n' "$SOCKET" "$healthPass" \
		>"$DATADIR/.my-healthcheck.cnf"
	chmod 0600 "$DATADIR/.my-healthcheck.cnf"
	local createHealthCheckUsers="CREATE USER IF NOT EXISTS healthcheck@'127.0.0.1' IDENTIFIED BY '$healthPassEscaped';
		CREATE USER IF NOT EXISTS healthcheck@'::1' IDENTIFIED BY '$healthPassEscaped';
		CREATE USER IF NOT EXISTS healthcheck@localhost IDENTIFIED BY '$healthPassEscaped';"

	local createDatabase='' createUser='' userGrants=''
	if [ -n "$MARIADB_DATABASE" ]; then
		mysql_note "Creating database ${MARIADB_DATABASE}"
		createDatabase="CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
	fi
	if [ -n "$MARIADB_USER" ]; then
		local userPasswordEscaped
		userPasswordEscaped=$(docker_sql_escape_string_literal "${MARIADB_PASSWORD}")
		mysql_note "Creating user ${MARIADB_USER}"
		createUser="CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '$userPasswordEscaped';"
		if [ -n "$MARIADB_DATABASE" ]; then
			mysql_note "Giving user ${MARIADB_USER} access to schema ${MARIADB_DATABASE}"
			userGrants="GRANT ALL ON \`${MARIADB_DATABASE//_/\\_}\`.* TO '$MARIADB_USER'@'%';"
		fi
	fi

	mysql_note "Securing system users (equivalent to running mysql_secure_installation)"
	docker_process_sql --dont-use-mysql-root-password --database=mysql --binary-mode <<-EOSQL
		SET @orig_sql_log_bin= @@SESSION.SQL_LOG_BIN;
		SET @@SESSION.SQL_LOG_BIN=0;
		SET @@SESSION.SQL_MODE=REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');
		DROP USER IF EXISTS root@'127.0.0.1', root@'::1';
		EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\'', @@hostname,'\'');
		${rootLocalhostPass}
		${rootCreate}
		${createHealthCheckUsers}
		SET @@SESSION.SQL_LOG_BIN=@orig_sql_log_bin;
		${createDatabase}
		${createUser}
		${userGrants}
	EOSQL
}

docker_process_init_files() {
	echo
	local f
	for f; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					mysql_note "$0: running $f"
					"$f"
				else
					mysql_note "$0: sourcing $f"
					# shellcheck disable=SC1090
					. "$f"
				fi
				;;
			*.sql) mysql_note "$0: running $f"; docker_process_sql <"$f"; echo ;;
			*.sql.gz) mysql_note "$0: running $f"; gunzip -c "$f" | docker_process_sql; echo ;;
			*) mysql_warn "$0: ignoring $f" ;;
		esac
	done
}

_mysql_want_help() {
	local arg
	for arg; do
		case "$arg" in
			-'?'|--help|--print-defaults|-V|--version) return 0 ;;
		esac
	done
	return 1
}

_main() {
	# A first argument that is a flag is an argument of mariadbd.
	if [ "${1:0:1}" = '-' ]; then
		set -- mariadbd "$@"
	fi
	if { [ "$1" = 'mariadbd' ] || [ "$1" = 'mysqld' ]; } && ! _mysql_want_help "$@"; then
		mysql_note "Entrypoint script for MariaDB Server $(mariadbd --version | awk '{print $3}') started."
		docker_setup_env "$@"
		docker_create_db_directories
		# Step down from root to mysql (uid 999), re-running this script.
		if [ "$(id -u)" = 0 ]; then
			mysql_note "Switching to dedicated user 'mysql'"
			exec setpriv --reuid=mysql --regid=mysql --init-groups "${BASH_SOURCE[0]}" "$@"
		fi
		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			docker_verify_minimum_env
			docker_init_database_dir "$@"
			mysql_note "Starting temporary server"
			docker_temp_server_start "$@"
			mysql_note "Temporary server started."
			docker_setup_db
			docker_process_init_files /docker-entrypoint-initdb.d/*
			mysql_note "Stopping temporary server"
			docker_temp_server_stop
			mysql_note "Temporary server stopped"
			echo
			mysql_note "MariaDB init process done. Ready for start up."
			echo
		fi
	fi
	exec "$@"
}

_main "$@"
