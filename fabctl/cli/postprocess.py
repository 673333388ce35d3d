"""`fabctl postprocess CASE --wash-solvent S --wash-min N --dry-min N --cure-temp-c T --cure-min N
[--cure-unit ID] [--support-removal TEXT] [--json]`: recorded only within the resin's IFU ranges (else exit 3).
"""

from __future__ import annotations

import typer

from fabctl.cli.common import emit_json, home, operator
from fabctl.db import open_db


def postprocess_cmd(
    case_id: str = typer.Argument(..., metavar="CASE"),
    wash_solvent: str = typer.Option(..., "--wash-solvent", help="e.g. ipa (must be the IFU's solvent)."),
    wash_min: float = typer.Option(..., "--wash-min", help="Wash time, minutes."),
    dry_min: float = typer.Option(..., "--dry-min", help="Dry time before cure, minutes."),
    cure_temp_c: float = typer.Option(..., "--cure-temp-c", help="Post-cure temperature, C."),
    cure_min: float = typer.Option(..., "--cure-min", help="Post-cure time, minutes."),
    cure_unit: str | None = typer.Option(None, "--cure-unit", metavar="ID", help="Cure unit asset id."),
    support_removal: str | None = typer.Option(None, "--support-removal", metavar="TEXT",
                                               help="Short note, e.g. 'flush cut; intaglio untouched'."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Record washing, drying, post-cure and support removal of a printed guide."""
    from fabctl.records.postprocess import record_postprocess

    actor = operator()
    out = record_postprocess(open_db(home()), case_id, wash_solvent=wash_solvent, wash_min=wash_min,
                             dry_min=dry_min, cure_temp_c=cure_temp_c, cure_min=cure_min, actor=actor,
                             cure_unit=cure_unit, support_removal=support_removal)
    if json_out:
        emit_json(out)
    else:
        typer.echo(f"{case_id}: post-processing recorded for {', '.join(out['serials'])} within {out['resin_id']} "
                   f"IFU (wash {wash_min:g} min {wash_solvent}, dry {dry_min:g} min, cure {cure_temp_c:g} C "
                   f"{cure_min:g} min)")
