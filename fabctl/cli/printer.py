"""`fabctl printer ls [--json]`, `printer status ID [--json]`, `printer calibrate ID --due DATE [--kind K]`.

``calibrate`` records that the printer's next calibration (or, with ``--kind maintenance``, maintenance) is
due on DATE. `fabctl print` refuses (exit 3) a printer whose calibration or maintenance is overdue (today UTC
after the due date), and a real (``simulated = false``) printer with no calibration recorded at all; a
simulated printer may have none recorded.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from fabctl import inventory, profiles
from fabctl.cli.common import emit_json, home, operator
from fabctl.db import open_db

app = typer.Typer(help="Printers: profiles, calibration and maintenance due dates.", no_args_is_help=True)


def _status(p: profiles.PrinterProfile, dues: dict[str, inventory.Due]) -> dict:
    today = inventory.today_utc()
    out: dict = {"id": p.id, "name": p.name, "technology": p.technology, "job_format": p.job_format,
                 "simulated": p.simulated, "transport": p.transport.kind}
    for kind in inventory.KINDS:
        d = dues.get(kind)
        out[kind] = None if d is None else {
            "due_on": d.due_on, "overdue": inventory.parse_date(d.due_on, "due date") < today,
            "recorded_utc": d.recorded_utc, "recorded_by": d.recorded_by}
    from fabctl.pipeline.gates import calibration_problem

    out["ready"] = calibration_problem(p.id, p.simulated, {k: v.due_on for k, v in dues.items()}, today) is None
    return out


@app.command("ls")
def ls(json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """List printer profiles with their calibration and maintenance state."""
    dues = inventory.all_dues(open_db(home()))
    rows = [_status(p, dues.get(p.id, {})) for p in (profiles.printer(x.stem) for x in profiles.paths("printer"))]
    if json_out:
        emit_json({"today_utc": inventory.today_utc().isoformat(), "printers": rows})
        return
    t = Table(title="printers")
    for col in ("id", "technology", "transport", "simulated", "calibration due", "maintenance due", "ready"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["id"], r["technology"], r["transport"], "yes" if r["simulated"] else "no",
                  *(_due_cell(r[k]) for k in inventory.KINDS), "yes" if r["ready"] else "[red]no[/]")
    Console(width=160).print(t)


def _due_cell(d: dict | None) -> str:
    if d is None:
        return "-"
    return f"[red]{d['due_on']} overdue[/]" if d["overdue"] else d["due_on"]


@app.command("status")
def status(printer_id: str = typer.Argument(..., metavar="ID"),
           json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """One printer's profile summary and calibration / maintenance state."""
    p = profiles.printer(printer_id)
    doc = _status(p, inventory.dues(open_db(home()), p.id))
    if json_out:
        emit_json(doc)
        return
    typer.echo(f"{p.id}: {p.name} ({p.technology}, {p.transport.kind}{', simulated' if p.simulated else ''})")
    for kind in inventory.KINDS:
        typer.echo(f"  {kind}: {_due_cell(doc[kind]) if doc[kind] else 'never recorded'}")
    typer.echo(f"  ready to print: {'yes' if doc['ready'] else 'no'}")


@app.command("calibrate")
def calibrate(
    printer_id: str = typer.Argument(..., metavar="ID"),
    due: str = typer.Option(..., "--due", metavar="DATE", help="Next calibration due, YYYY-MM-DD."),
    kind: str = typer.Option("calibration", "--kind", help="calibration | maintenance"),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Record a calibration (or maintenance) and when the next one is due."""
    actor = operator()
    p = profiles.printer(printer_id)
    row = inventory.record_due(open_db(home()), p.id, kind, inventory.parse_date(due, "--due"), actor)
    if json_out:
        emit_json(row.as_dict())
        return
    typer.echo(f"{p.id}: next {kind} due {row.due_on} (recorded by {actor})")
