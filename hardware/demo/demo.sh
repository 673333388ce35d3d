#!/usr/bin/env bash
# `make demo`: the whole job on a fresh FABCTL_HOME, on the simulated SL1S-class LCD printer (sim-sl1s).
#
# Registers the example case-42, validates and supports it (pictures), starts the mock PrusaLink
# (hardware/mockprinter/prusalink.py) on 127.0.0.1 with exposure time scaled down so the print takes
# seconds, prints the case on sim-sl1s (demo-grey resin, built-in DEMO lot), shows and verifies the trace,
# writes the DRAFT device history record + label, and says where everything is. The mock printer is
# stopped on exit, also on failure or Ctrl-C.
#
# The shipped sim-sl1s profile names http://127.0.0.1:8125. When that port is free the demo uses the shipped
# profiles unchanged; when it is busy the mock listens on a free port and the demo prints with a copy of
# profiles/ (in $DEMO_HOME/profiles, via FABCTL_PROFILES_DIR) whose sim-sl1s url names that port; the
# trace then records that copy's profile hash.
#
# Usage: hardware/demo/demo.sh DEMO_HOME [FABCTL]
# env: DEMO_TIME_SCALE (default 0.001 s of mock time per s of exposure), DEMO_PYTHON (default: the python
# beside FABCTL; it runs the mock printer)
set -euo pipefail

DEMO_HOME=${1:?usage: demo.sh DEMO_HOME [FABCTL]}
FABCTL=${2:-.venv/bin/fabctl}
PY=${DEMO_PYTHON:-$(dirname "$FABCTL")/python}
TIME_SCALE=${DEMO_TIME_SCALE:-0.001}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PICS=$DEMO_HOME/pictures
REPORT=$DEMO_HOME/report

export FABCTL_HOME=$DEMO_HOME FABCTL_OPERATOR=${FABCTL_OPERATOR:-demo-tech}
unset FABCTL_DB_URL
# a fresh random password per run for the mock printer; fabctl reads it from the profile's password_env
FABCTL_PRUSALINK_PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(18))')
export FABCTL_PRUSALINK_PASSWORD
mkdir -p "$DEMO_HOME"

MOCK_PID=
cleanup() {
  if [[ -n $MOCK_PID ]] && kill -0 "$MOCK_PID" 2>/dev/null; then
    kill "$MOCK_PID" 2>/dev/null || true
    wait "$MOCK_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# start_mock PORT: the mock PrusaLink in the background (sets MOCK_PID and URL; not in a subshell, so the
# cleanup trap knows the pid); fails when it could not listen on PORT
start_mock() {
  local out=$DEMO_HOME/mock-prusalink.log
  URL=
  "$PY" -m mockprinter.prusalink --port "$1" --password "$FABCTL_PRUSALINK_PASSWORD" \
    --time-scale "$TIME_SCALE" >"$out.url" 2>"$out" &
  MOCK_PID=$!
  for _ in $(seq 100); do
    URL=$(sed -n 's/^URL=//p' "$out.url" 2>/dev/null)
    [[ -n $URL ]] && return 0
    kill -0 "$MOCK_PID" 2>/dev/null || { wait "$MOCK_PID" 2>/dev/null || true; MOCK_PID=; return 1; }
    sleep 0.1
  done
  echo "the mock PrusaLink did not start within 10 s (see $out)" >&2
  exit 4
}

step "profiles"
"$FABCTL" profile check
step "register the example design and plan"
"$FABCTL" case new case-42 --mesh "$ROOT/examples/case-42/guide.stl" --plan "$ROOT/examples/case-42/plan.json" \
  --units mm
# on the demo's printer, so the print below finds these stages in the cache
step "validate (pictures in $PICS)"
"$FABCTL" validate case-42 --printer sim-sl1s --resin demo-grey --render "$PICS"
step "orient and support (pictures in $PICS)"
"$FABCTL" support case-42 --printer sim-sl1s --render "$PICS"

step "start the simulated SL1S (mock PrusaLink, exposure x $TIME_SCALE)"
PROFILE_URL=$(sed -n 's/^url = "\(.*\)"$/\1/p' "$ROOT/profiles/printers/sim-sl1s.toml")
PROFILE_PORT=${PROFILE_URL##*:}
if start_mock "$PROFILE_PORT"; then
  echo "mock PrusaLink at $URL (the shipped sim-sl1s profile's url)"
else
  start_mock 0 || { echo "the mock PrusaLink could not start (see $DEMO_HOME/mock-prusalink.log)" >&2; exit 4; }
  echo "port $PROFILE_PORT is busy: mock PrusaLink at $URL; printing with a profile copy naming it"
  rm -rf "$DEMO_HOME/profiles"
  cp -r "$ROOT/profiles" "$DEMO_HOME/profiles"
  sed -i "s|^url = .*|url = \"$URL\"|" "$DEMO_HOME/profiles/printers/sim-sl1s.toml"
  export FABCTL_PROFILES_DIR=$DEMO_HOME/profiles
fi
"$FABCTL" printer status sim-sl1s

step "print case-42 on sim-sl1s (demo-grey resin, built-in DEMO lot)"
"$FABCTL" print case-42 --printer sim-sl1s --resin demo-grey
step "the case and its trace"
"$FABCTL" case show case-42
"$FABCTL" trace show case-42
"$FABCTL" trace verify
step "device history record (DRAFT: a demo resin is never released) and label"
"$FABCTL" report case-42 -o "$REPORT" --pictures "$PICS"

cleanup
MOCK_PID=
step "where things are"
echo "job file (SL1 archive) and layer preview: $(ls -d "$DEMO_HOME"/cases/case-42/artifacts/job-* | tr '\n' ' ')"
ls "$DEMO_HOME"/cases/case-42/artifacts/job-*/
echo "validation and support pictures:          $PICS"
echo "device history record and label:          $REPORT"
ls "$REPORT"
echo "demo finished in ${SECONDS} s"
