#!/usr/bin/env bash
# Entrypoint of the WordPress stand-in; mirrors the official image's docker-entrypoint.sh
# (docker-library/wordpress): on start, copy WordPress from /usr/src/wordpress into the working directory
# (/var/www/html) when it is not there yet, generate wp-config.php from WORDPRESS_* env when it is missing,
# then exec the command (apache2-foreground). Differences from the official script (docs/images.md):
#   - files that already exist are never overwritten (tar --skip-old-files), not only "pluggable" plugin and
#     theme directories: wp-content may be a volume that a sidecar filled before Apache starts;
#   - the salts default to random values from /dev/urandom, as in the official script.
set -Eeuo pipefail

if [[ "$1" == apache2* ]] || [ "$1" = 'php-fpm' ]; then
	uid="$(id -u)"
	gid="$(id -g)"
	if [ "$uid" = '0' ]; then
		case "$1" in
			apache2*)
				user="${APACHE_RUN_USER:-www-data}"
				group="${APACHE_RUN_GROUP:-www-data}"

				# strip off any '#' symbol ('#1000' is valid syntax for Apache)
				pound='#'
				user="${user#"$pound"}"
				group="${group#"$pound"}"
				;;
			*) # php-fpm
				user='www-data'
				group='www-data'
				;;
		esac
	else
		user="$uid"
		group="$gid"
	fi

	if [ ! -e index.php ] && [ ! -e wp-includes/version.php ]; then
		# If the directory exists and WordPress doesn't appear to be installed AND the permissions of it are
		# root:root, chown it (likely a Docker-created directory).
		if [ "$uid" = '0' ] && [ "$(stat -c '%u:%g' .)" = '0:0' ]; then
			chown "$user:$group" .
		fi

		echo >&2 "WordPress not found in $PWD - copying now..."
		if [ -n "$(find . -mindepth 1 -maxdepth 1 -not -name wp-content)" ]; then
			echo >&2 "WARNING: $PWD is not empty! (copying anyhow)"
		fi
		sourceTarArgs=(
			--create
			--file -
			--directory /usr/src/wordpress
			--owner "$user" --group "$group"
		)
		targetTarArgs=(
			--extract
			--file -
			# Never replace what is already there (the official script only protects the "pluggable" dirs).
			--skip-old-files
		)
		if [ "$uid" != '0' ]; then
			# The official script adds --no-overwrite-dir here (GNU tar refuses it next to --skip-old-files);
			# --touch avoids "Cannot utime" on existing directories owned by someone else.
			targetTarArgs+=( --touch )
		fi
		# Loop over "pluggable" content in the source; if it already exists in the destination, skip it as a
		# whole, so an existing plugin or theme is never mixed with the bundled version of it.
		for contentPath in \
			/usr/src/wordpress/.htaccess \
			/usr/src/wordpress/wp-content/*/*/ \
		; do
			contentPath="${contentPath%/}"
			[ -e "$contentPath" ] || continue
			contentPath="${contentPath#/usr/src/wordpress/}" # "wp-content/plugins/akismet", etc.
			if [ -e "$PWD/$contentPath" ]; then
				echo >&2 "WARNING: '$PWD/$contentPath' exists! (not copying the WordPress version)"
				sourceTarArgs+=( --exclude "./$contentPath" )
			fi
		done
		tar "${sourceTarArgs[@]}" . | tar "${targetTarArgs[@]}"
		echo >&2 "Complete! WordPress has been successfully copied to $PWD"
	fi

	wpEnvs=( "${!WORDPRESS_@}" )
	if [ ! -s wp-config.php ] && [ "${#wpEnvs[@]}" -gt 0 ]; then
		for wpConfigDocker in \
			wp-config-docker.php \
			/usr/src/wordpress/wp-config-docker.php \
		; do
			if [ -s "$wpConfigDocker" ]; then
				echo >&2 "No 'wp-config.php' found in $PWD, but 'WORDPRESS_...' variables supplied; copying '$wpConfigDocker' (${wpEnvs[*]})"
				# Replace every "put your unique phrase here" with a unique random string, so AUTH_KEY and friends
				# have safe defaults when they are not given as environment variables.
				awk '
					/put your unique phrase here/ {
						cmd = "head -c1m /dev/urandom | sha1sum | cut -d\\  -f1"
						cmd | getline str
						close(cmd)
						gsub("put your unique phrase here", str)
					}
					{ print }
				' "$wpConfigDocker" > wp-config.php
				if [ "$uid" = '0' ]; then
					# attempt to ensure that wp-config.php is owned by the run user
					# could be on a filesystem that doesn't allow chown (like some NFS setups)
					chown "$user:$group" wp-config.php || true
				fi
				break
			fi
		done
	fi
fi

exec "$@"
