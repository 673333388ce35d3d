"""`fabctl trace show CASE | verify [--archive FILE] | export CASE -o FILE`: the hash-chained record."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fabctl import intake
from fabctl.case import CaseStore
from fabctl.cli.common import emit_json, home
from fabctl.db import open_db
from fabctl.errors import InputError, TraceIntegrityError
from fabctl.trace import log

app = typer.Typer(help="The per-case, hash-chained trace.", no_args_is_help=True)


@app.command("show")
def show(case_id: str = typer.Argument(..., metavar="CASE"),
         json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """Print a case's events in order."""
    db = open_db(home())
    intake.require_case(db, CaseStore(home()), case_id)
    evs = log.events(db, case_id)
    if json_out:
        emit_json({"case": case_id, "events": [e.as_dict() for e in evs], "head": evs[-1].hash})
        return
    t = Table(title=f"trace of {case_id}", show_lines=False)
    for col in ("#", "at (UTC)", "actor", "type", "payload", "hash"):
        t.add_column(col, overflow="fold")
    for e in evs:
        t.add_row(str(e.case_seq), e.at_utc[:19].replace("T", " "), e.actor, e.type, _summary(e.payload),
                  e.hash[:12])
    Console(width=200).print(t)


def _summary(payload: dict) -> str:
    """A short line per event: scalars first, hashes cut to 12 characters, lists of numbers joined."""
    parts = []
    for k, v in payload.items():
        if isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v):
            v = v[:12]  # a sha256: the full value is in --json
        elif isinstance(v, list) and v and all(isinstance(x, int | float) for x in v):
            v = "x".join(f"{x:g}" for x in v)
        elif isinstance(v, list | dict):
            v = f"[{len(v)}]"
        parts.append(f"{k}={v}")
    text = " ".join(parts)
    return text if len(text) <= 240 else text[:237] + "..."


@app.command("export")
def export(case_id: str = typer.Argument(..., metavar="CASE"),
           out: Path = typer.Option(..., "-o", "--output", metavar="FILE",
                                    help="The archive (zip) to write."),
           json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """Write a self-verifying archive of a case: events, stored files, artifacts, manifest of hashes."""
    from fabctl.trace import archive

    db = open_db(home())
    store = CaseStore(home())
    intake.require_case(db, store, case_id)
    res = archive.export(db, store, case_id, out)
    if json_out:
        emit_json({"case": case_id, "archive": str(res.path), "events": res.events, "head": res.head_hash,
                   "members": res.members, "not_included": res.not_included})
        return
    typer.echo(f"wrote {res.path}: {res.events} events, {len(res.members)} members, head {res.head_hash}")
    for line in res.not_included:
        typer.echo(f"not included: {line}")


def _verify_archive(path: Path, json_out: bool) -> None:
    from fabctl.trace import archive

    if not path.is_file():
        raise InputError(f"archive {path} does not exist or is not a file",
                         hint="pass the file written by `fabctl trace export CASE -o FILE`")
    rep = archive.verify_archive(path)
    if json_out:
        emit_json({"ok": rep.ok, "archive": str(path), "case": rep.case_id, "events": rep.events,
                   "members": rep.members, "head": rep.head_hash, "problems": rep.problems})
    elif rep.ok:
        typer.echo(f"ok: archive of {rep.case_id}: {rep.events} events, hash chain intact, {rep.members} "
                   f"members match the manifest and the trace; head {rep.head_hash}")
    else:
        for line in rep.problems:
            typer.echo(line)
    if not rep.ok:
        raise TraceIntegrityError(
            f"archive {path.name}: {len(rep.problems)} problem(s); first: {rep.problems[0]}",
            hint="do not rely on this archive; export it again from the source database")


@app.command("verify")
def verify(json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
           archive_path: Path | None = typer.Option(
               None, "--archive", metavar="FILE",
               help="Check an exported archive on its own (no database needed).")) -> None:
    """Re-walk every hash chain and check the case store against it. Exit 5 on any break."""
    if archive_path is not None:
        _verify_archive(archive_path, json_out)
        return
    db = open_db(home())
    rep = log.verify(db)
    lines = [p.line() for p in rep.problems] + intake.store_problems(db, CaseStore(home()))
    if json_out:
        emit_json({"ok": not lines, "cases": rep.cases, "events": rep.events, "problems": lines})
    elif not lines:
        typer.echo(f"ok: {rep.events} events in {rep.cases} case(s), every hash chain intact, "
                   "stored files match the trace")
    else:
        for line in lines:
            typer.echo(line)
    if lines:
        raise TraceIntegrityError(f"trace integrity: {len(lines)} problem(s); first: {lines[0]}",
                                  hint="do not release any guide from an affected case; report to QA")
