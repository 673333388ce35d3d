"""`fabctl sterilize load new | add | result | release | show`: sterilization loads linked to their guides.

`load release LOAD --by ID` needs a qa user who re-enters the credential (prompted or FABCTL_CREDENTIAL).
"""

from __future__ import annotations

import typer

from fabctl.cli.common import emit_json, home, operator
from fabctl.cli.user import credential
from fabctl.db import open_db

app = typer.Typer(help="Sterilization loads: create, fill, record results, release, show.", no_args_is_help=True)
load_app = typer.Typer(help="One sterilization load (lot control number).", no_args_is_help=True)
app.add_typer(load_app, name="load")


def _out(load, json_out: bool, line: str) -> None:
    if json_out:
        emit_json(load.as_dict())
    else:
        typer.echo(line)


@load_app.command("new")
def new_cmd(
    load_id: str = typer.Argument(..., metavar="LOAD"),
    method: str = typer.Option(..., "--method", help="steam (gravity), steam-prevac, h2o2, eto."),
    temp_c: float = typer.Option(..., "--temp-c", help="Actual sterilization temperature, C."),
    hold_min: float = typer.Option(..., "--hold-min", help="Actual hold time, minutes."),
    sterilizer: str = typer.Option(..., "--sterilizer", metavar="ID", help="Sterilizer asset id."),
    cycle: int = typer.Option(..., "--cycle", help="The sterilizer's cycle counter."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Create an open load."""
    from fabctl.records import sterilize

    load = sterilize.new_load(open_db(home()), load_id, method, temp_c, hold_min, sterilizer, cycle, operator())
    _out(load, json_out, f"load {load.load_id}: {load.method} {load.temp_c:g} C {load.hold_min:g} min, "
                         f"sterilizer {load.sterilizer_id} cycle {load.cycle_no}: open")


@load_app.command("add")
def add_cmd(
    load_id: str = typer.Argument(..., metavar="LOAD"),
    cases: list[str] = typer.Argument(..., metavar="CASE..."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Add the guides of one or more cases to an open load (all or none)."""
    from fabctl.records import sterilize

    load = sterilize.add_cases(open_db(home()), load_id, cases, operator())
    _out(load, json_out, f"load {load.load_id}: " + ", ".join(f"{c} {s}" for c, s in load.contents))


@load_app.command("result")
def result_cmd(
    load_id: str = typer.Argument(..., metavar="LOAD"),
    ci: str = typer.Option(..., "--ci", help="Chemical indicator: pass or fail."),
    bi: str = typer.Option(..., "--bi", help="Biological indicator: negative, positive or pending."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Record the load's indicators; CI fail or BI positive quarantines every guide in it (exit 3)."""
    from fabctl.records import sterilize

    load, _ = sterilize.record_result(open_db(home()), load_id, ci, bi, operator())
    _out(load, json_out, f"load {load.load_id}: CI {load.ci}, BI {load.bi}: {load.status}")


@load_app.command("release")
def release_cmd(
    load_id: str = typer.Argument(..., metavar="LOAD"),
    by: str = typer.Option(..., "--by", metavar="ID", help="The qa user who releases the load."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Release a processed load (CI pass, BI negative) with a signed approval."""
    from fabctl.records import sterilize

    load = sterilize.release_load(open_db(home()), load_id, by,
                                  lambda: credential("FABCTL_CREDENTIAL", f"credential of {by} (signing)"),
                                  operator())
    _out(load, json_out, f"load {load.load_id}: released by {load.released_by} at {load.released_utc}")


@load_app.command("show")
def show_cmd(
    load_id: str = typer.Argument(..., metavar="LOAD"),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Show a load: parameters, indicators, release, and every case and serial in it."""
    from fabctl.records import sterilize

    load = sterilize.show_load(open_db(home()), load_id)
    if json_out:
        emit_json(load.as_dict())
        return
    typer.echo(f"load {load.load_id}: {load.status}")
    typer.echo(f"  cycle     {load.method} {load.temp_c:g} C {load.hold_min:g} min, sterilizer "
               f"{load.sterilizer_id} cycle {load.cycle_no}")
    typer.echo(f"  created   {load.created_utc} by {load.created_by}")
    typer.echo(f"  result    CI {load.ci or '-'}, BI {load.bi or '-'} ({load.result_utc or 'not recorded'})")
    typer.echo(f"  released  {load.released_utc or '-'} by {load.released_by or '-'}")
    for c, s in load.contents:
        typer.echo(f"  contains  {c} {s}")
