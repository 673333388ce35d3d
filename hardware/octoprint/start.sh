#!/usr/bin/env bash
# Start a headless OctoPrint with its Virtual Printer on 127.0.0.1, for fabctl's integration tests.
#
# Usage: start.sh BASEDIR [PORT]
#   BASEDIR  OctoPrint basedir; seeded from config.yaml.tmpl when new (use a temp dir in tests)
#   PORT     TCP port on 127.0.0.1 (default: a free one)
# Environment:
#   OCTOPRINT_VENV    venv made by install.sh (default: .octoprint-venv at the repository root)
#   OCTOPRINT_USER    admin user (default: fabctl)       OCTOPRINT_PASS  its password (default: random)
#   OCTOPRINT_APIKEY  the user's API key (default: random, kept in BASEDIR/apikey)
#   START_TIMEOUT     seconds to wait for the API (default: 60)
# Prints, shell-eval friendly:  APIKEY=<key> PID=<pid> URL=<base url>
# Exit codes: 2 usage/no OctoPrint, 3 already running, 4 server died, 5 API not up in time.
set -euo pipefail
BASEDIR=${1:?usage: start.sh BASEDIR [PORT]}
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${OCTOPRINT_VENV:-$(dirname "$(dirname "$HERE")")/.octoprint-venv}
OP="$VENV/bin/octoprint"
PY="$VENV/bin/python"
[ -x "$OP" ] || { echo "start.sh: no OctoPrint in $VENV (run hardware/octoprint/install.sh)" >&2; exit 2; }
PORT=${2:-$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
USER_NAME=${OCTOPRINT_USER:-fabctl}
URL="http://127.0.0.1:$PORT"
mkdir -p "$BASEDIR"
BASEDIR=$(cd "$BASEDIR" && pwd)

if [ -f "$BASEDIR/octoprint.pid" ] && kill -0 "$(cat "$BASEDIR/octoprint.pid")" 2>/dev/null; then
  echo "start.sh: already running with PID $(cat "$BASEDIR/octoprint.pid")" >&2; exit 3
fi

# config: always rewritten for the port asked for; settings changed through the API are kept otherwise
if [ -f "$BASEDIR/config.yaml" ]; then
  "$PY" - "$BASEDIR/config.yaml" "$PORT" <<'PY'
import sys, yaml
path, port = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    cfg = yaml.safe_load(f) or {}
cfg.setdefault("server", {})["port"] = port
with open(path, "w") as f:
    yaml.safe_dump(cfg, f, default_flow_style=False)
PY
else
  sed "s/@PORT@/$PORT/" "$HERE/config.yaml.tmpl" > "$BASEDIR/config.yaml"
fi

# admin user with a known per-user API key (the global key is deprecated, gone in 1.13)
if [ ! -f "$BASEDIR/users.yaml" ] || ! grep -q "^$USER_NAME:" "$BASEDIR/users.yaml"; then
  PASS=${OCTOPRINT_PASS:-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(12))')}
  "$OP" --basedir "$BASEDIR" user add "$USER_NAME" --password "$PASS" --admin >/dev/null 2>&1 \
    || { echo "start.sh: octoprint user add failed" >&2; exit 2; }
fi
if [ ! -f "$BASEDIR/apikey" ]; then
  (umask 077; echo "${OCTOPRINT_APIKEY:-$("$PY" -c 'import secrets; print(secrets.token_hex(16).upper())')}" \
    > "$BASEDIR/apikey")
fi
APIKEY=$(cat "$BASEDIR/apikey")
"$PY" - "$BASEDIR/users.yaml" "$USER_NAME" "$APIKEY" <<'PY'
import sys, yaml
path, user, key = sys.argv[1:4]
with open(path) as f:
    users = yaml.safe_load(f) or {}
users[user]["apikey"] = key
with open(path, "w") as f:
    yaml.safe_dump(users, f, default_flow_style=False)
PY

# --iknowwhatimdoing: OctoPrint refuses to run as root without it (CI runs as root)
nohup "$OP" serve --basedir "$BASEDIR" --host 127.0.0.1 --port "$PORT" --iknowwhatimdoing \
  > "$BASEDIR/serve.out" 2>&1 < /dev/null &
PID=$!
echo "$PID" > "$BASEDIR/octoprint.pid"

rc=0
"$PY" - "$URL" "$APIKEY" "$PID" "${START_TIMEOUT:-60}" <<'PY' || rc=$?
import http.client, os, sys, time, urllib.error, urllib.request
url, key, pid, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + timeout
while True:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        print("start.sh: OctoPrint exited during start", file=sys.stderr)
        sys.exit(4)
    req = urllib.request.Request(url + "/api/version", headers={"X-Api-Key": key})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            if resp.status == 200:
                break
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        pass  # not up yet (OctoPrint answers a bare "Not found" while it starts)
    if time.monotonic() > deadline:
        print(f"start.sh: API did not answer within {timeout:g} s", file=sys.stderr)
        sys.exit(5)
    time.sleep(0.2)
PY
if [ "$rc" -ne 0 ]; then tail -20 "$BASEDIR/serve.out" >&2; exit "$rc"; fi
echo "APIKEY=$APIKEY"
echo "PID=$PID"
echo "URL=$URL"
