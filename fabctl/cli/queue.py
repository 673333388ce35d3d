"""`fabctl queue serve | ls | status JOB | cancel JOB | outcome JOB | requeue JOB | add JOBFILE --printer ID`:
the printer queue and the daemon that owns the printers (fabctl/queue/daemon.py, fabctl/jobstore.py)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fabctl import jobstore
from fabctl.cli.common import emit_json, home, operator
from fabctl.db import open_db
from fabctl.errors import InputError
from fabctl.jobstore import JobState
from fabctl.trace import log

app = typer.Typer(help="The printer queue and its daemon.", no_args_is_help=True)


@app.command("serve")
def serve(
    printers: str | None = typer.Option(None, "--printers", metavar="ID,...",
                                        help="Printer profile ids to own (default: every printer profile)."),
    on_stop: str = typer.Option("finish", "--on-stop", metavar="finish|interrupt",
                                help="On SIGTERM: let running jobs finish, or cancel them at the printer and "
                                     "mark them interrupted."),
    poll_s: float = typer.Option(1.0, "--poll-s", help="Seconds between looks at the queue."),
    lease_s: float = typer.Option(15.0, "--lease-s",
                                  help="Printer lease in seconds: a dead daemon's jobs are recovered after it."),
    owner: str | None = typer.Option(None, "--owner", metavar="NAME",
                                     help="This daemon's unique name in leases and jobs (default HOST-PID)."),
    json_out: bool = typer.Option(False, "--json", help="One JSON summary on stdout when it stops."),
) -> None:
    """Run the queue daemon until SIGTERM/SIGINT: one worker per printer, crash recovery, no silent resume."""
    from fabctl.queue.daemon import DaemonConfig
    from fabctl.queue.daemon import serve as run

    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(threadName)s: %(message)s")
    ids = [p.strip() for p in printers.split(",") if p.strip()] if printers else []
    kw = {"owner": owner} if owner else {}
    cfg = DaemonConfig(home=home(), printers=ids, on_stop=on_stop, poll_s=poll_s,  # type: ignore[arg-type]
                       lease_s=lease_s, **kw)
    _register_mock_printers(cfg.printers)
    summary = run(cfg)
    if json_out:
        emit_json(summary)
    else:
        typer.echo(f"queue daemon {summary['owner']} stopped; recovered (interrupted): "
                   f"{', '.join(summary['recovered']) or 'none'}", err=True)


def _register_mock_printers(printer_ids: list[str]) -> None:
    """The simulated printers' ``mockprinter://`` scheme must be known to pyserial before a worker opens
    one (case jobs open their printer through ``fabctl.pipeline.run_transport``)."""
    from fabctl import profiles
    from fabctl.cli.send import register_mock_urls

    for pid in printer_ids:
        t = profiles.printer(pid).transport
        if t.kind == "serial":
            register_mock_urls(t.url)


def _states(values: list[str] | None) -> list[JobState] | None:
    if not values:
        return None
    try:
        return [JobState(v) for v in values]
    except ValueError:
        raise InputError(f"--state {values!r}: known states are {', '.join(s.value for s in JobState)}") from None


@app.command("ls")
def ls(state: list[str] | None = typer.Option(None, "--state", help="Only jobs in this state (repeatable)."),
       json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """List jobs, oldest first."""
    db = open_db(home())
    jobs = jobstore.list_jobs(db, _states(state))
    if json_out:
        emit_json({"jobs": [j.as_dict() for j in jobs]})
        return
    t = Table(title="queue")
    for col in ("job", "state", "case", "printer", "owner", "updated (UTC)", "reason"):
        t.add_column(col, overflow="fold")
    for j in jobs:
        t.add_row(j.job_id, j.state.value + (" (cancel requested)" if j.cancel_requested and not j.terminal
                                             else ""),
                  j.case_id, j.printer_id, j.owner or "", j.updated_utc[:19].replace("T", " "), j.reason or "")
    Console(width=200).print(t)


@app.command("status")
def status(job_id: str = typer.Argument(..., metavar="JOB"),
           json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """One job: its state, owner, last confirmed line/layer, reason and its events in the trace."""
    db = open_db(home())
    job = jobstore.get(db, job_id)
    doc = job.as_dict()
    doc["printer_owner"] = jobstore.printer_owner(db, job.printer_id)
    events = [e for e in log.events(db, job.case_id) if e.payload.get("job_id") == job.job_id]
    if json_out:
        emit_json({**doc, "events": [e.as_dict() for e in events]})
        return
    for k, v in doc.items():
        if v is not None:
            typer.echo(f"{k}: {v}")
    for e in events:
        p = e.payload
        what = f"{p.get('from_state') or '-'} -> {p['to_state']}" if e.type == "job.state" else e.type
        typer.echo(f"  {e.at_utc[:19].replace('T', ' ')}  {e.actor:<24} {what}"
                   + (f"  ({p['reason']})" if p.get("reason") else ""))


@app.command("cancel")
def cancel(job_id: str = typer.Argument(..., metavar="JOB")) -> None:
    """Cancel a queued job at once; ask the daemon to cancel a running one at its printer."""
    job = jobstore.request_cancel(open_db(home()), job_id, actor=operator())
    if job.terminal:
        typer.echo(f"{job.job_id} {job.state.value}")
    else:
        typer.echo(f"{job.job_id} is {job.state.value}: cancel requested; the daemon that owns it "
                   f"({job.owner}) stops it at the printer")


@app.command("outcome")
def outcome(job_id: str = typer.Argument(..., metavar="JOB"),
            state: str = typer.Option(..., "--state", metavar="done|failed|cancelled",
                                      help="What the machine reports for the job."),
            reason: str | None = typer.Option(None, "--reason", help="Required unless done: what went wrong."),
            json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """Record the outcome of a job handed to a hot-folder machine (fabctl cannot see those machines run).

    Only such a job qualifies; ``done`` assigns the guide's device serial as a followed print does."""
    from fabctl.pipeline.transport_run import record_outcome

    db = open_db(home())
    job = record_outcome(db, job_id, state, reason, operator())
    if json_out:
        emit_json(job.as_dict())
    else:
        typer.echo(f"{job.job_id} {job.state.value} (recorded from the machine)")


@app.command("requeue")
def requeue(job_id: str = typer.Argument(..., metavar="JOB"),
            json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """Queue an interrupted, failed or cancelled job again, as a new job that starts from the beginning."""
    job = jobstore.requeue(open_db(home()), job_id, actor=operator())
    if json_out:
        emit_json(job.as_dict())
    else:
        typer.echo(f"{job.job_id} queued (re-queue of {job_id})")


@app.command("add")
def add(job_file: Path = typer.Argument(..., metavar="JOBFILE", help="A finished job file."),
        printer_id: str = typer.Option(..., "--printer", help="Printer profile id."),
        json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """Queue a finished job file for a printer (service work: the queued form of `fabctl send`)."""
    from fabctl import profiles

    path = job_file.expanduser().resolve()
    if not path.is_file():
        raise InputError(f"job file {job_file} does not exist or is not a file")
    profiles.printer(printer_id)
    job = jobstore.create(open_db(home()), case_id="", printer_id=printer_id, resin_id=None, lot=None,
                          actor=operator(), queued=True, owner=None, kind="file", job_file=str(path))
    if json_out:
        emit_json(job.as_dict())
    else:
        typer.echo(job.job_id)
