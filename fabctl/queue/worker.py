"""One worker per printer: it holds the printer's lease, claims that printer's queued jobs one at a time and
runs each to a terminal state. A heartbeat thread beside it renews the lease, stores the last confirmed line
and layer, and turns a person's cancel request (or a lost lease) into a cancel at the printer.

Contract for the case-job callables (``fabctl.pipeline``; injectable so the daemon is testable without it):

* ``prepare(db, case_id, printer_id, resin_id, lot, actor, progress) -> Prepared`` runs the gates and the
  stages up to the job file; a ``FabctlError`` fails the job with its message.
* ``run_transport(db, job, prepared, printer_profile, actor, cancel, on_status)`` sends the job file and
  follows the printer; it moves the job ``preparing → sending → printing → done`` through
  ``fabctl.jobstore.transition``. ``cancel`` is a ``CancelToken``: poll ``cancel.is_set()`` or register
  ``cancel.on_cancel(printer.cancel)``. ``on_status(PrinterStatus)`` reports progress (line/layer).
  When it returns or raises with the job not yet ended, the worker ends it: ``cancelled`` (a person asked),
  ``interrupted`` (the daemon is stopping with ``--on-stop interrupt``, or the lease was lost) or ``failed``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabctl import jobstore
from fabctl.db import open_db
from fabctl.errors import FabctlError, TransportError
from fabctl.jobstore import Job, JobState
from fabctl.transport.base import PrinterStatus

log = logging.getLogger(__name__)


class CancelToken:
    """Set once, with a reason and a kind (``cancel`` | ``interrupt``); callbacks run when it is set."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self.reason = ""
        self.kind = ""

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self, kind: str, reason: str) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.kind, self.reason = kind, reason
            self._event.set()
            callbacks = list(self._callbacks)
        for cb in callbacks:
            _quietly(cb)

    def on_cancel(self, cb: Callable[[], None]) -> None:
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(cb)
                return
        _quietly(cb)


def _quietly(cb: Callable[[], None]) -> None:
    try:
        cb()
    except (FabctlError, OSError) as err:
        log.warning("cancel callback failed: %s", err)


@dataclass
class WorkerConfig:
    printer_id: str
    owner: str
    actor: str
    home: Path
    poll_s: float = 1.0
    lease_s: float = 15.0
    progress_s: float = 0.5


@dataclass
class Running:
    """The job a worker is running now, as the heartbeat sees it."""

    job: Job
    cancel: CancelToken = field(default_factory=CancelToken)
    last_line: int | None = None
    last_layer: int | None = None
    saved: tuple[int | None, int | None] = (None, None)
    session: dict = field(default_factory=dict)

    def on_status(self, st: PrinterStatus) -> None:
        line = st.extra.get("lines_sent") if st.extra else None
        if line is not None and str(line).isdigit():
            self.last_line = int(line)
        if st.layer is not None:
            self.last_layer = st.layer


class PrinterWorker:
    """The thread that owns one printer. ``stop`` ends it after the running job (``interrupt``: at once)."""

    def __init__(self, cfg: WorkerConfig, run_case: Callable, run_file: Callable,
                 probe: Callable[[str], str | None], stopping: threading.Event,
                 interrupting: threading.Event) -> None:
        self.cfg = cfg
        self.run_case, self.run_file, self.probe = run_case, run_file, probe
        self.offline: str | None = None
        self.session: dict = {}  # what a runner keeps between jobs on this printer (a serial driver)
        self.stopping, self.interrupting = stopping, interrupting
        self.running: Running | None = None
        self.held = False
        self.lost = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._main, name=f"worker-{cfg.printer_id}", daemon=True)
        self.beat = threading.Thread(target=self._heartbeat, name=f"heartbeat-{cfg.printer_id}", daemon=True)

    def interrupt(self) -> None:
        """Cancel the running job at the printer now; it ends ``interrupted``."""
        with self._lock:
            run = self.running
        if run is not None:
            run.cancel.set("interrupt", "the queue daemon is stopping (--on-stop interrupt)")

    def start(self) -> PrinterWorker:
        self.thread.start()
        self.beat.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)
        self.beat.join(timeout)

    # ---------------------------------------------------------------------------------------- main loop

    def _main(self) -> None:
        db = open_db(self.cfg.home)
        try:
            self._loop(db)
        except Exception as err:  # a bug: log it, keep the daemon's other printers going
            log.exception("worker for %s stopped on an unexpected error", self.cfg.printer_id)
            self.error = err
        finally:
            if self.held:
                jobstore.release_printer(db, self.cfg.printer_id, self.cfg.owner)
                self.held = False
            db.close()

    def _loop(self, db: Any) -> None:
        c = self.cfg
        while not self.stopping.is_set():
            if not self.held or self.lost.is_set():
                self.held = jobstore.acquire_printer(db, c.printer_id, c.owner, c.lease_s)
                self.lost.clear()
                if not self.held:
                    log.info("printer %s is owned by %s; waiting", c.printer_id,
                             jobstore.printer_owner(db, c.printer_id))
                    self.stopping.wait(c.poll_s)
                    continue
                for j in jobstore.recover(db, actor=c.actor, previous_owner=c.owner, printer_id=c.printer_id):
                    log.warning("job %s marked interrupted: %s", j.job_id, j.reason)
            if self.offline is not None and not self._probe():
                continue
            job = jobstore.claim_next(db, c.printer_id, c.owner, actor=c.actor)
            if job is None:
                self.stopping.wait(c.poll_s)
                continue
            self._run(db, job)

    def _run(self, db: Any, job: Job) -> None:
        run = Running(job, session=self.session)
        with self._lock:
            self.running = run
        if self.interrupting.is_set():
            run.cancel.set("interrupt", "the queue daemon is stopping (--on-stop interrupt)")
        try:
            if job.kind == "file":
                self.run_file(db, job, self.cfg, run)
            else:
                self.run_case(db, job, self.cfg, run)
            self._end(db, run, None)
        except TransportError as err:
            self.offline = err.message
            self.session.clear()
            log.warning("printer %s failed job %s: %s", self.cfg.printer_id, job.job_id, err.message)
            self._end(db, run, err.message)
        except FabctlError as err:
            self._end(db, run, err.message)
        except OSError as err:
            self._end(db, run, f"{type(err).__name__}: {err}")
        finally:
            with self._lock:
                self.running = None

    def _end(self, db: Any, run: Running, error: str | None) -> None:
        """Bring the job to a terminal state if the runner left it open."""
        job = jobstore.get(db, run.job.job_id)
        if job.terminal or job.handed_over:
            if error is not None and not job.terminal:  # the machine prints it whatever went wrong here
                log.warning("job %s is with the hot-folder machine; not ended: %s", job.job_id, error)
            return  # ended, or handed to a hot-folder machine whose outcome a person records
        if run.cancel.is_set():
            to = JobState.cancelled if run.cancel.kind == "cancel" else JobState.interrupted
            reason = run.cancel.reason + (f" ({error})" if error else "")
        else:
            to, reason = JobState.failed, error or "the job ended without the printer reporting it done"
        try:
            jobstore.transition(db, job.job_id, to, actor=self.cfg.actor, reason=reason,
                                last_line=run.last_line, last_layer=run.last_layer)
        except FabctlError as err:  # another daemon ended it meanwhile (our lease was lost)
            log.warning("job %s: could not mark it %s: %s", job.job_id, to.value, err.message)

    def _probe(self) -> bool:
        """After a transport failure: claim nothing until the printer answers again (jobs stay queued)."""
        self.stopping.wait(max(self.cfg.poll_s, 2.0))
        if self.stopping.is_set():
            return False
        why = self.probe(self.cfg.printer_id)
        if why is None:
            log.info("printer %s answers again", self.cfg.printer_id)
            self.offline = None
            return True
        self.offline = why
        return False

    # ---------------------------------------------------------------------------------------- heartbeat

    def _heartbeat(self) -> None:
        db = open_db(self.cfg.home)
        c = self.cfg
        beat_every = max(0.05, min(c.lease_s / 3.0, c.progress_s))
        last_renew = time.monotonic()
        try:
            while self.thread.is_alive():
                time.sleep(beat_every)
                with self._lock:
                    run = self.running
                if self.held and time.monotonic() - last_renew >= c.lease_s / 3.0:
                    last_renew = time.monotonic()
                    if not jobstore.renew_printer(db, c.printer_id, c.owner, c.lease_s):
                        self.lost.set()
                        if run is not None:
                            run.cancel.set("interrupt", f"printer lease of {c.owner} on {c.printer_id} was lost")
                if run is None:
                    continue
                self._save_progress(db, run)
                if self.interrupting.is_set():
                    run.cancel.set("interrupt", "the queue daemon is stopping (--on-stop interrupt)")
                elif not run.cancel.is_set():
                    cur = jobstore.get(db, run.job.job_id)
                    if cur.cancel_requested:
                        run.cancel.set("cancel", f"cancelled by {cur.cancel_by}")
        except Exception:  # a bug: log it; the lease then expires and another daemon recovers
            log.exception("heartbeat for %s stopped on an unexpected error", c.printer_id)
        finally:
            db.close()

    def _save_progress(self, db: Any, run: Running) -> None:
        now = (run.last_line, run.last_layer)
        if now != run.saved and now != (None, None):
            jobstore.record_progress(db, run.job.job_id, last_line=run.last_line, last_layer=run.last_layer)
            run.saved = now

