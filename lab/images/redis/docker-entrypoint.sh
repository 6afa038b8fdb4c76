#!/bin/sh
# Mimics the official redis image's entrypoint on Debian's redis-server.
set -e

# `docker run IMAGE --appendonly yes` or `docker run IMAGE /path/redis.conf`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = "redis-server" ]; then
	shift
	if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
		# A config file (must stay the first argument): its settings win, as with the official
		# image, whose only changed default is "protected-mode no".
		conf="$1"
		shift
		if grep -Eqs '^[[:space:]]*protected-mode[[:space:]]' "$conf"; then
			set -- redis-server "$conf" "$@"
		else
			set -- redis-server "$conf" --protected-mode no "$@"
		fi
	else
		# No config file: the official image's behaviour (answer on every address, data in /data);
		# options given by the user come later and win.
		set -- redis-server --protected-mode no --bind 0.0.0.0 --dir /data "$@"
	fi

	# Drop root, after giving the redis user what it must own (like the official image).
	if [ "$(id -u)" = 0 ]; then
		find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
		um="$(umask)"
		if [ "$um" = 0022 ]; then umask 0077; fi
		exec setpriv --reuid=redis --regid=redis --init-groups "$@"
	fi
fi

exec "$@"
