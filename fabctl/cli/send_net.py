"""Network transports for ``fabctl send``: OctoPrint (``--octoprint URL --api-key KEY``) and PrusaLink.

The ``send`` command calls ``run_octoprint`` (or ``run_prusalink``), prints the returned document under
``--json`` and maps the ``TransportError`` of a job that did not end ``done`` to exit 4. A progress bar
goes to stderr on a terminal, never under ``--json``.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from fabctl.case import sha256_file
from fabctl.cli import common
from fabctl.errors import InputError, TransportError
from fabctl.transport.base import JobState, PrinterStatus
from fabctl.transport.octoprint import OctoPrintPrinter
from fabctl.transport.prusalink import PrusaLinkPrinter


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _follow(printer: OctoPrintPrinter | PrusaLinkPrinter, name: str, json_out: bool,
            timeout_s: float | None) -> PrinterStatus:
    if json_out or not common.is_tty():
        return printer.follow(timeout_s=timeout_s)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(f"printing {name}", total=1.0)

        def show(st: PrinterStatus) -> None:
            bar.update(task, completed=st.progress, description=f"{st.state.value} {name}")

        return printer.follow(timeout_s=timeout_s, on_status=show)


def _run(printer: OctoPrintPrinter | PrusaLinkPrinter, kind: str, url: str, job_file: Path, json_out: bool,
         timeout_s: float | None) -> dict[str, Any]:
    job_file = Path(job_file)
    if not job_file.is_file():
        raise InputError(f"job file {job_file} does not exist or is not a file")
    digest = sha256_file(job_file)
    with ExitStack() as stack:
        stack.callback(printer.close)
        ident = printer.connect()
        started_utc, t0 = _now(), time.monotonic()
        reference = printer.send_job(job_file, start=True)
        upload_s = time.monotonic() - t0
        final = _follow(printer, job_file.name, json_out, timeout_s)
    outcome = {
        "transport": kind, "url": url, "job_file": job_file.name, "job_sha256": digest,
        "reference": reference,
        "printer": {"model": ident.model, "firmware": ident.firmware, "serial_number": ident.serial_number},
        "state": final.state.value, "progress": round(final.progress, 4), "message": final.message,
        "started_utc": started_utc, "ended_utc": _now(),
        "upload_and_start_s": round(upload_s, 3), "duration_s": round(time.monotonic() - t0, 3),
    }
    if final.state is not JobState.done:
        raise TransportError(
            f"job {job_file.name} on {kind} at {url} ended {final.state.value}: {final.message or 'no reason given'}",
            hint="the part is not printed: check the printer before sending it again",
        )
    return outcome


def run_octoprint(job_file: Path, url: str, api_key: str, json_out: bool, *, port: str | None = None,
                  timeout_s: float | None = None) -> dict[str, Any]:
    """``fabctl send JOBFILE --octoprint URL --api-key KEY``: connect, upload, start, follow to the end.

    Returns the outcome document (state ``done``); raises ``TransportError`` (exit 4) when the job failed,
    was cancelled or OctoPrint was lost, ``InputError`` (exit 2) for a missing or refused file.
    """
    return _run(OctoPrintPrinter(url, api_key, port=port), "octoprint", url, job_file, json_out, timeout_s)


def run_prusalink(job_file: Path, url: str, username: str, password: str, json_out: bool, *,
                  timeout_s: float | None = None) -> dict[str, Any]:
    """The same for an SL1 archive sent to a PrusaLink printer (digest auth)."""
    return _run(PrusaLinkPrinter(url, username, password), "prusalink", url, job_file, json_out, timeout_s)
