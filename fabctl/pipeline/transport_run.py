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
from fabctl.errors import FabctlError, TransportError
from fabctl.jobstore import Job
from fabctl.jobstore import JobState as QState
from fabctl.pipeline.runner import Prepared, StageRecord
from fabctl.profiles import PrinterProfile
from fabctl.records import devices
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
    line, layer = _last(printer, final or (seen[0] if seen else None))
    if final is not None and final.state is JobState.printing and kind == "hotfolder":
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
