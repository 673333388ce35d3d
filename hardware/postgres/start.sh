#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for tests and benchmarks.
#
# Usage: start.sh DATADIR PORT
#   DATADIR  a directory that does not exist yet (its parent must exist); the cluster, its socket and log go there
#   PORT     TCP port on 127.0.0.1
# Environment:
#   PG_TEST_USER      superuser to create (default fabctl)
#   PG_TEST_PASSWORD  its password (default fabctl); TCP logins need it (scram-sha-256), the socket is trusted
# The server runs with fsync off: it is for tests only, never for records. As root, the cluster belongs to
# the `postgres` system user (PostgreSQL refuses to run as root). Stop and delete it with stop.sh DATADIR.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${1:?usage: start.sh DATADIR PORT}
PORT=${2:?usage: start.sh DATADIR PORT}
USER_NAME=${PG_TEST_USER:-fabctl}
PASSWORD=${PG_TEST_PASSWORD:-fabctl}
BIN=$("$HERE/bindir.sh") || { echo "start.sh: PostgreSQL is not installed: run hardware/postgres/install.sh" >&2; exit 2; }
[ ! -e "$DATA" ] || { echo "start.sh: $DATA exists already" >&2; exit 2; }

AS=()
mkdir -m 700 "$DATA"
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "start.sh: running as root but there is no postgres user" >&2; exit 2; }
  chown postgres: "$DATA"
  AS=(runuser -u postgres --)
  # the server must be able to reach its directory
  chmod o+x "$(dirname "$DATA")"
fi
PWFILE="$DATA/.pw"
(umask 077; printf '%s\n' "$PASSWORD" >"$PWFILE")
[ "$(id -u)" != 0 ] || chown postgres: "$PWFILE"
"${AS[@]}" "$BIN/initdb" -D "$DATA/db" -U "$USER_NAME" --pwfile="$PWFILE" --auth-local=trust \
  --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-sync >"$DATA/initdb.log" 2>&1 \
  || { cat "$DATA/initdb.log" >&2; exit 1; }
rm -f "$PWFILE"
"${AS[@]}" "$BIN/pg_ctl" -D "$DATA/db" -l "$DATA/server.log" -w -t 60 -s \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DATA -c fsync=off \
      -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB" start \
  || { cat "$DATA/server.log" >&2; exit 1; }
echo "postgresql://$USER_NAME@127.0.0.1:$PORT/postgres"
