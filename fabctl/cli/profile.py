"""`fabctl profile ls | show ID | check`."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from fabctl import profiles
from fabctl.cli.common import emit_json

app = typer.Typer(help="Printer and resin profiles.", no_args_is_help=True)


@app.command("ls")
def ls(json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """List every printer and resin profile."""
    printers, resins = profiles.check_all()
    if json_out:
        emit_json({
            "printers": [{"id": p.id, "name": p.name, "technology": p.technology, "job_format": p.job_format,
                          "transport": p.transport.kind, "simulated": p.simulated,
                          "sha256": profiles.profile_hash(p)} for p in printers],
            "resins": [{"id": r.id, "name": r.name, "clinical_use": r.clinical_use,
                        "release_blockers": r.release_blockers, "sha256": profiles.profile_hash(r)}
                       for r in resins],
        })
        return
    con = Console()
    t = Table(title="printers")
    for col in ("id", "technology", "job file", "transport", "build volume mm", "layers mm"):
        t.add_column(col)
    for p in printers:
        bv = p.build_volume
        t.add_row(p.id + (" (sim)" if p.simulated else ""), p.technology, p.job_format, p.transport.kind,
                  f"{bv.x_mm:g}x{bv.y_mm:g}x{bv.z_mm:g}", ", ".join(f"{h:g}" for h in p.layer_heights_mm))
    con.print(t)
    t = Table(title="resins")
    for col in ("id", "name", "clinical release"):
        t.add_column(col)
    for r in resins:
        status = "allowed" if not r.release_blockers else "blocked: " + "; ".join(r.release_blockers)
        t.add_row(r.id, r.name, status)
    con.print(t)


@app.command("show")
def show(pid: str = typer.Argument(..., metavar="ID"),
         json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """Show one profile (a printer or a resin) with its hash."""
    prof = profiles.find(pid)
    kind = "printer" if isinstance(prof, profiles.PrinterProfile) else "resin"
    doc = {"kind": kind, "sha256": profiles.profile_hash(prof), **prof.model_dump(mode="json")}
    if isinstance(prof, profiles.ResinProfile):
        doc["release_blockers"] = prof.release_blockers
    if json_out:
        emit_json(doc)
        return
    Console().print_json(data=doc)


@app.command("check")
def check(json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """Validate every profile (bounds, units, sources, cross-references). Exit 2 naming file and key."""
    from fabctl import process
    from fabctl.records.retention import load_policy

    printers, resins = profiles.check_all()
    procs = [process.load_process_file(p) for p in sorted(process.process_dir().glob("*.toml"))]
    policy = load_policy()
    if json_out:
        emit_json({"ok": True, "printers": len(printers), "resins": len(resins), "processes": len(procs),
                   "retention_policy": policy.model_dump(mode="json"), "dir": str(profiles.profiles_dir())})
        return
    typer.echo(f"ok: {len(printers)} printer, {len(resins)} resin and {len(procs)} process profiles and the "
               f"retention policy in {profiles.profiles_dir()}")
    for r in resins:
        if r.release_blockers:
            typer.echo(f"note: {r.id}: parts print but cannot be released: {'; '.join(r.release_blockers)}")
