"""What a worker runs for a job: service (file) jobs stream a finished job file through the printer profile's
transport (as ``fabctl send`` does); case jobs go through the pipeline's ``prepare`` and ``run_transport``."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fabctl import jobstore, profiles
from fabctl.case import sha256_file
from fabctl.errors import InputError, TransportError
from fabctl.jobstore import Job, JobState
from fabctl.transport import registry
from fabctl.transport.base import JobState as PrinterJobState

log = logging.getLogger(__name__)



def open_printer(printer_id: str, on_status: Callable | None = None) -> tuple[Any, str]:
    """The (unconnected) driver for ``printer_id`` and its transport kind."""
    profile = profiles.printer(printer_id)
    t = profile.transport
    overrides: dict[str, Any] = {}
    if t.kind == "serial":   # mockprinter:// is registered by `fabctl queue serve` (the CLI), never here
        overrides["on_status"] = on_status
    return registry.open_printer(profile, **overrides), t.kind


def probe(printer_id: str) -> str | None:
    """None when the printer answers a connect; else why not (the worker keeps its jobs queued meanwhile)."""
    try:
        printer, _ = open_printer(printer_id)
    except (TransportError, InputError) as err:
        return err.message
    try:
        printer.connect()
    except TransportError as err:
        return err.message
    finally:
        printer.close()
    return None


def run_file_job(db: Any, job: Job, cfg: Any, run: Any) -> None:
    """Stream ``job.job_file`` to the printer and follow it; ``done`` only when the printer said so."""
    path = Path(job.job_file or "")
    if not path.is_file():
        raise InputError(f"job file {path} of {job.job_id} does not exist or is not a file")
    digest = sha256_file(path)
    session = getattr(run, "session", None)
    transport = profiles.printer(job.printer_id).transport
    cached = session.get("printer") if session is not None else None
    if cached is not None and session.get("transport") == transport:
        printer, kind = cached, "serial"  # a serial driver keeps what it learned (resend behaviour)
        printer.on_status = run.on_status
    else:
        printer, kind = open_printer(job.printer_id, run.on_status)
        if kind == "serial" and session is not None:
            session.update(printer=printer, transport=transport)
    try:
        ident = printer.connect()
        detail = {"job_sha256": digest, "transport": kind, "printer_model": ident.model,
                  "printer_firmware": ident.firmware, "printer_serial": ident.serial_number}
        jobstore.transition(db, job.job_id, JobState.sending, actor=cfg.actor, extra=detail)
        if kind == "serial":
            printer.send_job(path, start=False)
            run.cancel.on_cancel(printer.cancel)
            if run.cancel.is_set():
                return
            jobstore.transition(db, job.job_id, JobState.printing, actor=cfg.actor)
            printer.start()
        else:
            run.cancel.on_cancel(printer.cancel)
            if run.cancel.is_set():
                return  # nothing delivered yet
            printer.send_job(path, start=True)
            jobstore.transition(db, job.job_id, JobState.printing, actor=cfg.actor)
            printer.follow(on_status=run.on_status)
        final = printer.status()
    finally:
        printer.close()
    run.on_status(final)
    if kind == "hotfolder" and final.state is PrinterJobState.printing:
        # the file is in the machine's folder (a cancel that came too late could not withdraw it): the machine
        # runs it from here and a person records its outcome (`fabctl queue outcome`)
        jobstore.hand_over(db, job.job_id, actor=cfg.actor,
                           reason=(final.message or "delivered to the hot folder")[:600])
        return
    ok = final.state is PrinterJobState.done
    if ok and not run.cancel.is_set():
        jobstore.transition(db, job.job_id, JobState.done, actor=cfg.actor, last_line=run.last_line,
                            last_layer=run.last_layer)
    elif not run.cancel.is_set():
        raise TransportError(f"printer {job.printer_id} ended job {job.job_id} {final.state.value}: "
                             f"{final.message or 'no reason given'}")


def _noop(*_a: Any, **_k: Any) -> None:
    return None


def case_runner(prepare: Callable, run_transport: Callable) -> Callable:
    """A worker's case-job runner from the pipeline's two callables (contract: fabctl/queue/worker.py)."""

    def run_case(db: Any, job: Job, cfg: Any, run: Any) -> None:
        prepared = prepare(db, job.case_id, job.printer_id, job.resin_id, job.lot, cfg.actor, _noop,
                           home=cfg.home, cancel=run.cancel.is_set, job_id=job.job_id)
        if run.cancel.is_set():
            return
        run_transport(db, jobstore.get(db, job.job_id), prepared, profiles.printer(job.printer_id), cfg.actor,
                      run.cancel, run.on_status)

    return run_case


def pipeline_runner() -> Callable:
    """The case-job runner from ``fabctl.pipeline``, imported on the first case job (it loads the geometry
    stack, seconds of start-up a daemon serving only service jobs does not need)."""
    loaded: list[Callable] = []

    def run_case(db: Any, job: Job, cfg: Any, run: Any) -> None:
        if not loaded:
            pipeline = importlib.import_module("fabctl.pipeline")
            loaded.append(case_runner(pipeline.prepare, pipeline.run_transport))
        loaded[0](db, job, cfg, run)

    return run_case
