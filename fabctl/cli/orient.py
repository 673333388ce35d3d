"""`fabctl orient CASE [--printer ID] [--process ID] [--json] [--render DIR]`: choose the print orientation.

Reads the case's latest design revision (design.stl, plan.json, skin.stl), finds the protected faces, runs
the deterministic optimiser and stores the result as an artifact keyed by the sha256 of its inputs
(``$FABCTL_HOME/cases/<case>/artifacts/orient-<key>/``): the same design, plan, skin, process profile,
printer build volume and fabctl version reuse it. Every run records ``orient.recorded`` (or
``orient.refused``) in the case's trace. The stage logic lives in ``fabctl.pipeline.orient_support`` (shared with ``fabctl support``
and ``fabctl print``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from fabctl.cli.common import emit_json, home, operator
from fabctl.pipeline import inputs
from fabctl.pipeline.inputs import CaseInputs
from fabctl.pipeline.orient_support import orient_stage
from fabctl.process import DEFAULT_PROCESS

PRINTER_OPT = typer.Option(None, "--printer", help="Printer profile id (default: the embedded default).")
PROCESS_OPT = typer.Option(DEFAULT_PROCESS, "--process", help="Process profile id (profiles/process/).")
JSON_OPT = typer.Option(False, "--json", help="One JSON document on stdout.")
RENDER_OPT = typer.Option(None, "--render", help="Write pictures (PNG) into this folder.")


def load_inputs(case: str, printer_id: str | None, process_id: str) -> CaseInputs:
    """The latest design revision of ``case`` in ``$FABCTL_HOME`` (``fabctl.pipeline.inputs.load_inputs``)."""
    return inputs.load_inputs(home(), case, printer_id, process_id)


def orient_cmd(
    case: str = typer.Argument(..., metavar="CASE", help="Case id, e.g. case-42."),
    printer: str | None = PRINTER_OPT,
    process: str = PROCESS_OPT,
    json_out: bool = JSON_OPT,
    render: Path | None = RENDER_OPT,
) -> None:
    """Choose the print orientation: protected surfaces never need support; fits the build volume."""
    actor = operator()
    inp = load_inputs(case, printer, process)
    part, doc, _, had, folder = orient_stage(inp, actor)
    pictures = []
    if render is not None:
        from fabctl.mesh.render_supports import render_part_png

        pictures.append(str(render_part_png(Path(render) / f"{case}-orient.png", part, None,
                                            f"{case} rev {inp.revision}: orientation on {inp.printer.id}")))
    out = {"case": case, "revision": inp.revision, "printer": inp.printer.id, "process": inp.process.id,
           "cached": had, "artifact": str(folder), **{k: doc[k] for k in (
               "transform", "up_design", "scores", "protected", "candidates_evaluated", "feasible_candidates")},
           "pictures": pictures}
    if json_out:
        emit_json(out)
        return
    s = doc["scores"]
    typer.echo(f"{case} rev {inp.revision}: up = {np.round(doc['up_design'], 4).tolist()} (design frame), "
               f"yaw {s['yaw_deg']:g} deg on {inp.printer.id}{' (cached)' if had else ''}")
    for k in ("supported_area_mm2", "support_count_est", "peak_layer_area_mm2", "print_height_mm",
              "channel_angle_deg", "bore_span_mm", "region_overhang_mm2", "protected_overhang_mm2",
              "protected_minima"):
        typer.echo(f"  {k:>24}: {s[k]}")
    typer.echo(f"  {'score':>24}: {s['total']}  ({', '.join(f'{k} {v:.4f}' for k, v in s['weighted'].items())})")
    for p in pictures:
        typer.echo(f"  picture: {p}")
