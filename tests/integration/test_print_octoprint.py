"""`fabctl print` against a real OctoPrint 1.11.8 and its Virtual Printer (issue 7, "What it must show").

A small synthetic guide (tests/integration/print_small_case.py) goes the whole way in a real subprocess:
case new → print --printer sim-octo (a laser G-code printer whose transport is OctoPrint) → done, and
OctoPrint's own record must agree: the stored upload is the job file byte for byte (download and sha1),
its print history says success, /api/job shows the file at 100 %, and the Virtual Printer's log of received
lines is the job's commands in order (plus the M400 OctoPrint sends when a file ends). Then the server is
killed mid-print: exit 4 with one line, the job `failed` with the reason in a trace that still verifies.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import assert_one_line_error
from tests.integration.print_fixtures import ROOT, Run, copy_home, fabctl
from tests.integration.print_small_case import (
    API_KEY_ENV,
    CASE,
    PRINTER,
    commands_before,
    job_commands,
    octoprint_profiles,
    received_job,
    write_small_guide,
)

if TYPE_CHECKING:
    from tests.integration.octoprint_fixtures import OctoPrintServer

pytest_plugins = ["tests.integration.octoprint_fixtures"]
pytestmark = pytest.mark.timeout(300)  # the first OctoPrint test of a session may install it (~1 min)
STAGES = ["revision", "validate", "orient", "support", "slice", "job", "transport"]
VPRINTER_LOG = Path("logs") / "plugin_virtual_printer_serial.log"


@dataclass
class Printed:
    server: OctoPrintServer
    home: Path
    profiles: Path
    doc: dict[str, Any]
    seconds: float
    files_entry: dict[str, Any]      # GET /api/files/local/<name> after the print
    downloaded: bytes                # the file OctoPrint serves back
    api_job: dict[str, Any]          # GET /api/job after the print
    received: list[tuple[int, str]]  # what the Virtual Printer received, from its log


def _env(server: OctoPrintServer, key: str | None = None) -> dict[str, str]:
    return {API_KEY_ENV: server.api_key if key is None else key}


def _received_until(server: OctoPrintServer, last: str, within_s: float = 10.0) -> list[tuple[int, str]]:
    """The Virtual Printer's received lines, once the last one is ``last`` (its log trails the job a bit)."""
    deadline = time.monotonic() + within_s
    while True:
        got = received_job((server.basedir / VPRINTER_LOG).read_text())
        if (got and got[-1][1] == last) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


@pytest.fixture(scope="module")
def printed(octoprint_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Printed]:
    """A server of this module's own, the small case registered in a fresh home, one print to the end."""
    from tests.integration.octoprint_fixtures import start_server  # a plugin here: imported once registered

    root = tmp_path_factory.mktemp("print-octo")
    server = start_server(root / "octoprint-base")
    try:
        prof = octoprint_profiles(root / "profiles", server.url)
        home = root / "home"
        stl, plan = write_small_guide(root / "design")
        r = fabctl(home, prof, "case", "new", CASE, "--mesh", str(stl), "--plan", str(plan), "--units", "mm")
        assert r.code == 0, r.err
        t0 = time.monotonic()
        run = fabctl(home, prof, "print", CASE, "--printer", PRINTER, "--json", env=_env(server), timeout=240)
        seconds = time.monotonic() - t0
        assert run.code == 0, run.err
        doc = json.loads(run.out)
        name = Path(doc["job_file"]).name
        with server.admin() as admin:
            entry = admin.get(f"/api/files/local/{name}").json()
            downloaded = admin.get(entry["refs"]["download"]).content
            api_job = admin.get("/api/job").json()
        yield Printed(server, home, prof, doc, seconds, entry, downloaded, api_job, _received_until(server, "M400"))
    finally:
        server.stop()


def test_print_through_real_octoprint_is_done_and_octoprint_agrees(printed: Printed, record_property) -> None:
    doc, job = printed.doc, Path(printed.doc["job_file"])
    assert doc["state"] == "done" and doc["case"] == CASE and doc["printer"] == PRINTER
    assert doc["job_format"] == "gcode" and doc["lot"] == "DEMO"
    assert [s["name"] for s in doc["stages"]] == STAGES and not any(s["cached"] for s in doc["stages"])
    data = job.read_bytes()
    assert hashlib.sha256(data).hexdigest() == doc["job_file_sha256"]
    commands = job_commands(data.decode("ascii"))
    assert 3_000 < len(commands) < 40_000, len(commands)   # small enough to stream in seconds
    # OctoPrint's record: the stored file is the job file, printed once, successfully, to the end
    entry = printed.files_entry
    assert printed.downloaded == data
    assert entry["size"] == len(data) and entry["hash"] == hashlib.sha1(data).hexdigest()
    assert entry["prints"]["success"] == 1 and entry["prints"]["failure"] == 0
    assert entry["prints"]["last"]["success"] is True
    api = printed.api_job
    assert api["state"] == "Operational" and api["job"]["file"]["name"] == job.name
    assert api["progress"]["completion"] == 100.0 and api["progress"]["filepos"] == len(data)
    # the Virtual Printer received every command of the job, in order, numbered 1..n, then OctoPrint's M400
    assert [n for n, _ in printed.received] == list(range(1, len(commands) + 2))
    assert [c for _, c in printed.received] == [*commands, "M400"]
    record_property("job_lines", len(commands))   # figures for the report (--junitxml)
    record_property("print_command_s", round(printed.seconds, 1))
    record_property("transport_s", doc["stages"][-1]["seconds"])
    record_property("octoprint_print_time_s", round(entry["prints"]["last"]["printTime"], 1))


def test_trace_of_the_octoprint_print_verifies_and_names_the_job(printed: Printed) -> None:
    home, prof, doc = printed.home, printed.profiles, printed.doc
    assert fabctl(home, prof, "trace", "verify").code == 0
    t = json.loads(fabctl(home, prof, "trace", "show", CASE, "--json").out)
    assert t["head"] == doc["trace_head"]
    started = [e["payload"] for e in t["events"] if e["type"] == "print.started"]
    finished = [e["payload"] for e in t["events"] if e["type"] == "print.finished"]
    assert [(s["job_id"], s["job_sha256"], s["transport"], s["printer_id"]) for s in started] == [
        (doc["job_id"], doc["job_file_sha256"], "octoprint", PRINTER)]
    assert "OctoPrint 1.11.8" in started[0]["printer_model"]
    assert started[0]["printer_firmware"] == "Virtual Marlin 1.0"
    assert [(f["job_id"], f["state"], f["job_sha256"], f["reason"]) for f in finished] == [
        (doc["job_id"], "done", doc["job_file_sha256"], None)]
    states = [e["payload"]["to_state"] for e in t["events"] if e["type"] == "job.state"]
    assert states == ["preparing", "sending", "printing", "done"]
    stage = [e["payload"] for e in t["events"] if e["type"] == "pipeline.stage"]
    assert [s["stage"] for s in stage] == STAGES


def _wait_printing(server: OctoPrintServer, proc: subprocess.Popen, within_s: float) -> tuple[float, int]:
    """OctoPrint's completion (%) and file position (bytes read) once the job is printing and at least 5 %
    through."""
    deadline = time.monotonic() + within_s
    with server.admin() as admin:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "fabctl print ended before the job was under way"
            doc = admin.get("/api/job").json()
            done = (doc.get("progress") or {}).get("completion") or 0.0
            if doc.get("state") == "Printing" and done >= 5.0:
                return float(done), int(doc["progress"]["filepos"])
            time.sleep(0.1)
    raise AssertionError(f"OctoPrint did not get 5 % into the job within {within_s} s")


def test_server_killed_mid_print_fails_the_job_with_its_reason(printed: Printed, tmp_path: Path,
                                                               record_property) -> None:
    """Runs last in this module: it kills the module's server. A warm copy of the home: the rerun starts at
    the transport with every earlier stage cached."""
    server = printed.server
    home = copy_home(printed.home, tmp_path / "home")
    env = {**os.environ, "FABCTL_HOME": str(home), "FABCTL_PROFILES_DIR": str(printed.profiles),
           "FABCTL_OPERATOR": "tech1", **_env(server)}
    env.pop("FABCTL_DB_URL", None)
    env.pop("FABCTL_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-m", "fabctl", "print", CASE, "--printer", PRINTER, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        completion, filepos = _wait_printing(server, proc, within_s=120)
        assert completion < 100.0
        server.kill()
        t_kill = time.monotonic()
        out, err = proc.communicate(timeout=60)
        after_kill_s = time.monotonic() - t_kill
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    r = Run(proc.returncode, out, err)
    assert_one_line_error(r, 4, "failed", "went away")
    assert r.out == ""                       # --json: nothing on stdout when the command fails
    assert after_kill_s < 10 + 10            # the driver's lost_after_s (10 s) plus slack
    data = Path(printed.doc["job_file"]).read_bytes()
    commands = job_commands(data.decode("ascii"))
    received = received_job((server.basedir / VPRINTER_LOG).read_text())
    # OctoPrint had read `filepos` bytes of the file before the kill, and the Virtual Printer logs each line
    # as OctoPrint writes it: every command in those bytes but the one read and not yet written is logged.
    # (A share of bytes, not of commands: 5 % of this file's bytes is 4.8 % of its commands.)
    assert commands_before(data, filepos) - 1 <= len(received) < len(commands)
    assert [c for _, c in received] == commands[:len(received)]
    record_property("killed_at_completion_pct", completion)
    record_property("killed_at_filepos", filepos)
    record_property("lines_received_before_kill", len(received))
    record_property("exit_after_kill_s", round(after_kill_s, 1))
    prof = printed.profiles
    assert fabctl(home, prof, "trace", "verify").code == 0
    t = json.loads(fabctl(home, prof, "trace", "show", CASE, "--json").out)
    finished = [e["payload"] for e in t["events"] if e["type"] == "print.finished"]
    assert [f["state"] for f in finished] == ["done", "failed"]
    fail = finished[-1]
    assert fail["job_id"] != printed.doc["job_id"] and fail["job_sha256"] == printed.doc["job_file_sha256"]
    assert "went away" in fail["reason"] and "OctoPrint at " + server.url in fail["reason"]
    last = [e["payload"] for e in t["events"] if e["type"] == "job.state"][-1]
    assert last["job_id"] == fail["job_id"] and last["to_state"] == "failed" and "went away" in last["reason"]
    stage = [e["payload"] for e in t["events"] if e["type"] == "pipeline.stage"][-7:]
    assert [(s["stage"], s["cached"]) for s in stage] == [(n, n != "transport") for n in STAGES]
    q = fabctl(home, prof, "queue", "status", fail["job_id"], "--json")
    assert q.code == 0, q.err
    assert json.loads(q.out)["state"] == "failed"
