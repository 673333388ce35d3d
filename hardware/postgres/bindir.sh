#!/usr/bin/env bash
# Print the directory holding PostgreSQL's initdb and pg_ctl (Debian keeps them in
# /usr/lib/postgresql/<major>/bin, off PATH); exit 1 when there is none. Used by install.sh and start.sh.
set -euo pipefail
if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ] && [ -x "$PG_BINDIR/pg_ctl" ]; then
  echo "$PG_BINDIR"; exit 0
fi
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; exit 0; fi
done
if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
  dirname "$(command -v initdb)"; exit 0
fi
exit 1
