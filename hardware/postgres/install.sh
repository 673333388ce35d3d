#!/usr/bin/env bash
# Make sure PostgreSQL's server programs (initdb, pg_ctl, postgres) are on this machine, for the tests that run
# the store on PostgreSQL (FABCTL_TEST_DB=postgres) and for bench/db_append.py. On Debian/Ubuntu as root it
# installs Debian's `postgresql` package when they are missing; it never starts or changes the system cluster
# (the tests start their own throwaway cluster: start.sh). Idempotent: ~0.05 s when already installed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if bindir=$("$HERE/bindir.sh"); then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install.sh: PostgreSQL's initdb/pg_ctl are not installed and this is not root on a Debian-like" \
       "system: install the PostgreSQL server package (e.g. apt-get install postgresql) or set PG_BINDIR" >&2
  exit 2
fi
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
bindir=$("$HERE/bindir.sh") || { echo "install.sh: postgresql installed but initdb not found" >&2; exit 1; }
echo "install.sh: PostgreSQL server installed ($bindir) in $(( $(date +%s) - start )) s"
