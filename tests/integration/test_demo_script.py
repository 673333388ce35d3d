"""hardware/demo/demo.sh (`make demo`): the mock PrusaLink it starts is up during the print and gone after,
also when the print fails; a busy profile port makes it print with a profile copy naming the mock's port.

The fabctl it drives is a stand-in script (the real one takes minutes here; the real run is `make demo`):
it logs each call and, for `print`, opens a TCP connection to the printer URL fabctl would use.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hardware" / "demo" / "demo.sh"

STAND_IN = """#!/usr/bin/env bash
echo "$*|${FABCTL_PROFILES_DIR:-}|${FABCTL_PRUSALINK_PASSWORD:+pw}" >> "$CALLS"
if [[ $1 == print ]]; then
  prof=${FABCTL_PROFILES_DIR:-$ROOT/profiles}
  url=$(sed -n 's/^url = "\\(.*\\)"$/\\1/p' "$prof/printers/sim-sl1s.toml")
  "$PY" -c 'import socket, sys; h, p = sys.argv[1].split("//")[1].split(":"); socket.create_connection((h, int(p)), 2)' \\
    "$url" && echo "reached $url" >> "$CALLS"
  echo "error: printer went away" >&2
  exit 4
fi
exit 0
"""


def _run(tmp: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    fake = tmp / "bin" / "fabctl"
    fake.parent.mkdir()
    fake.write_text(STAND_IN)
    fake.chmod(0o755)
    calls = tmp / "calls.log"
    env = {**os.environ, "CALLS": str(calls), "ROOT": str(ROOT), "PY": sys.executable,
           "DEMO_PYTHON": sys.executable, "PYTHONPATH": str(ROOT / "hardware")}
    p = subprocess.run(["bash", str(SCRIPT), str(tmp / "home"), str(fake)], capture_output=True, text=True,
                       env=env, timeout=60)
    return p, calls.read_text().splitlines()


def _refused(url: str) -> bool:
    host, port = url.split("//")[1].split(":")
    try:
        socket.create_connection((host, int(port)), 1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_failed_print_still_stops_the_mock_printer(tmp_path: Path) -> None:
    p, calls = _run(tmp_path)
    assert p.returncode == 4, p.stderr
    assert "printer went away" in p.stderr
    printed = [c for c in calls if c.startswith("print ")]
    assert printed and printed[0].startswith("print case-42 --printer sim-sl1s --resin demo-grey|")
    assert printed[0].endswith("|pw")  # the mock's password reached fabctl through the profile's env var
    reached = [c.split()[1] for c in calls if c.startswith("reached ")]
    assert len(reached) == 1  # the mock was listening during the print
    assert _refused(reached[0])  # and is gone after the script failed
    assert not any(c.startswith(("trace ", "report ")) for c in calls)  # set -e: nothing after the failure


def test_busy_profile_port_prints_with_a_profile_copy(tmp_path: Path) -> None:
    shipped = (ROOT / "profiles" / "printers" / "sim-sl1s.toml").read_text()
    port = int(re.search(r'^url = "http://127\.0\.0\.1:(\d+)"', shipped, re.M).group(1))
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
    except OSError as err:  # someone else holds the port: it is busy all the same
        assert err.errno == errno.EADDRINUSE
    try:
        p, calls = _run(tmp_path)
    finally:
        blocker.close()
    assert p.returncode == 4, p.stderr
    assert "is busy" in p.stdout
    copy = tmp_path / "home" / "profiles"
    printed = next(c for c in calls if c.startswith("print "))
    assert printed.split("|")[1] == str(copy)
    url = re.search(r'^url = "(.*)"', (copy / "printers" / "sim-sl1s.toml").read_text(), re.M).group(1)
    assert not url.endswith(f":{port}")
    assert calls.count(f"reached {url}") == 1
    assert _refused(url)
    assert (ROOT / "profiles" / "printers" / "sim-sl1s.toml").read_text() == shipped  # shipped one untouched
