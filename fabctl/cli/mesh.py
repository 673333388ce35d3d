"""`fabctl mesh info PATH`: what intake reads from a design file, without registering it."""

from __future__ import annotations

from pathlib import Path

import typer

from fabctl.cli.common import emit_json
from fabctl.errors import UnitsError
from fabctl.mesh.io import read_mesh
from fabctl.units import CLI_UNITS, check_guide_extent

app = typer.Typer(help="Inspect mesh files.", no_args_is_help=True)


@app.command("info")
def info(
    path: Path = typer.Argument(..., help="STL, 3MF, OBJ, PLY or OFF file."),
    units: str | None = typer.Option(None, "--units", help=f"Unit of the file ({'|'.join(CLI_UNITS)})."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Read a mesh as intake would (same parsing, same errors) and summarise it.

    Unlike intake, a size implausible for a guide is reported (``plausible_size``), not refused, so any part
    can be inspected.
    """
    m = read_mesh(path, units, check_extent=False)
    try:
        check_guide_extent(float(m.extents_mm.max()), m.units)
        size_note = None
    except UnitsError as err:
        size_note = f"{err.message}; {err.hint}"
    doc = {
        "format": m.source_format, "sha256": m.source_sha256, "units": m.units, "units_source": m.units_source,
        "triangles": int(len(m.faces)), "vertices": int(len(m.vertices)),
        "bbox_mm": [round(float(x), 4) for x in m.extents_mm], "notes": list(m.notes),
        "plausible_size": size_note is None, "size_note": size_note,
    }
    if json_out:
        emit_json(doc)
        return
    for k, v in doc.items():
        typer.echo(f"{k:>12}: {v}")
