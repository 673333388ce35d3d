"""`fabctl support CASE [--printer ID] [--process ID] [--json] [--render DIR]`: supports, proven clean.

Orients the case first (or reuses the orient artifact), generates support points, heads, pillars, braces
and pad, then runs the independent proof. Only a supported part whose proof holds is stored as an artifact
(``artifacts/support-<key>/``: ``print.stl`` the part united with its supports for slicing, ``supports.stl``,
``support.npz``, ``support.json``). A refusal or a failed proof is recorded in the trace and exits 3.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import typer

from fabctl.cli.common import emit_json, operator
from fabctl.cli.orient import JSON_OPT, PRINTER_OPT, PROCESS_OPT, RENDER_OPT, load_inputs
from fabctl.pipeline.orient_support import support_stage


def support_cmd(
    case: str = typer.Argument(..., metavar="CASE", help="Case id, e.g. case-42."),
    printer: str | None = PRINTER_OPT,
    process: str = PROCESS_OPT,
    json_out: bool = JSON_OPT,
    render: Path | None = RENDER_OPT,
) -> None:
    """Generate supports that never touch the skin-contact surface or the channel, and prove it."""
    actor = operator()
    inp = load_inputs(case, printer, process)
    part, doc, folder, cached = support_stage(inp, actor)
    pictures = []
    if render is not None:
        from fabctl.mesh.render_supports import render_part_png

        z = np.load(folder / "support.npz")
        sp = SimpleNamespace(support_vertices=z["support_vertices"], support_faces=z["support_faces"],
                             support_body=z["support_body"], body_kinds=tuple(z["body_kinds"].tolist()),
                             contacts=z["contacts"])
        title = (f"{case} rev {inp.revision}: {doc['support_points']} supports on {inp.printer.id}, "
                 f"protected contacts {doc['protected_contacts']}, unsupported islands {doc['unsupported_islands']}")
        pictures.append(str(render_part_png(Path(render) / f"{case}-support.png", part, sp, title)))
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    out = {"case": case, "revision": inp.revision, "printer": inp.printer.id, "process": inp.process.id,
           "support_points": doc["support_points"], "protected_contacts": doc["protected_contacts"],
           "unsupported_islands": doc["unsupported_islands"], "kinds": doc["kinds"], "proof": doc["proof"],
           "stats": doc["stats"], "transform": part.transform.tolist(), "cached": cached,
           "artifact": str(folder), "files": files, "print_sha256": doc["print_sha256"], "pictures": pictures}
    if json_out:
        emit_json(out)
        return
    p = doc["proof"]
    typer.echo(f"{case} rev {inp.revision}: {doc['support_points']} supports ({doc['kinds']}) on "
               f"{inp.printer.id}{' (cached)' if cached else ''}")
    typer.echo(f"  proof passed: protected contacts {p['protected_contacts']} (nearest "
               f"{p['min_protected_distance_mm']} mm), part intrusions {p['part_intrusions']}, channel "
               f"intrusions {p['channel_intrusions']}, islands {p['islands']} / unsupported "
               f"{p['unsupported_islands']} over {p['layers']} layers")
    typer.echo(f"  print geometry: {folder / 'print.stl' if 'print.stl' in files else 'separate bodies'}")
    for pic in pictures:
        typer.echo(f"  picture: {pic}")
