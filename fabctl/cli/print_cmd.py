"""`fabctl print CASE [--printer ID] [--resin ID] [--lot LOT] [--queue] [--json]`: design to printed part.

Runs the gates and the stages (``fabctl.pipeline.prepare``: revision, validate, orient, support, slice, job
file, each cached by the hash of its inputs) and then the transport (``fabctl.pipeline.run_transport``) on
a job created in ``fabctl.jobstore``, so direct and queued prints share job ids, states, the
one-active-job-per-case rule and printer ownership: the direct print holds the printer's lease while it runs
and refuses a printer a daemon owns. A print that ends ``done`` has its device serial (``device_serials``,
assigned in the transaction that records the end). ``--queue`` only creates a queued job for ``fabctl queue
serve``.

``--lot`` is required for a clinical resin. A demo resin (``clinical_use = false``, e.g. demo-grey) without
``--lot`` prints from the built-in lot ``DEMO`` (never expires; recorded as such). Exit 3 when a gate refuses
(one line naming the gate and the limit; ``print.refused`` in the trace; nothing sent), 4 when the transport
fails (the job is marked failed with the reason).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from fabctl import jobstore, profiles
from fabctl.cli.common import emit_json, home, is_tty, operator
from fabctl.db import Database, open_db
from fabctl.errors import CheckFailed, FabctlError, InputError
from fabctl.pipeline import prepare, run_transport
from fabctl.records import devices
from fabctl.trace import log
from fabctl.transport.base import PrinterStatus

LEASE_TTL_S = 300.0


@contextmanager
def _display(quiet: bool) -> Iterator[tuple[Callable[..., None], Callable[[PrinterStatus], None] | None]]:
    """Per-stage progress on a terminal (stderr); no-ops under --json or when not a TTY."""
    if quiet or not is_tty():
        yield (lambda *_a: None), None
        return
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    cols = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
            TimeElapsedColumn())
    with Progress(*cols, console=Console(stderr=True)) as bar:
        tasks: dict[str, Any] = {}

        def stage(name: str, what: str, rec: Any) -> None:
            if what == "start":
                tasks[name] = bar.add_task(f"{name:>9}", total=1.0)
            else:
                note = "cached" if rec.cached else f"{rec.seconds:.1f} s"
                bar.update(tasks[name], completed=1.0, description=f"{name:>9} ({note})")

        def status(st: PrinterStatus) -> None:
            if "transport" not in tasks:
                tasks["transport"] = bar.add_task(f"{'transport':>9}", total=1.0)
            layer = f" layer {st.layer}/{st.layers_total}" if st.layers_total else ""
            bar.update(tasks["transport"], completed=st.progress,
                       description=f"{'transport':>9} {st.state.value}{layer}")

        yield stage, status


def _lease_keeper(db: Database, printer_id: str, owner: str) -> Callable[[], None]:
    last = [time.monotonic()]

    def keep() -> None:
        if time.monotonic() - last[0] > LEASE_TTL_S / 5:
            last[0] = time.monotonic()
            jobstore.renew_printer(db, printer_id, owner, LEASE_TTL_S)

    return keep


def _interrupted(db: Database, job: Any, actor: str) -> None:
    if job is None:
        return
    now = jobstore.get(db, job.job_id)
    if now.state in jobstore.IN_FLIGHT and not now.handed_over:  # (the machine prints that one)
        jobstore.transition(db, job.job_id, jobstore.JobState.interrupted, actor=actor,
                            reason="fabctl print was interrupted (Ctrl-C or SIGTERM); never resumed: print again")


def _failed(db: Database, job: Any, actor: str, reason: str) -> None:
    if job is None:
        return
    now = jobstore.get(db, job.job_id)
    if now.state not in jobstore.TERMINAL and not now.handed_over:
        jobstore.transition(db, job.job_id, jobstore.JobState.failed, actor=actor, reason=reason)


def _sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _queue(db: Database, case: str, printer: str, resin: str, lot: str | None, actor: str, json_out: bool) -> None:
    job = jobstore.create(db, case_id=case, printer_id=printer, resin_id=resin, lot=lot, actor=actor,
                          queued=True, owner=None)
    if json_out:
        emit_json({"case": case, "job_id": job.job_id, "state": job.state.value, "printer": printer})
    else:
        typer.echo(f"{job.job_id}: queued for {printer} (fabctl queue status {job.job_id})")


def _direct(db: Database, case: str, printer: profiles.PrinterProfile, resin: profiles.ResinProfile,
            lot: str | None, actor: str, json_out: bool) -> dict:
    t = printer.transport
    if t.kind == "serial" and t.url.startswith("mockprinter://"):
        from fabctl.cli.send import register_mock_urls

        register_mock_urls(t.url)
    owner = f"cli-{socket.gethostname()}-{os.getpid()}"
    if not jobstore.acquire_printer(db, printer.id, owner, LEASE_TTL_S):
        raise CheckFailed(f"printer {printer.id} is owned by {jobstore.printer_owner(db, printer.id)}",
                          hint=f"hand the job to the queue: fabctl print {case} --queue")
    t0 = time.monotonic()
    # a print that died without a word (killed, power cut) leaves its job in flight with a lapsed lease: mark
    # such jobs interrupted first, as a starting daemon does, so the case is not blocked forever; live ones stay
    jobstore.recover(db, actor=actor)
    try:
        job = jobstore.create(db, case_id=case, printer_id=printer.id, resin_id=resin.id, lot=lot, actor=actor,
                              queued=False, owner=owner)
        keep = _lease_keeper(db, printer.id, owner)
        with _display(json_out) as (stage, status):
            try:
                prepared = prepare(db, case, printer.id, resin.id, lot, actor, lambda *a: (keep(), stage(*a)),
                                   home=home(), job_id=job.job_id)
            except FabctlError as err:
                jobstore.transition(db, job.job_id, jobstore.JobState.failed, actor=actor, reason=err.message[:600])
                raise

            def on_status(st: PrinterStatus) -> None:
                keep()
                if status is not None:
                    status(st)

            stages = list(prepared.stages)
            state = run_transport(db, jobstore.get(db, job.job_id), prepared, printer, actor, None, on_status,
                                  stages=stages)
    except KeyboardInterrupt:   # Ctrl-C or SIGTERM: never leave the job looking alive
        _interrupted(db, locals().get("job"), actor)
        raise
    except Exception as err:    # a bug: the job must not stay in flight either; the CLI boundary reports it
        _failed(db, locals().get("job"), actor, f"internal error: {type(err).__name__}: {err}"[:600])
        raise
    finally:
        jobstore.release_printer(db, printer.id, owner)
    return {"case": case, "job_id": job.job_id, "state": state.value, "printer": printer.id, "resin": resin.id,
            "lot": prepared.lot, "revision": prepared.revision, "job_file": str(prepared.job_file),
            "job_file_sha256": prepared.job_sha256, "job_format": prepared.job_format, "layers": prepared.layers,
            "stages": [s.as_dict() for s in stages], "pictures": prepared.pictures,
            "artifacts": prepared.artifacts, "seconds": round(time.monotonic() - t0, 3),
            "device_serials": [d.serial for d in devices.case_devices(db, case) if d.build_id == job.job_id],
            "trace_head": log.events(db, case)[-1].hash}


def print_cmd(
    case: str = typer.Argument(..., metavar="CASE", help="Case id, e.g. case-42."),
    printer_id: str | None = typer.Option(None, "--printer", help="Printer profile id (default sim-laser)."),
    resin_id: str | None = typer.Option(None, "--resin", help="Resin profile id (default demo-grey)."),
    lot: str | None = typer.Option(None, "--lot", help="Resin lot (required for a clinical resin)."),
    queue: bool = typer.Option(False, "--queue", help="Hand the job to the queue daemon; print its id."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Print a case: gates, validate, orient, support, slice, job file, send, follow to the end."""
    actor = operator()
    printer = profiles.printer(printer_id or profiles.DEFAULT_PRINTER)
    resin = profiles.resin(resin_id or profiles.DEFAULT_RESIN)
    if lot is None and resin.clinical_use:
        raise InputError(f"--lot is required for resin {resin.id} (a clinical resin)",
                         hint=f"fabctl print {case} --resin {resin.id} --lot LOT (registered with fabctl resin lot add)")
    db = open_db(home())
    signal.signal(signal.SIGTERM, _sigterm)
    if queue:
        _queue(db, case, printer.id, resin.id, lot, actor, json_out)
        return
    doc = _direct(db, case, printer, resin, lot, actor, json_out)
    if json_out:
        emit_json(doc)
        return
    typer.echo(f"{case}: {doc['job_id']} {doc['state']} on {printer.id} ({doc['layers']} layers, "
               f"{doc['seconds']:.1f} s)")
    for s in doc["stages"]:
        took = "cached" if s["cached"] else f"{s['seconds']:.2f} s"
        typer.echo(f"  {s['name']:>9}: {took}")
    typer.echo(f"  job file: {doc['job_file']} (sha256 {doc['job_file_sha256']})")
    if doc["device_serials"]:
        typer.echo(f"  device serial: {', '.join(doc['device_serials'])}")
    for p in doc["pictures"]:
        typer.echo(f"  picture: {p}")
    typer.echo(f"  trace head: {doc['trace_head']}")
