"""fabctl's OctoPrint transport against a real OctoPrint 1.11.8 server and its Virtual Printer."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fabctl.errors import InputError, TransportError
from fabctl.transport.base import JobState, Printer, PrinterStatus
from fabctl.transport.octoprint import OctoPrintPrinter, request_app_key

if TYPE_CHECKING:
    from tests.integration.octoprint_fixtures import OctoPrintServer

Gcode = Callable[..., Path]
pytest_plugins = ["tests.integration.octoprint_fixtures"]
pytestmark = pytest.mark.timeout(300)  # the first test may install OctoPrint (~1 min)


@pytest.fixture
def printer(octoprint_server: OctoPrintServer) -> Iterator[OctoPrintPrinter]:
    p = OctoPrintPrinter(octoprint_server.url, octoprint_server.api_key, port="VIRTUAL", lost_after_s=3)
    p.connect()
    try:
        yield p
    finally:
        p.close()


def _wait_for(p: OctoPrintPrinter, state: JobState, within_s: float) -> PrinterStatus:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        st = p.status()
        if st.state is state:
            return st
        time.sleep(0.05)
    raise AssertionError(f"no {state.value} within {within_s} s: {p.status()}")


def test_connect_identifies_server_profile_and_firmware(printer: OctoPrintPrinter) -> None:
    assert isinstance(printer, Printer)
    ident = printer.identify()
    assert "OctoPrint 1.11.8" in ident.model
    assert ident.firmware == "Virtual Marlin 1.0"
    assert ident.serial_number == "unknown"


def test_print_to_done_through_push_socket_with_progress(printer: OctoPrintPrinter, gcode: Gcode) -> None:
    job = gcode("done-push.gcode", dwell_lines=20)
    assert printer.send_job(job) == "done-push.gcode"
    seen: list[PrinterStatus] = []
    final = printer.follow(timeout_s=30, on_status=seen.append)
    assert final.state is JobState.done and final.progress == 1.0
    assert final.message.startswith("PrintDone")
    assert any(0.0 < s.progress < 1.0 and s.state is JobState.printing for s in seen), seen
    assert all(s.state is not JobState.done for s in seen[:-1] if s.progress < 1.0)
    assert printer._push is not None and printer._push.alive  # done came through the socket


def test_polling_fallback_reaches_done_when_the_socket_drops(printer: OctoPrintPrinter, gcode: Gcode) -> None:
    job = gcode("done-poll.gcode", dwell_lines=20)
    printer.send_job(job)
    _wait_for(printer, JobState.printing, 5)
    assert printer._push is not None
    printer._push.close()  # the socket goes away; /api/job polling takes over
    final = printer.follow(timeout_s=30, poll_s=0.2)
    assert final.state is JobState.done and final.message == "print record: success"


def test_pause_resume_cancel(printer: OctoPrintPrinter, gcode: Gcode) -> None:
    printer.send_job(gcode("cancel-me.gcode", dwell_lines=150))
    _wait_for(printer, JobState.printing, 5)
    printer.pause()
    _wait_for(printer, JobState.paused, 15)  # config.yaml.tmpl: positionLogWait 1 s (default 10 s)
    printer.resume()
    _wait_for(printer, JobState.printing, 5)
    printer.cancel()
    final = printer.follow(timeout_s=15)
    assert final.state is JobState.cancelled
    assert final.progress < 1.0


def test_wrong_api_key_is_refused_with_403(octoprint_server: OctoPrintServer) -> None:
    with OctoPrintPrinter(octoprint_server.url, "0" * 32, port="VIRTUAL") as p:
        with pytest.raises(TransportError) as err:
            p.connect()
    assert f"OctoPrint at {octoprint_server.url} refused the API key (403)" in str(err.value)
    assert err.value.exit_code == 4


def test_409_when_the_printer_is_disconnected(printer: OctoPrintPrinter, gcode: Gcode) -> None:
    job = gcode("later.gcode", dwell_lines=2)
    printer.send_job(job, start=False)
    printer.disconnect_printer()
    try:
        with pytest.raises(TransportError, match="409"):
            printer.start()  # select+print while disconnected: OctoPrint's own 409
        with pytest.raises(TransportError, match="409"):
            printer.send_job(job)  # refused before uploading
        with pytest.raises(TransportError, match=r"\(409\)"):
            printer.cancel()  # nothing to cancel
    finally:
        printer.connect()


def test_server_killed_mid_job_fails_the_job_within_bounded_time(private_octoprint: OctoPrintServer,
                                                                 gcode: Gcode) -> None:
    p = OctoPrintPrinter(private_octoprint.url, private_octoprint.api_key, port="VIRTUAL", lost_after_s=2)
    try:
        p.connect()
        p.send_job(gcode("killed.gcode", dwell_lines=200))
        _wait_for(p, JobState.printing, 5)
        private_octoprint.kill()
        t0 = time.monotonic()
        with pytest.raises(TransportError, match="went away"):
            p.follow(timeout_s=30)
        assert time.monotonic() - t0 < 2 + 3  # lost_after_s plus slack
        assert p.last_status.state is JobState.failed
        assert p.status().state is JobState.failed  # stays failed: never quietly "done"
    finally:
        p.close()


def test_application_key_flow(octoprint_server: OctoPrintServer) -> None:
    def approve(dialog_url: str) -> None:
        assert "/plugin/appkeys/auth/" in dialog_url
        with octoprint_server.admin() as admin:
            pending = admin.get("/api/plugin/appkeys").json()["pending"]
            (token,) = [t for t, req in pending.items() if req["app_id"] == "fabctl-test"]
            assert admin.post(f"/plugin/appkeys/decision/{token}", json={"decision": True}).status_code == 204

    key = request_app_key(octoprint_server.url, "fabctl-test", "fabctl", timeout_s=20, poll_s=0.2,
                          on_pending=approve)
    with OctoPrintPrinter(octoprint_server.url, key) as p:
        assert "OctoPrint" in p.identify().model


def test_upload_of_a_non_gcode_file_is_bad_input(printer: OctoPrintPrinter, tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a job\n")
    with pytest.raises(InputError, match="415"):
        printer.send_job(bad, start=False)


def test_a_server_that_never_answers_times_out() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    stop = threading.Event()

    def hold() -> None:
        held = []
        silent.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except TimeoutError:
                continue
        for conn in held:
            conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    try:
        with OctoPrintPrinter(url, "key", timeout_s=0.5) as p:
            t0 = time.monotonic()
            with pytest.raises(TransportError, match="did not answer"):
                p.connect()
            assert time.monotonic() - t0 < 3
    finally:
        stop.set()
        thread.join(5)
        silent.close()


def test_run_octoprint_for_fabctl_send(octoprint_server: OctoPrintServer, gcode: Gcode) -> None:
    from fabctl.cli.send_net import run_octoprint

    job = gcode("send-net.gcode", dwell_lines=5)
    out = run_octoprint(job, octoprint_server.url, octoprint_server.api_key, json_out=True, timeout_s=30)
    assert out["state"] == "done" and out["progress"] == 1.0
    assert out["job_file"] == "send-net.gcode" and len(out["job_sha256"]) == 64
    assert out["printer"]["firmware"] == "Virtual Marlin 1.0"
    assert out["started_utc"].endswith("+00:00")


def test_frozen_server_mid_job_times_out_and_fails_the_job(private_octoprint: OctoPrintServer,
                                                           gcode: Gcode) -> None:
    p = OctoPrintPrinter(private_octoprint.url, private_octoprint.api_key, port="VIRTUAL", lost_after_s=2,
                         timeout_s=1)
    try:
        p.connect()
        p.send_job(gcode("frozen.gcode", dwell_lines=200))
        _wait_for(p, JobState.printing, 5)
        os.kill(private_octoprint.pid, signal.SIGSTOP)  # accepts connections, answers nothing
        t0 = time.monotonic()
        with pytest.raises(TransportError, match="went away.*did not answer"):
            p.follow(timeout_s=30)
        assert time.monotonic() - t0 < 2 + 1 + 3  # lost_after_s + one request timeout + slack
        assert p.last_status.state is JobState.failed
    finally:
        os.kill(private_octoprint.pid, signal.SIGCONT)
        p.close()


def test_fabctl_send_cli_through_real_octoprint(octoprint_server: OctoPrintServer, gcode: Gcode) -> None:
    """The whole command a technician runs, in a subprocess: one JSON document, exit 0, state done."""
    import json
    import os
    import subprocess
    import sys

    job = gcode("send-cli.gcode", dwell_lines=5)
    env = {**os.environ, "FABCTL_OPERATOR": "tech1"}
    p = subprocess.run([sys.executable, "-m", "fabctl", "send", str(job), "--octoprint", octoprint_server.url,
                        "--api-key", octoprint_server.api_key, "--json"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["state"] == "done" and doc["job_file"] == "send-cli.gcode"
    bad = subprocess.run([sys.executable, "-m", "fabctl", "send", str(job), "--octoprint", octoprint_server.url,
                          "--api-key", "wrong-key", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 4 and bad.stdout == ""
    assert bad.stderr.startswith("error: ") and "403" in bad.stderr and "Traceback" not in bad.stderr
