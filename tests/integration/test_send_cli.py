"""`fabctl send` over serial: the real command line, against the mock printer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.serial_fixtures import write_program

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]

# Until the lead registers the command (fabctl.cli.COMMANDS["send"] = ("fabctl.cli.send", "send", "command")),
# the test adds that entry itself and runs the real entry point, so exit codes and stderr are the CLI's.
ENTRY = """
import sys
from fabctl import cli
cli.COMMANDS.setdefault("send", ("fabctl.cli.send", "send", "command"))
sys.argv = ["fabctl", *sys.argv[1:]]
cli.main()
"""


def fabctl(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FABCTL_DEBUG", None)
    return subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True, text=True, env=env,
                          timeout=50, cwd=ROOT)


@pytest.fixture
def job(tmp_path: Path) -> tuple[Path, list[str]]:
    return write_program(tmp_path / "case-42.gcode", layers=8, marks=8)


def test_send_to_the_simulated_printer_profile(job) -> None:
    path, commands = job
    r = fabctl("send", str(path), "--printer", "sim-laser", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["state"] == "done" and doc["transport"] == "serial"
    assert doc["printer"] == {"model": "sim-laser", "firmware": "fabctl-mock-marlin 1.0 (mock)",
                              "serial_number": "MOCK-0001"}
    assert doc["lines_sent"] == doc["lines_total"] == len(commands)
    assert doc["resends"] == 0 and doc["duration_s"] > 0 and doc["layers_total"] == 8


def test_send_to_a_port_url_with_faults(job) -> None:
    path, commands = job
    url = "mockprinter://cli?exposure_scale=0.001&faults=corrupt@10,resend@20"
    r = fabctl("send", str(path), "--port", url, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["resends"] == 2 and doc["lines_sent"] == len(commands)
    assert r.stderr == ""  # quiet under --json


def test_a_failed_job_exits_4_with_one_error_line(job) -> None:
    path, _ = job
    r = fabctl("send", str(path), "--port", "mockprinter://cli?exposure_scale=0.001&faults=halt@30", "--json")
    assert r.returncode == 4
    assert r.stdout == ""
    first, *rest = r.stderr.splitlines()
    assert first.startswith("error: printer error: Error:Printer halted")
    assert all(line.startswith("hint:") for line in rest)


def test_bad_usage_exits_2(job) -> None:
    path, _ = job
    assert fabctl("send", str(path)).returncode == 2
    assert fabctl("send", str(path), "--printer", "sim-laser", "--port", "loop://").returncode == 2
    assert fabctl("send", str(path) + ".missing", "--printer", "sim-laser").returncode == 2


def test_no_such_port_exits_4(job) -> None:
    path, _ = job
    r = fabctl("send", str(path), "--port", "/dev/does-not-exist-fabctl")
    assert r.returncode == 4 and r.stderr.startswith("error: cannot open printer port")


def test_dry_run_writes_the_framed_bytes(job, tmp_path: Path) -> None:
    path, commands = job
    out = tmp_path / "wire.txt"
    r = fabctl("send", str(path), "--port", "/dev/null", "--dry-run", str(out), "--json")
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "N0 M110 N0*125" and lines[-1].startswith(f"N{len(commands) + 1} M400*")
    assert len(lines) == len(commands) + 2
    assert json.loads(r.stdout)["wire_lines"] == len(lines)
