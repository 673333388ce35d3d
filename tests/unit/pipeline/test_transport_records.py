"""``run_transport`` and the records: a print that ends ``done`` gets its device serial in the same write
transaction as ``print.finished`` and the job's ``done``; a cancel token of kind ``interrupt`` ends the job
``interrupted`` (not ``cancelled``) with the last confirmed line and layer. Real store, real trace, the
registered example case; a scripted printer driver stands in for the wire (the mock printer runs in the
integration tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from fabctl import jobstore, profiles
from fabctl.db import Database
from fabctl.jobstore import JobState as QState
from fabctl.pipeline import transport_run
from fabctl.pipeline.runner import Prepared
from fabctl.queue.worker import CancelToken
from fabctl.records import devices
from fabctl.trace import log
from fabctl.transport.base import JobState, PrinterIdentity, PrinterStatus
from tests.unit.records.helpers import register

pytestmark = pytest.mark.db

SHA = "cd" * 32


class ScriptedPrinter:
    """A printer driver whose ``follow`` runs ``script(self, on_status)`` and returns what it returns."""

    def __init__(self, script: Callable) -> None:
        self.script = script
        self.stats = SimpleNamespace(lines_confirmed=0)
        self.cancelled = False
        self.sent: list[Path] = []
        self.closed = False

    def connect(self) -> PrinterIdentity:
        return PrinterIdentity("SL1S (scripted)", "fw-1", "SN-1")

    def send_job(self, path: Path, start: bool = True) -> None:
        self.sent.append(Path(path))

    def follow(self, on_status=None) -> PrinterStatus:
        return self.script(self, on_status)

    def cancel(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def db(fabctl_home: Path) -> Database:
    d = register(fabctl_home, "case-a")
    register(fabctl_home, "case-b")
    return d


def _setup(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case_id: str,
           script: Callable) -> tuple[jobstore.Job, Prepared, ScriptedPrinter]:
    printer = ScriptedPrinter(script)
    monkeypatch.setattr(transport_run.registry, "open_printer", lambda profile, **_kw: printer)
    reg = [e for e in log.events(db, case_id) if e.type == "design.registered"][-1].payload
    job_file = tmp_path / f"{case_id}.sl1"
    job_file.write_bytes(b"job")
    job = jobstore.create(db, case_id=case_id, printer_id="sim-sl1s", resin_id="demo-grey", lot="DEMO",
                          actor="tech1", queued=False, owner="test-owner")
    prepared = Prepared(case=case_id, revision=reg["revision"], design_sha256=reg["design_sha256"],
                        printer_id="sim-sl1s", printer_sha256=SHA, resin_id="demo-grey", resin_sha256=SHA,
                        lot="DEMO", lot_expires="9999-12-31", job_file=job_file, job_sha256=SHA,
                        job_format="sl1", layers=10)
    return job, prepared, printer


def _done(printer: ScriptedPrinter, on_status) -> PrinterStatus:
    st = PrinterStatus(JobState.done, 1.0, layer=10, layers_total=10)
    on_status(st)
    return st


def test_done_print_gets_its_serial_in_the_finish_transaction(db: Database, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    year = date.today().year
    serials = {}
    for case_id in ("case-a", "case-b"):
        job, prepared, printer = _setup(db, tmp_path, monkeypatch, case_id, _done)
        state = transport_run.run_transport(db, job, prepared, profiles.printer("sim-sl1s"), "tech1")
        assert state is QState.done and printer.sent == [prepared.job_file] and printer.closed
        assert jobstore.get(db, job.job_id).state is QState.done
        devs = devices.case_devices(db, case_id)
        assert [(d.build_id, d.status) for d in devs] == [(job.job_id, "made")]
        serials[case_id] = devs[0].serial
        events = log.events(db, case_id)
        types = [e.type for e in events]
        i = types.index("print.finished")
        # print.finished, device.assigned and the job's done are consecutive: one transaction
        assert types[i:i + 3] == ["print.finished", "device.assigned", "job.state"]
        assert events[i + 2].payload["to_state"] == "done"
        assert events[i + 1].payload["serials"] == [devs[0].serial]
        assert events[i + 1].payload["job_id"] == job.job_id and events[i + 1].payload["quantity_made"] == 1
        assert types[-1] == "pipeline.stage"
    assert serials == {"case-a": f"FAB-{year}-000001", "case-b": f"FAB-{year}-000002"}
    assert log.verify(db).problems == []


def test_a_failed_print_gets_no_serial(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(printer: ScriptedPrinter, on_status) -> PrinterStatus:
        printer.stats.lines_confirmed = 77
        return PrinterStatus(JobState.failed, 0.4, layer=4, layers_total=10, message="resin tank empty")

    job, prepared, _ = _setup(db, tmp_path, monkeypatch, "case-a", fail)
    with pytest.raises(transport_run.TransportError, match="resin tank empty"):
        transport_run.run_transport(db, job, prepared, profiles.printer("sim-sl1s"), "tech1")
    assert devices.case_devices(db, "case-a") == []
    fin = [e.payload for e in log.events(db, "case-a") if e.type == "print.finished"]
    assert [(f["state"], f["last_confirmed_line"], f["last_confirmed_layer"]) for f in fin] == [
        ("failed", 77, 4)]
    assert "device.assigned" not in [e.type for e in log.events(db, "case-a")]


@pytest.mark.parametrize("kind, expected", [("interrupt", QState.interrupted), ("cancel", QState.cancelled)])
def test_cancel_token_kind_decides_interrupted_or_cancelled(db: Database, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, kind: str,
                                                            expected: QState) -> None:
    token = CancelToken()
    reason = ("the queue daemon is stopping (--on-stop interrupt)" if kind == "interrupt"
              else "cancelled by qa1")

    def stopped_mid_job(printer: ScriptedPrinter, on_status) -> PrinterStatus:
        printer.stats.lines_confirmed = 120
        on_status(PrinterStatus(JobState.printing, 0.3, layer=3, layers_total=10))
        token.set(kind, reason)            # the daemon's worker sets it; the callback cancels at the printer
        assert printer.cancelled
        return PrinterStatus(JobState.cancelled, 0.3, layer=3, layers_total=10, message="job aborted")

    job, prepared, printer = _setup(db, tmp_path, monkeypatch, "case-a", stopped_mid_job)
    state = transport_run.run_transport(db, job, prepared, profiles.printer("sim-sl1s"), "queue-x", token)
    assert state is expected
    now = jobstore.get(db, job.job_id)
    assert (now.state, now.last_line, now.last_layer, now.reason) == (expected, 120, 3, reason)
    fin = [e.payload for e in log.events(db, "case-a") if e.type == "print.finished"]
    assert [(f["state"], f["last_confirmed_line"], f["last_confirmed_layer"], f["reason"]) for f in fin] == [
        (expected.value, 120, 3, reason)]
    ends = [e.payload for e in log.events(db, "case-a") if e.type == "job.state"]
    assert ends[-1]["to_state"] == expected.value and ends[-1]["from_state"] == "printing"
    assert devices.case_devices(db, "case-a") == []
