"""The transport stage: send a prepared job file to its printer and follow it to a terminal state.

``run_transport(db, job, prepared, printer_profile, actor, cancel, on_status)`` is shared by ``fabctl print``
and the queue daemon. It moves the job ``preparing → sending → printing → done | failed | cancelled |
interrupted`` through ``fabctl.jobstore`` and writes ``print.started`` (when the printer took the job) and
``print.finished``: ``done`` only when the driver itself reported ``done``; otherwise the reason and the
last confirmed line and layer. ``print.finished``, the device serial of a ``done`` print
(``fabctl.records.devices.assign_device``) and the job's terminal transition are one write transaction, so
a done job always has its serial. A cancel token of kind ``interrupt`` (the daemon's ``--on-stop interrupt``
or a lost lease) ends the job ``interrupted``, any other cancel ``cancelled``. A transport failure raises
``TransportError`` (exit 4) after the job is marked failed. A hot folder only delivers the file (the machine
runs it on its own): the job is left ``printing`` and no ``print.finished`` is written until someone records
the outcome.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fabctl import __version__, jobstore
from fabctl.db import Database
from fabctl.errors import CheckFailed, FabctlError, InputError, TransportError
from fabctl.jobstore import Job
from fabctl.jobstore import JobState as QState
from fabctl.pipeline.runner import Prepared, StageRecord
from fabctl.profiles import PrinterProfile
from fabctl.records import devices, privacy
from fabctl.trace import log
from fabctl.trace.print_events import PrintFinished, PrintStarted, StageRecorded
from fabctl.transport import registry
from fabctl.transport.base import JobState, PrinterStatus


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _cancel_check(cancel: Any) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    if hasattr(cancel, "is_set"):
        return cancel.is_set
    return cancel


def _last(printer: Any, status: PrinterStatus | None) -> tuple[int | None, int | None]:
    stats = getattr(printer, "stats", None)
    line = getattr(stats, "lines_confirmed", None) if stats is not None else None
    layer = status.layer if status is not None else None
    return line, layer


def run_transport(db: Database, job: Job, prepared: Prepared, printer_profile: PrinterProfile, actor: str,
                  cancel: Any = None, on_status: Callable[[PrinterStatus], None] | None = None,
                  stages: list[StageRecord] | None = None) -> QState:
    """Send and follow (module docs); returns the job's final state. ``stages``: the transport's
    ``StageRecord`` is appended here when given."""
    is_cancelled = _cancel_check(cancel)
    t0 = time.monotonic()
    seen: list[PrinterStatus] = []

    def status(st: PrinterStatus) -> None:
        seen[:] = [st]
        if on_status is not None:
            on_status(st)
        if is_cancelled() and st.state not in (JobState.cancelled, JobState.done, JobState.failed):
            with contextlib.suppress(FabctlError, OSError):
                printer.cancel()

    kind = printer_profile.transport.kind
    jobstore.transition(db, job.job_id, QState.sending, actor=actor)
    overrides: dict[str, Any] = {"on_status": status} if kind == "serial" else {}
    printer = registry.open_printer(printer_profile, **overrides)
    if hasattr(cancel, "on_cancel"):
        cancel.on_cancel(printer.cancel)
    started, final, reason = None, None, None
    try:
        ident = printer.connect()
        started = _now()
        log.record(db, prepared.case, PrintStarted(
            job_id=job.job_id, revision=prepared.revision, design_sha256=prepared.design_sha256,
            job_sha256=prepared.job_sha256, job_format=prepared.job_format, printer_id=printer_profile.id,
            printer_profile_sha256=prepared.printer_sha256, printer_model=ident.model[:120],
            printer_firmware=ident.firmware[:120], printer_serial=ident.serial_number[:120], transport=kind,
            resin_id=prepared.resin_id, resin_profile_sha256=prepared.resin_sha256, resin_lot=prepared.lot,
            resin_lot_expires=prepared.lot_expires, started_utc=started, fabctl_version=__version__), actor)
        jobstore.transition(db, job.job_id, QState.printing, actor=actor)
        printer.send_job(prepared.job_file, start=True)
        final = printer.follow(on_status=None if kind == "serial" else status)
    except TransportError as err:
        reason = err.message
    finally:
        with contextlib.suppress(FabctlError, OSError):
            printer.close()
    if kind == "hotfolder" and final is not None:
        with contextlib.suppress(FabctlError, OSError):
            final = printer.status()  # a cancel may have withdrawn the file since follow() returned
    line, layer = _last(printer, final or (seen[0] if seen else None))
    if final is not None and final.state is JobState.printing and kind == "hotfolder":
        # the machine runs it from here; a person records its outcome (record_outcome)
        jobstore.hand_over(db, job.job_id, actor=actor, reason=(final.message or "delivered to the hot folder")[:600])
        _stage(db, prepared, job, t0, stages, actor)
        return QState.printing
    state, reason = _outcome(final, reason, cancel, is_cancelled())
    with db.write() as cur:
        if started is not None:
            log.append(cur, prepared.case, PrintFinished(
                job_id=job.job_id, state=state.value, revision=prepared.revision,
                design_sha256=prepared.design_sha256, job_sha256=prepared.job_sha256,
                printer_id=printer_profile.id, resin_id=prepared.resin_id, resin_lot=prepared.lot,
                resin_lot_expires=prepared.lot_expires, started_utc=started, finished_utc=_now(),
                reason=None if state is QState.done else (reason or "")[:600],
                last_confirmed_line=None if state is QState.done else line,
                last_confirmed_layer=None if state is QState.done else layer,
                fabctl_version=__version__), actor)
            if state is QState.done:
                devices.assign_device(cur, prepared.case, job.job_id, printer_profile.id, quantity=1,
                                      actor=actor)
        # the job's terminal transition in the same transaction as print.finished and the serials
        jobstore.transition_in(cur, job.job_id, state, actor=actor, reason=reason, last_line=line,
                               last_layer=layer)
    _stage(db, prepared, job, t0, stages, actor)
    if state is QState.failed:
        raise TransportError(f"job {job.job_id} on printer {printer_profile.id} failed: {reason}",
                             hint="the part is not printed; `fabctl print` again starts at the transport")
    return state


def _outcome(final: PrinterStatus | None, reason: str | None, cancel: Any,
             cancelled: bool) -> tuple[QState, str | None]:
    """The job's terminal state and reason: ``done`` only when the printer said so; a cancel whose token is
    of kind ``interrupt`` (the daemon stopping with ``--on-stop interrupt``, a lost lease) ends
    ``interrupted``."""
    if final is not None and final.state is JobState.done:
        return QState.done, None
    if final is not None and final.state is JobState.cancelled or (reason is None and cancelled):
        why = reason or getattr(cancel, "reason", None) or (final.message if final else None)
        if getattr(cancel, "kind", None) == "interrupt":
            return QState.interrupted, why or "interrupted"
        return QState.cancelled, why or "cancelled"
    return QState.failed, reason or (
        f"printer ended the job {final.state.value}: {final.message or 'no reason given'}"
        if final is not None else "no final status from the printer")


def _stage(db: Database, prepared: Prepared, job: Job, t0: float, stages: list[StageRecord] | None,
           actor: str) -> None:
    from fabctl.artifacts import input_hash

    secs = time.monotonic() - t0
    key = input_hash("transport", __version__, prepared.job_sha256, job.job_id)
    log.record(db, prepared.case, StageRecorded(
        stage="transport", key=key, artifact_sha256=None, cached=False, seconds=round(secs, 6),
        revision=prepared.revision, printer_id=prepared.printer_id, job_id=job.job_id,
        fabctl_version=__version__), actor)
    if stages is not None:
        stages.append(StageRecord("transport", key, None, secs, False, None))


OUTCOMES = (QState.done, QState.failed, QState.cancelled)


def _started_event(db: Database, job: Job) -> dict:
    for ev in reversed(log.events(db, job.case_id)):
        if ev.type == PrintStarted.TYPE and ev.payload.get("job_id") == job.job_id:
            return ev.payload
    raise CheckFailed(f"job {job.job_id} has no print.started event in the trace of {job.case_id}",
                      hint="run `fabctl trace verify`; the outcome of a print that never started cannot be recorded")


def record_outcome(db: Database, job_id: str, state: str, reason: str | None, actor: str) -> Job:
    """Record what a hot-folder machine reports for a job handed to it: ``done`` (its device serial is assigned,
    as for a print fabctl followed), ``failed`` or ``cancelled`` (with a reason). ``print.finished``, the
    serial and the job's end commit together. Only a job handed over (``jobstore.HANDED_OVER``) qualifies:
    fabctl follows every other printer itself and never takes a person's word for those."""
    try:
        to = QState(state)
    except ValueError:
        to = None
    if to not in OUTCOMES:
        raise InputError(f"outcome {state!r} is not one of done, failed, cancelled")
    if to is not QState.done and not reason:
        raise InputError(f"a {state} outcome needs --reason (what the machine reported)",
                         hint="e.g. --reason 'recoater fault at layer 212'")
    reason = privacy.check_text("--reason", reason)
    job = jobstore.get(db, job_id)
    if not job.handed_over:
        raise CheckFailed(f"job {job_id} is {job.state.value} (owner {job.owner or 'none'}): only a job handed "
                          "to a hot-folder machine waits for a recorded outcome",
                          hint="fabctl follows every other printer itself; see `fabctl queue status JOB`")
    started = _started_event(db, job) if job.kind == "case" else None
    with db.write() as cur:
        now = jobstore.get_in(cur, job_id)
        if not now.handed_over:
            raise CheckFailed(f"job {job_id} changed meanwhile ({now.state.value}); nothing recorded")
        if started is not None:
            log.append(cur, job.case_id, PrintFinished(
                job_id=job_id, state=to.value, revision=started["revision"],
                design_sha256=started["design_sha256"], job_sha256=started["job_sha256"],
                printer_id=job.printer_id, resin_id=started["resin_id"], resin_lot=started["resin_lot"],
                resin_lot_expires=started["resin_lot_expires"], started_utc=started["started_utc"],
                finished_utc=_now(), reason=None if to is QState.done else reason,
                fabctl_version=__version__), actor)
            if to is QState.done:
                devices.assign_device(cur, job.case_id, job_id, job.printer_id, quantity=1, actor=actor)
        return jobstore.transition_in(cur, job_id, to, actor=actor, reason=reason,
                                      extra={"recorded_outcome": True})
