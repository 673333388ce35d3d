"""`fabctl resin lot add RESIN LOT --expires DATE`, `fabctl resin lot ls [--json]`: resin lots and expiry.

A lot is usable up to and including its expiry date (UTC); `fabctl print --lot LOT` refuses (exit 3) a lot
that is not registered for the resin or that has expired.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from fabctl import inventory, profiles
from fabctl.cli.common import emit_json, home, operator
from fabctl.db import open_db

app = typer.Typer(help="Resins and their lots.", no_args_is_help=True)
lot_app = typer.Typer(help="Resin lots: registered with their expiry date.", no_args_is_help=True)
app.add_typer(lot_app, name="lot")


@lot_app.command("add")
def lot_add(
    resin_id: str = typer.Argument(..., metavar="RESIN", help="Resin profile id, e.g. formlabs-sg-v1."),
    lot: str = typer.Argument(..., metavar="LOT", help="The lot number on the bottle."),
    expires: str = typer.Option(..., "--expires", metavar="DATE", help="Expiry date, YYYY-MM-DD."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Register a resin lot and its expiry date."""
    actor = operator()
    profiles.resin(resin_id)  # an unknown resin is refused (exit 2)
    when = inventory.parse_date(expires, "--expires")
    row = inventory.add_lot(open_db(home()), resin_id, lot, when, actor)
    expired = when < inventory.today_utc()
    if json_out:
        emit_json({**row.as_dict(), "expired": expired})
        return
    typer.echo(f"resin {resin_id} lot {lot}: expires {row.expires_on}{' (already expired)' if expired else ''}")


@lot_app.command("ls")
def lot_ls(
    resin_id: str | None = typer.Option(None, "--resin", help="Only this resin's lots."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """List registered resin lots and whether each has expired."""
    today = inventory.today_utc()
    lots = inventory.list_lots(open_db(home()), resin_id)
    rows = [{**x.as_dict(), "expired": inventory.parse_date(x.expires_on, "expiry") < today} for x in lots]
    if json_out:
        emit_json({"today_utc": today.isoformat(), "lots": rows})
        return
    t = Table(title=f"resin lots (today {today.isoformat()} UTC)")
    for col in ("resin", "lot", "expires", "status", "added by"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["resin_id"], r["lot"], r["expires_on"], "[red]expired[/]" if r["expired"] else "ok",
                  r["added_by"])
    Console(width=140).print(t)
