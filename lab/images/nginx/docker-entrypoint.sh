#!/bin/sh
# Mimics the official nginx image's entrypoint on Debian's nginx: runs /docker-entrypoint.d/*.sh,
# and renders /etc/nginx/templates/*.template into /etc/nginx/conf.d with envsubst (only the
# variables that are set are replaced).
set -e

log() { echo "$0: $*" >&2; }

if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
	for f in /docker-entrypoint.d/*.sh; do
		[ -e "$f" ] || continue
		if [ -x "$f" ]; then log "running $f"; "$f"; else log "ignoring $f, not executable"; fi
	done

	tdir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
	suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
	odir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
	if [ -d "$tdir" ]; then
		defined="$(printf '${%s} ' $(env | cut -d= -f1))"
		find "$tdir" -follow -type f -name "*$suffix" -print | while read -r t; do
			rel="${t#"$tdir"/}"
			out="$odir/${rel%"$suffix"}"
			mkdir -p "$(dirname "$out")"
			log "rendering $t to $out"
			envsubst "$defined" <"$t" >"$out"
		done
	fi
	log "configuration complete; ready for start up"
fi

exec "$@"
