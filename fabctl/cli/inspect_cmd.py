"""`fabctl inspect CASE --visual pass|fail --needle-go pass|fail --fit pass|fail [--channel-mm X] [--ncr REF]`.

Refused until the guide's sterilization load has its results (the needle check follows the last heat step);
a failed check is recorded and exits 3.
"""

from __future__ import annotations

import typer

from fabctl.case import CaseStore
from fabctl.cli.common import emit_json, home, operator
from fabctl.db import open_db


def inspect_cmd(
    case_id: str = typer.Argument(..., metavar="CASE"),
    visual: str = typer.Option(..., "--visual", help="pass or fail: cracks, residue, support nubs."),
    needle_go: str = typer.Option(..., "--needle-go", help="pass or fail: the needle go/no-go pin."),
    fit: str = typer.Option(..., "--fit", help="pass or fail: fit on the printed anatomy."),
    channel_mm: float | None = typer.Option(None, "--channel-mm", help="Measured channel bore, mm."),
    ncr: str | None = typer.Option(None, "--ncr", metavar="REF", help="Nonconformance report reference."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Record the inspection of a sterilized guide."""
    from fabctl.records.inspect import record_inspection

    actor = operator()
    out = record_inspection(open_db(home()), CaseStore(home()), case_id, visual=visual, needle_go=needle_go,
                            fit=fit, actor=actor, channel_mm=channel_mm, ncr_ref=ncr)
    if json_out:
        emit_json(out)
    else:
        typer.echo(f"{case_id}: inspection passed for {', '.join(out['serials'])} after load {out['load_id']} "
                   f"(channel limit {out['channel_min_mm']:g} mm)")
