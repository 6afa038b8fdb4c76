#!/bin/sh
# Mimics the official haproxy image's entrypoint on Debian's haproxy.
set -e

# `docker run IMAGE -f /my.cfg`
if [ "${1#-}" != "$1" ]; then
	set -- haproxy "$@"
fi

# master-worker mode, in the foreground
if [ "$1" = haproxy ]; then
	shift
	set -- haproxy -W -db "$@"
fi

exec "$@"
