"""`fabctl send JOBFILE (--printer ID | --port URL [--baud N] | --octoprint URL --api-key KEY) [--json]
[--dry-run FILE]`: send a finished job file over one transport and follow it to the end.

* ``--printer ID``: the printer profile's transport (serial, hot folder, OctoPrint, PrusaLink) through
  ``fabctl.transport.registry``.
* ``--port URL``: stream over serial to any pyserial URL (device path, ``socket://``, ``rfc2217://``,
  ``mockprinter://``) with ``--baud`` and ``--rx-buffer``.
* ``--octoprint URL --api-key KEY``: upload and start through OctoPrint (``fabctl.cli.send_net``).
* ``--dry-run FILE``: write the exact bytes a clean serial stream would put on the wire; nothing is sent.

Exit 0 only when the printer reported the job done (a hot folder: delivered; its machine runs it), 4 on a
transport failure or when the job ended any other way, with one ``error:`` line. ``--json`` prints one
document: printer identity, lines sent, resends, duration, state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from fabctl import profiles
from fabctl.case import sha256_file
from fabctl.cli import common
from fabctl.errors import InputError, TransportError
from fabctl.transport.base import JobState, PrinterStatus

app = typer.Typer(add_completion=False, help="Send a finished job file to a printer and follow it.")

MOCK_SCHEME = "mockprinter://"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def register_mock_urls(url: str) -> None:
    """Make ``mockprinter://`` known to pyserial (the simulated printers); needs ``pip install -e hardware``."""
    if not url.startswith(MOCK_SCHEME):
        return
    try:
        import mockprinter
    except ImportError:
        raise InputError("the mock printer is not installed, so mockprinter:// URLs cannot be opened",
                         hint="pip install -e hardware") from None
    mockprinter.register()


@contextmanager
def _progress_bar(name: str, quiet: bool) -> Iterator[Callable[[PrinterStatus], None] | None]:
    """A rich bar on stderr on a terminal; ``None`` (no callback) under ``--json`` or when not a TTY."""
    if quiet or not common.is_tty():
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"sending {name}", total=1.0)

        def show(st: PrinterStatus) -> None:
            layer = f" layer {st.layer}/{st.layers_total}" if st.layers_total else ""
            bar.update(task, completed=st.progress, description=f"{st.state.value} {name}{layer}")

        yield show


def _open(printer_id: str | None, port: str | None, baud: int, rx_buffer: int,
          on_status: Callable[[PrinterStatus], None] | None) -> tuple[Any, str, str]:
    """The driver (not connected), its transport kind and where it is."""
    from fabctl.transport import registry
    from fabctl.transport.serial import SerialPrinter

    if port is not None:
        register_mock_urls(port)
        return SerialPrinter(port, baud=baud, rx_buffer_bytes=rx_buffer, on_status=on_status), "serial", port
    assert printer_id is not None
    profile = profiles.printer(printer_id)
    t = profile.transport
    where = getattr(t, "url", None) or getattr(t, "path", "")
    overrides: dict[str, Any] = {}
    if t.kind == "serial":
        if profile.simulated:
            register_mock_urls(t.url)
        overrides["on_status"] = on_status
    return registry.open_printer(profile, **overrides), t.kind, where


def _doc(kind: str, where: str, job: Path, digest: str, ref: str, ident: Any, final: PrinterStatus,
         printer: Any, started: str, t0: float) -> dict[str, Any]:
    stats = getattr(printer, "stats", None)
    doc: dict[str, Any] = {
        "transport": kind, "url": where, "job_file": job.name, "job_sha256": digest, "reference": ref,
        "printer": {"model": ident.model, "firmware": ident.firmware, "serial_number": ident.serial_number},
        "state": final.state.value, "progress": round(final.progress, 4), "layers_total": final.layers_total,
        "message": final.message, "started_utc": started, "ended_utc": _now(),
        "duration_s": round(time.monotonic() - t0, 3),
    }
    if stats is not None:
        doc.update(lines_total=stats.lines_total, lines_sent=stats.lines_confirmed, resends=stats.resends,
                   wire_lines=stats.wire_lines, wire_bytes=stats.wire_bytes, flow=stats.flow,
                   max_inflight_bytes=stats.max_inflight_bytes, max_inflight_lines=stats.max_inflight_lines)
    return doc


def _finished_ok(kind: str, state: JobState) -> bool:
    return state is JobState.done or (kind == "hotfolder" and state is JobState.printing)


def _run(job: Path, printer_id: str | None, port: str | None, baud: int, rx_buffer: int,
         json_out: bool) -> dict[str, Any]:
    digest = sha256_file(job)
    with _progress_bar(job.name, json_out) as show:
        printer, kind, where = _open(printer_id, port, baud, rx_buffer, show)
        try:
            ident = printer.connect()
            started, t0 = _now(), time.monotonic()
            ref = printer.send_job(job, start=True)
            final = printer.follow(on_status=show) if kind != "serial" else printer.status()
        finally:
            printer.close()
    if not _finished_ok(kind, final.state):
        raise TransportError(f"job {job.name} on {kind} at {where} ended {final.state.value}: "
                             f"{final.message or 'no reason given'}",
                             hint="the part is not printed: check the printer before sending it again")
    return _doc(kind, where, job, digest, ref, ident, final, printer, started, t0)


def _print_summary(doc: dict[str, Any]) -> None:
    if "dry_run" in doc:
        typer.echo(f"dry run: {doc['wire_lines']} lines, {doc['wire_bytes']} bytes written to {doc['out']}")
        return
    p = doc["printer"]
    extra = f", {doc['lines_sent']}/{doc['lines_total']} lines, {doc['resends']} resends" if "resends" in doc else ""
    typer.echo(f"{doc['state']}: {doc['job_file']} on {p['model']} ({p['firmware']}, serial {p['serial_number']})"
               f"{extra}, {doc['duration_s']:.1f} s")


def send(
    job_file: Path = typer.Argument(..., help="The finished job file (laser G-code, SL1, CLI)."),
    printer_id: str | None = typer.Option(None, "--printer", help="Printer profile id."),
    port: str | None = typer.Option(None, "--port", help="Serial port or pyserial URL to stream to."),
    baud: int = typer.Option(115200, "--baud", min=1200, max=4_000_000, help="Baud rate for --port."),
    rx_buffer: int = typer.Option(127, "--rx-buffer", min=21, max=65536,
                                  help="The firmware's receive buffer in bytes, for --port."),
    octoprint: str | None = typer.Option(None, "--octoprint", help="OctoPrint base URL."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="FABCTL_OCTOPRINT_API_KEY",
                                       help="OctoPrint application key (for --octoprint)."),
    dry_run: Path | None = typer.Option(None, "--dry-run", help="Write the framed serial bytes here; send nothing."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Send JOBFILE to one printer and follow the job to its end (exit 4 unless it ended done)."""
    job = Path(job_file)
    if not job.is_file():
        raise InputError(f"job file {job} does not exist or is not a file")
    if dry_run is not None:
        from fabctl.transport.serial import write_dry_run

        doc = {"dry_run": True, **write_dry_run(job, dry_run)}
    elif octoprint is not None:
        doc = _send_octoprint(job, octoprint, api_key, printer_id, port, json_out)
    else:
        if (printer_id is None) == (port is None):
            raise InputError("give exactly one of --printer ID, --port URL or --octoprint URL",
                             hint="fabctl send JOBFILE --printer sim-laser")
        doc = _run(job, printer_id, port, baud, rx_buffer, json_out)
    if json_out:
        common.emit_json(doc)
    else:
        _print_summary(doc)


def _send_octoprint(job: Path, url: str, api_key: str | None, printer_id: str | None, port: str | None,
                    json_out: bool) -> dict[str, Any]:
    """The OctoPrint branch (owned by the network-transport side: ``fabctl.cli.send_net``)."""
    if printer_id is not None or port is not None:
        raise InputError("--octoprint cannot be combined with --printer or --port")
    if not api_key:
        raise InputError("--octoprint needs --api-key KEY (or $FABCTL_OCTOPRINT_API_KEY)")
    from fabctl.cli import send_net

    return send_net.run_octoprint(job, url, api_key, json_out)


app.command("send")(send)
