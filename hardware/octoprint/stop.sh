#!/usr/bin/env bash
# Stop the OctoPrint started by start.sh.  Usage: stop.sh BASEDIR
# SIGTERM to the PID in BASEDIR/octoprint.pid, SIGKILL after 10 s. Exits 0 when nothing runs.
set -uo pipefail
BASEDIR=${1:?usage: stop.sh BASEDIR}
PIDFILE="$BASEDIR/octoprint.pid"
[ -f "$PIDFILE" ] || exit 0
PID=$(cat "$PIDFILE")
if kill -0 "$PID" 2>/dev/null; then
  kill -TERM "$PID"
  for _ in $(seq 1 40); do kill -0 "$PID" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$PID" 2>/dev/null; then
    echo "stop.sh: PID $PID ignored SIGTERM, sending SIGKILL" >&2
    kill -KILL "$PID"
  fi
fi
rm -f "$PIDFILE"
