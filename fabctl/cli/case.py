"""`fabctl case new | show | ls`: the case store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fabctl import intake
from fabctl.case import CaseStore
from fabctl.cli.common import emit_json, home, operator
from fabctl.db import open_db
from fabctl.trace import log
from fabctl.units import CLI_UNITS

app = typer.Typer(help="Cases: pseudonymous ids, design revisions, plans.", no_args_is_help=True)


def _units(value: str | None) -> str | None:
    if value is not None and value not in CLI_UNITS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(CLI_UNITS)}")
    return value


@app.command("new")
def new(
    case_id: str = typer.Argument(..., metavar="CASE", help="Pseudonymous case id, e.g. case-42."),
    mesh: Path = typer.Option(..., "--mesh", help="Design mesh: STL, 3MF, OBJ, PLY."),
    plan: Path = typer.Option(..., "--plan", help="plan.json for the design."),
    units: str | None = typer.Option(None, "--units", callback=_units,
                                     help="Unit of the mesh file (mm|cm|m|in); 3MF states its own."),
    revise: bool = typer.Option(False, "--revise", help="Register a changed design as a new revision."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Register a design and its plan as a case's next revision."""
    actor = operator()
    db = open_db(home())
    res = intake.register(db, CaseStore(home()), case_id, mesh, plan, units, actor, revise=revise)
    if json_out:
        emit_json({"case": res.case_id, "revision": res.revision, "created": res.created,
                   "unchanged": res.unchanged, "events": res.event_seq})
        return
    if res.unchanged:
        typer.echo(f"{case_id}: unchanged, same design and plan as revision {res.revision}")
    else:
        verb = "created with" if res.created else "registered"
        typer.echo(f"{case_id}: {verb} design revision {res.revision}")


def _rev_doc(r: intake.Revision) -> dict:
    return {
        "revision": r.revision, "origin": r.origin, "design_sha256": r.design_sha256,
        "source_sha256": r.source_sha256, "plan_sha256": r.plan_sha256, "skin_sha256": r.skin_sha256,
        "triangles": r.triangles, "bbox_mm": r.bbox_mm, "units": r.units, "units_source": r.units_source,
        "needs_approval": r.needs_approval, "approved_by": r.approved_by, "printable": r.printable,
        "files_ok": r.files_ok, "registered_utc": r.registered_utc, "actor": r.actor, "notes": r.notes,
    }


@app.command("show")
def show(case_id: str = typer.Argument(..., metavar="CASE"),
         json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """Show a case: its design revisions, hashes and whether the stored files still match the record."""
    db = open_db(home())
    store = CaseStore(home())
    revs = intake.require_case(db, store, case_id)
    evs = log.events(db, case_id)
    doc = {"case": case_id, "current_revision": revs[-1].revision, "revisions": [_rev_doc(r) for r in revs],
           "events": len(evs), "trace_head": evs[-1].hash, "dir": str(store.case_dir(case_id))}
    if json_out:
        emit_json(doc)
        return
    con = Console(width=120)
    con.print(f"[bold]{case_id}[/] · {len(evs)} trace events · head {evs[-1].hash[:16]} · {doc['dir']}")
    for r in revs:
        files = "ok" if r.files_ok else "[red]MODIFIED OR MISSING[/]"
        printable = "yes" if r.printable else "[yellow]no[/] (needs approval)" if r.files_ok else "[red]no[/]"
        con.print(f"  revision {r.revision} ({r.origin}, {r.registered_utc[:19]}Z by {r.actor})")
        con.print(f"    design  {r.design_sha256}  (source {r.source_sha256[:16]})")
        con.print(f"    mesh    {r.triangles} triangles, {' x '.join(f'{x:.1f}' for x in r.bbox_mm)} mm, "
                  f"units {r.units} ({r.units_source})")
        con.print(f"    files   {files} · printable {printable}")
        for note in r.notes:
            con.print(f"    note    {note}")


@app.command("ls")
def ls(json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """List the cases in the store."""
    db = open_db(home())
    store = CaseStore(home())
    rows = []
    for cid in log.cases(db):
        revs = intake.revisions(db, store, cid)
        if revs:
            rows.append({"case": cid, "revision": revs[-1].revision, "design_sha256": revs[-1].design_sha256,
                         "registered_utc": revs[-1].registered_utc})
    if json_out:
        emit_json({"cases": rows})
        return
    if not rows:
        typer.echo("no cases yet; `fabctl case new CASE --mesh PATH --plan PLAN.json` registers one")
        return
    t = Table()
    for col in ("case", "rev", "design sha256", "registered (UTC)"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["case"], str(r["revision"]), r["design_sha256"][:16], r["registered_utc"][:19])
    Console().print(t)
