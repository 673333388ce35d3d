#!/usr/bin/env bash
# Stop a cluster started by start.sh and delete its directory. Usage: stop.sh DATADIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${1:?usage: stop.sh DATADIR}
BIN=$("$HERE/bindir.sh") || exit 0
if [ -f "$DATA/db/postmaster.pid" ]; then
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA/db" -m immediate -w -s stop || true
  else
    "$BIN/pg_ctl" -D "$DATA/db" -m immediate -w -s stop || true
  fi
fi
rm -rf "$DATA"
