#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the history store's tests (Debian's postgresql package,
# installed when missing, as hack/e2e-deps.sh installs the e2e's dependencies).
#
#   hack/postgres.sh start PORT   # prints the data directory, the server's version, the connection string
#   hack/postgres.sh stop DIR     # stops the server and removes DIR
#   hack/postgres.sh down DIR     # stops the server as a crash would (immediate), keeping its data
#   hack/postgres.sh up DIR       # starts it again, on the same port, with the same settings
#
# POSTGRES_BIN=DIR uses the initdb, pg_ctl and postgres in DIR instead (another PostgreSQL version; see
# docs/design.md, "versions tested"); POSTGRES_OPTIONS adds server settings (e.g. "-c shared_buffers=1GB").
set -euo pipefail

bindir() {
	if [ -n "${POSTGRES_BIN:-}" ]; then echo "$POSTGRES_BIN"; return; fi
	ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

as_postgres() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
	port=${2:?port}
	if [ -z "$(bindir)" ]; then
		echo "installing Debian's postgresql package" >&2
		sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
		$sudo apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
	fi
	bin=$(bindir)
	[ -x "$bin/postgres" ] || { echo "postgres.sh: no PostgreSQL in $bin" >&2; exit 1; }
	dir=$(mktemp -d /tmp/playersessions-pg.XXXXXX)
	started=""
	trap '[ -n "$started" ] || rm -rf "$dir"' EXIT # a server that did not start leaves nothing behind
	chmod 755 "$dir"
	if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
	as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
	echo "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 ${POSTGRES_OPTIONS:-}" >"$dir/options"
	as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "$(cat "$dir/options")" start >/dev/null
	started=1
	echo "$dir"
	"$bin/postgres" --version
	echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	;;
stop)
	dir=${2:?dir}
	as_postgres "$(bindir)/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$dir"
	;;
down)
	dir=${2:?dir}
	as_postgres "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
	;;
up)
	dir=${2:?dir}
	as_postgres "$(bindir)/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "$(cat "$dir/options")" start >/dev/null
	;;
*)
	echo "usage: $0 start PORT | stop DIR | down DIR | up DIR" >&2
	exit 2
	;;
esac
