#!/bin/sh
# Mimics the official redis image's entrypoint on Debian's redis-server, and adds the modes of a
# Sentinel-managed pair (swarmlab's own; the official image has none of them):
#   primary [OPTION...]   redis-server that starts as the primary
#   replica [OPTION...]   redis-server that starts as a replica of $REDIS_PRIMARY
#   sentinel [OPTION...]  redis-sentinel (port 26379) monitoring the primary
# Environment of these modes:
#   REDIS_PRIMARY         the name the first primary is reached by ("redis-a": a service's name)
#   REDIS_ANNOUNCE        the name this one is reached by (default: the host name): a swarm
#                         task's address changes, so the members know each other by names
#   REDIS_SENTINELS       the sentinels' names ("s1,s2,s3"), asked at start who the primary is
#   REDIS_MASTER_NAME     mymaster; REDIS_QUORUM 2; REDIS_DOWN_AFTER_MS 2000;
#   REDIS_FAILOVER_TIMEOUT_MS 10000
set -e

# `docker run IMAGE --appendonly yes` or `docker run IMAGE /path/redis.conf`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

master="${REDIS_MASTER_NAME:-mymaster}"
announce="${REDIS_ANNOUNCE:-$(hostname)}"

# current_primary: the primary the sentinels know now (empty when none answers). After a
# failover it is no more the one the stack file names, for a data node or a sentinel that
# starts again.
current_primary() {
	for s in $(echo "${REDIS_SENTINELS:-}" | tr ',' ' '); do
		[ "$s" = "$announce" ] && continue
		p="$(redis-cli -h "$s" -p 26379 --raw SENTINEL get-master-addr-by-name "$master" 2>/dev/null | head -n 1)" || continue
		case "$p" in "" | *ERR* | *rror*) continue ;; esac
		echo "$p"
		return
	done
}

case "$1" in
primary | replica)
	role="$1"
	shift
	primary="$(current_primary)"
	if [ -z "$primary" ] && [ "$role" = replica ]; then
		primary="${REDIS_PRIMARY:?REDIS_PRIMARY: the name of the primary}"
	fi
	if [ -n "$primary" ] && [ "$primary" != "$announce" ]; then
		echo "docker-entrypoint: a replica of $primary (announced as $announce)" >&2
		set -- redis-server --replicaof "$primary" 6379 --replica-announce-ip "$announce" "$@"
	else
		echo "docker-entrypoint: the primary (announced as $announce)" >&2
		set -- redis-server --replica-announce-ip "$announce" "$@"
	fi
	;;
sentinel)
	shift
	primary="$(current_primary)"
	primary="${primary:-${REDIS_PRIMARY:?REDIS_PRIMARY: the name of the primary}}"
	# Sentinel resolves the name once, when it reads its configuration: wait for it (a minute).
	i=0
	while ! redis-cli -h "$primary" ping >/dev/null 2>&1 && [ $i -lt 60 ]; do
		i=$((i + 1))
		sleep 1
	done
	echo "docker-entrypoint: a sentinel of $master at $primary (announced as $announce)" >&2
	# Sentinel rewrites its configuration file (what it learns): one it can write, made anew at
	# each start. Names, not addresses (resolve-hostnames, announce-hostnames): task addresses
	# change.
	conf=/data/sentinel.conf
	cat >"$conf" <<-CONF
		port 26379
		protected-mode no
		dir /data
		sentinel resolve-hostnames yes
		sentinel announce-hostnames yes
		sentinel announce-ip $announce
		sentinel monitor $master $primary 6379 ${REDIS_QUORUM:-2}
		sentinel down-after-milliseconds $master ${REDIS_DOWN_AFTER_MS:-2000}
		sentinel failover-timeout $master ${REDIS_FAILOVER_TIMEOUT_MS:-10000}
		sentinel parallel-syncs $master 1
	CONF
	set -- redis-sentinel "$conf" "$@"
	;;
esac

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
fi

# Drop root, after giving the redis user what it must own (like the official image).
if { [ "$1" = redis-server ] || [ "$1" = redis-sentinel ]; } && [ "$(id -u)" = 0 ]; then
	find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
	um="$(umask)"
	if [ "$um" = 0022 ]; then umask 0077; fi
	exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi

exec "$@"
