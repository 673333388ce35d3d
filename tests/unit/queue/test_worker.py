"""The daemon in-process with injected case-job callables (the pipeline's contract, fabctl/queue/worker.py):
a refused gate fails the job with its message, a runner that ends the job is left alone, a runner that returns
with the job open is ended for it, a person's cancel and a daemon stop reach a running job, and a direct print
that holds the printer keeps the daemon off it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fabctl import jobstore as js
from fabctl.db import Database, open_db
from fabctl.errors import CheckFailed
from fabctl.jobstore import JobState
from fabctl.queue.daemon import Daemon, DaemonConfig
from fabctl.queue.runners import case_runner
from fabctl.trace import log
from fabctl.trace.events import CaseCreated
from fabctl.transport.base import JobState as PState
from fabctl.transport.base import PrinterStatus

pytestmark = pytest.mark.db

S = JobState
PRINTER = "sim-laser"


def _wait(pred: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _job(db: Database, case: str) -> str:
    log.record(db, case, CaseCreated(fabctl_version="t"), "tech1")
    return js.create(db, case_id=case, printer_id=PRINTER, resin_id="demo-grey", lot="L1", actor="tech1",
                     queued=True, owner=None).job_id


class Pipeline:
    """Fake ``prepare``/``run_transport`` whose behaviour each case picks by its case id."""

    def __init__(self) -> None:
        self.prepared: list[tuple] = []
        self.release = threading.Event()

    def prepare(self, db, case_id, printer_id, resin_id, lot, actor, progress, *, home, cancel, job_id):
        self.prepared.append((case_id, printer_id, resin_id, lot, job_id))
        if case_id == "case-gate":
            raise CheckFailed("resin lot L1 of demo-grey expired on 2026-01-01 (limit: today 2026-11-25)")
        return {"case": case_id}

    def run_transport(self, db, job, prepared, printer_profile, actor, cancel, on_status):
        assert job.state is S.preparing and printer_profile.id == PRINTER and prepared == {"case": job.case_id}
        js.transition(db, job.job_id, S.sending, actor=actor)
        js.transition(db, job.job_id, S.printing, actor=actor)
        if job.case_id == "case-ok":
            js.transition(db, job.job_id, S.done, actor=actor, last_line=40)
        elif job.case_id == "case-open":
            on_status(PrinterStatus(PState.printing, layer=3, extra={"lines_sent": "17"}))
        elif job.case_id.startswith("case-handed"):  # a hot-folder delivery: the machine has the file
            js.hand_over(db, job.job_id, actor=actor, reason="delivered to the hot folder")
            if job.case_id == "case-handed-then-error":
                raise OSError("disk full while writing the stage record after the hand-over")
        elif job.case_id.startswith("case-long"):
            stopped = threading.Event()
            cancel.on_cancel(stopped.set)  # what a driver registers: printer.cancel
            while not stopped.wait(0.02):
                on_status(PrinterStatus(PState.printing, layer=2, extra={"lines_sent": "9"}))


@pytest.fixture
def daemon(fabctl_home: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(pipeline: Pipeline, **kw) -> Daemon:
        cfg = DaemonConfig(home=fabctl_home, printers=[PRINTER], owner=kw.pop("owner", "d1"), poll_s=0.05,
                           lease_s=kw.pop("lease_s", 2.0), **kw)
        d = Daemon(cfg, run_case=case_runner(pipeline.prepare, pipeline.run_transport))
        d.start()
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop("interrupt")
        d.wait()


def test_case_jobs_through_the_pipeline_contract(fabctl_home: Path, daemon) -> None:
    db = open_db(fabctl_home)
    ids = {c: _job(db, c) for c in ("case-gate", "case-ok", "case-open")}
    p = Pipeline()
    d = daemon(p)
    _wait(lambda: all(js.get(db, j).terminal for j in ids.values()), "the three jobs")
    gate, ok, open_ = (js.get(db, ids[c]) for c in ("case-gate", "case-ok", "case-open"))
    assert gate.state is S.failed and gate.reason.startswith("resin lot L1 of demo-grey expired")
    assert ok.state is S.done and ok.last_line == 40
    assert open_.state is S.failed and "without the printer reporting it done" in open_.reason
    assert (open_.last_line, open_.last_layer) == (17, 3)
    assert [x[0] for x in p.prepared] == ["case-gate", "case-ok", "case-open"]
    assert p.prepared[1] == ("case-ok", PRINTER, "demo-grey", "L1", ids["case-ok"])
    assert {j.owner for j in js.list_jobs(db)} == {"d1"}
    assert js.printer_owner(db, PRINTER) == "d1"
    d.stop()
    summary = d.wait()
    assert summary["worker_errors"] == {} and js.printer_owner(db, PRINTER) is None
    assert log.verify(db).ok


def test_a_job_handed_to_a_hot_folder_machine_is_never_ended_by_the_daemon(fabctl_home: Path, daemon) -> None:
    """Whatever happens after the hand-over (even an error), the machine prints the part: the job stays
    printing with the machine as owner until a person records the outcome; the next start's recovery too."""
    db = open_db(fabctl_home)
    ids = {c: _job(db, c) for c in ("case-handed", "case-handed-then-error", "case-ok")}
    d = daemon(Pipeline())
    _wait(lambda: js.get(db, ids["case-ok"]).terminal, "the job after them")
    for c in ("case-handed", "case-handed-then-error"):
        j = js.get(db, ids[c])
        assert (j.state, j.owner) == (S.printing, js.HANDED_OVER), c
    d.stop()
    d.wait()
    assert js.recover(db, actor="queue-d2") == []
    assert {js.get(db, ids[c]).state for c in ("case-handed", "case-handed-then-error")} == {S.printing}
    assert log.verify(db).ok


def test_cancel_request_and_stop_interrupt_reach_a_running_job(fabctl_home: Path, daemon) -> None:
    db = open_db(fabctl_home)
    first = _job(db, "case-long")
    d = daemon(Pipeline())
    _wait(lambda: js.get(db, first).state is S.printing and js.get(db, first).last_line == 9, "printing")
    js.request_cancel(db, first, actor="tech2")
    _wait(lambda: js.get(db, first).terminal, "the cancel")
    job = js.get(db, first)
    assert job.state is S.cancelled and job.reason == "cancelled by tech2" and job.last_layer == 2
    log.record(db, "case-long2", CaseCreated(fabctl_version="t"), "tech1")
    second = js.create(db, case_id="case-long2", printer_id=PRINTER, resin_id=None, lot=None, actor="tech1",
                       queued=True, owner=None).job_id
    _wait(lambda: js.get(db, second).last_line == 9, "the second job to be printing")
    d.stop("interrupt")
    d.wait()
    job = js.get(db, second)
    assert job.state is S.interrupted and "--on-stop interrupt" in job.reason and job.last_line == 9


def test_a_direct_print_holding_the_printer_keeps_the_daemon_off_it(fabctl_home: Path, daemon) -> None:
    db = open_db(fabctl_home)
    assert js.acquire_printer(db, PRINTER, "cli-host-7", 30)
    log.record(db, "case-direct", CaseCreated(fabctl_version="t"), "tech1")
    direct = js.create(db, case_id="case-direct", printer_id=PRINTER, resin_id=None, lot=None, actor="tech1",
                       queued=False, owner="cli-host-7")
    queued = _job(db, "case-ok")
    d = daemon(Pipeline())
    time.sleep(1.0)
    assert js.get(db, direct.job_id).state is S.preparing  # a live direct print is not "recovered"
    assert js.get(db, queued).state is S.queued  # and the daemon does not claim for a printer it lacks
    assert js.printer_owner(db, PRINTER) == "cli-host-7" and d.recovered == []
    js.release_printer(db, PRINTER, "cli-host-7")  # the direct print died without ending its job
    _wait(lambda: js.get(db, queued).state is S.done, "the daemon to take the printer")
    job = js.get(db, direct.job_id)
    assert job.state is S.interrupted and "owner cli-host-7" in job.reason


def test_bad_daemon_settings_are_refused(fabctl_home: Path) -> None:
    from fabctl.errors import InputError, ProfileError

    with pytest.raises(InputError, match="--on-stop"):
        DaemonConfig(home=fabctl_home, printers=[PRINTER], on_stop="later")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="--lease-s"):
        DaemonConfig(home=fabctl_home, printers=[PRINTER], lease_s=0.1)
    with pytest.raises(ProfileError, match="no-such-printer"):
        DaemonConfig(home=fabctl_home, printers=["no-such-printer"])


@pytest.mark.parametrize("cancel_first", [False, True])
def test_a_service_job_to_a_hot_folder_is_handed_over_or_never_delivered(fabctl_home: Path, tmp_path: Path,
                                                                         monkeypatch, cancel_first: bool) -> None:
    """Delivered: the machine has it (printing, owner the machine), never `done` on delivery. Cancelled before
    delivery: nothing reaches the folder."""
    import shutil

    from fabctl.queue.runners import run_file_job
    from fabctl.queue.worker import Running
    from tests.integration.print_fixtures import set_key

    prof = tmp_path / "profiles"
    shutil.copytree(Path(__file__).resolve().parents[3] / "profiles", prof)
    folder = tmp_path / "hot"
    folder.mkdir()
    set_key(prof / "printers" / "industrial-cli.toml", "path", f'"{folder}"')
    monkeypatch.setenv("FABCTL_PROFILES_DIR", str(prof))
    job_file = tmp_path / "part.cli"
    job_file.write_bytes(b"$$HEADERSTART\n$$ASCII\n$$HEADEREND\n")
    db = open_db(fabctl_home)
    job = js.create(db, case_id="", printer_id="industrial-cli", resin_id=None, lot=None, actor="tech1",
                    queued=True, owner=None, kind="file", job_file=str(job_file))
    assert js.acquire_printer(db, "industrial-cli", "d1", 30)
    job = js.claim_next(db, "industrial-cli", "d1")
    assert job is not None and job.state is S.preparing
    run = Running(job)
    if cancel_first:
        run.cancel.set("cancel", "cancelled by tech1")
    cfg = type("Cfg", (), {"actor": "queue-d1"})()
    run_file_job(db, js.get(db, job.job_id), cfg, run)
    j = js.get(db, job.job_id)
    if cancel_first:
        assert list(folder.iterdir()) == [] and j.state is not S.printing
    else:
        assert [p.name for p in folder.iterdir()] == ["part.cli"]
        assert (j.state, j.owner) == (S.printing, js.HANDED_OVER)
