#!/usr/bin/env bash
# Install a pinned OctoPrint (server + bundled Virtual Printer) into its own venv, for fabctl's
# integration tests. OctoPrint is AGPL and pins old Flask/tornado/Click: it never enters fabctl's venv.
#
# Usage: install.sh [VENV_DIR]
#   VENV_DIR   default: .octoprint-venv at the repository root (gitignored)
# Environment:
#   OCTOPRINT_VERSION  default 1.11.8 (newest stable, verified on Python 3.11)
#   PYTHON             interpreter for the venv (default: python3.11, else python3)
# Idempotent: when VENV_DIR already has that version it exits 0 at once (~0.1 s).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${1:-$(dirname "$(dirname "$HERE")")/.octoprint-venv}
VERSION=${OCTOPRINT_VERSION:-1.11.8}
STAMP="$VENV/.fabctl-octoprint-$VERSION"

if [ -f "$STAMP" ] && [ -x "$VENV/bin/octoprint" ]; then
  exit 0
fi

# one install at a time (parallel test runs share the venv)
mkdir -p "$VENV"
exec 9>"$VENV/.install.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if [ -f "$STAMP" ] && [ -x "$VENV/bin/octoprint" ]; then
  exit 0
fi

if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif command -v python3.11 >/dev/null 2>&1; then PY=python3.11
else PY=python3
fi
"$PY" -c 'import sys; assert (3, 8) <= sys.version_info[:2] < (3, 14), sys.version' \
  || { echo "install.sh: $PY is not a Python OctoPrint $VERSION supports" >&2; exit 2; }

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
rm -f "$VENV"/.fabctl-octoprint-*
LOG="$VENV/install.log"
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "octoprint==$VERSION" >"$LOG" 2>&1; then
  echo "install.sh: pip install octoprint==$VERSION failed; last lines of $LOG:" >&2
  { grep -v 'is ignored: it is neither' "$LOG" || true; } | tail -20 >&2
  exit 3
fi
"$VENV/bin/octoprint" --version >/dev/null
touch "$STAMP"
echo "installed OctoPrint $VERSION into $VENV in $(( $(date +%s) - start )) s" >&2
