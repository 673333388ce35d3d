"""`fabctl slice (CASE | --mesh PATH) ...`: cross-sections, layer checks and the printer's job file.

Decisions (documented in the issue note):

* A CASE is refused (exit 3) without ``--as-is`` until the orient and support stages exist: a guide printed
  without supports in its design pose is not a print we stand behind. ``--as-is`` slices the design in its
  given orientation, no supports, for inspection and comparison, and says so in the output and the trace.
* Placement (as-is): no rotation; the bounding box's x/y centre goes to the build area's centre and the
  lowest point onto the platform (``z = 0``). The translation is reported and traced.
* Layer height: ``--layer-height`` must be allowed by both the printer and the resin's IFU (else exit 3).
  Default: 0.05 mm when both allow it (the guide's channel stair-step stays below 0.03 mm at 30 degrees),
  otherwise the finest height both allow: channel fidelity first, speed second.
* The job file is written by the printer's ``job_format``: SL1 (LCD/DLP), laser G-code, or CLI
  (``--binary`` for binary CLI).

The layer-height choice, placement and job building live in ``fabctl.pipeline.jobfile`` (shared with
``fabctl print``).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from fabctl import __version__, profiles
from fabctl.cli.common import emit_json, home, operator
from fabctl.errors import CheckFailed, InputError
from fabctl.mesh import layercheck
from fabctl.mesh.slice import slice_mesh
from fabctl.pipeline.jobfile import (  # noqa: F401  (build_job, placement_as_is: imported by tests)
    EXT,
    PREFERRED_LAYER_MM,
    SliceResult,
    build_job,
    channel_points,
    choose_layer_height,
    placement_as_is,
    write_preview,
)


def _load(case_id: str | None, mesh: Path | None, units: str | None, plan_path: Path | None):
    """(MeshInput, plan or None, revision or None, job stem) for a CASE or a --mesh."""
    from fabctl.mesh.io import read_mesh
    from fabctl.plan import load_plan

    if (case_id is None) == (mesh is None):
        raise InputError("give either a CASE or --mesh PATH (not both)", hint="fabctl slice --help")
    if mesh is not None:
        plan = load_plan(plan_path) if plan_path else None
        return read_mesh(mesh, units), plan, None, Path(mesh).name.split(".")[0]
    from fabctl import intake
    from fabctl.case import DESIGN_FILE, PLAN_FILE, CaseStore
    from fabctl.db import open_db

    store = CaseStore(home())
    rev = intake.require_case(open_db(home()), store, case_id)[-1]
    if not rev.printable:
        raise CheckFailed(f"case {case_id} revision {rev.revision} is not printable (files changed or design "
                          "awaiting approval)", hint="`fabctl case show` tells which")
    d = store.rev_dir(case_id, rev.revision)
    return read_mesh(d / DESIGN_FILE, "mm"), load_plan(d / PLAN_FILE), rev, case_id


def slice_cmd(
    case_id: str | None = typer.Argument(None, metavar="[CASE]", help="Case id (its latest design revision)."),
    mesh: Path | None = typer.Option(None, "--mesh", help="Slice a mesh file instead of a case."),
    units: str | None = typer.Option(None, "--units", help="Unit of --mesh (mm|cm|m|in)."),
    plan_path: Path | None = typer.Option(None, "--plan", help="plan.json for --mesh (marks the channel)."),
    printer_id: str = typer.Option(profiles.DEFAULT_PRINTER, "--printer", help="Printer profile id."),
    resin_id: str = typer.Option(profiles.DEFAULT_RESIN, "--resin", help="Resin profile id."),
    layer_height: float | None = typer.Option(None, "--layer-height", help="Layer height, mm."),
    as_is: bool = typer.Option(False, "--as-is", help="Given position, no supports (inspection only)."),
    out: Path | None = typer.Option(None, "-o", "--output", help="Job file to write."),
    preview_path: Path | None = typer.Option(None, "--preview", help="Also write a contact-sheet PNG."),
    binary: bool = typer.Option(False, "--binary", help="Binary CLI (CLI printers only)."),
    aa: int = typer.Option(5, "--aa", min=1, max=16, help="SL1 anti-aliasing sub-rows (1 = binary; odd counts never round a half-covered pixel up)."),
    lot: str | None = typer.Option(None, "--lot", help="Resin lot (a CASE without --as-is: the print's gates)."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Slice a case's design or a mesh into the printer's job file (SL1, laser G-code or CLI)."""
    t0 = time.perf_counter()
    actor = operator() if case_id is not None else None
    if case_id is not None and not as_is:
        if layer_height is not None or binary or aa != 5 or preview_path is not None:
            raise InputError("--layer-height, --binary, --aa and --preview go with --as-is or --mesh; a case is "
                             "sliced for printing with the print's own settings",
                             hint="the print's layer preview is in the job artifact (see --json)")
        _slice_for_print(case_id, printer_id, resin_id, lot, out, json_out, actor)
        return
    printer, resin = profiles.printer(printer_id), profiles.resin(resin_id)
    if printer.technology not in resin.compatible_technologies:
        raise CheckFailed(f"resin {resin.id} is not for {printer.technology} printers ({printer.id})")
    lh = choose_layer_height(printer, resin, layer_height)
    m, plan, rev, stem = _load(case_id, mesh, units, plan_path)
    out = out or Path(stem + EXT[printer.job_format])
    place = placement_as_is(m.vertices, printer)
    t1 = time.perf_counter()
    stack = slice_mesh(m.vertices, m.faces, lh, placement_mm=place, source_sha256=m.source_sha256)
    t2 = time.perf_counter()
    report = layercheck.check_layers(stack)
    t3 = time.perf_counter()
    job_name = case_id or ("mesh-" + m.source_sha256[:12])
    sha, fmt, t_print = build_job(stack, printer, resin, out, job_name, aa=aa, binary=binary)
    t4 = time.perf_counter()
    if preview_path is not None:
        write_preview(preview_path, stack, printer, plan)
    if rev is not None:
        _record(case_id, rev, stack, report, printer, resin, sha, fmt, t_print, actor)
    doc = _doc(stack, report, printer, resin, out, sha, fmt, t_print, case_id, rev)
    doc["timings_s"] = {"load": round(t1 - t0, 3), "slice": round(t2 - t1, 3), "checks": round(t3 - t2, 3),
                        "job": round(t4 - t3, 3), "total": round(time.perf_counter() - t0, 3)}
    if json_out:
        emit_json(doc)
        return
    typer.echo(f"{out}: {fmt}, {stack.n_layers} layers x {lh:g} mm, {doc['volume_ml']:.2f} ml, "
               f"~{t_print / 60:.0f} min; sha256 {sha}")
    c = report.counts
    typer.echo(f"checks: {c['islands']} islands, {c['resin_traps']} resin traps, {c['suction_cups']} suction cups")
    typer.echo("AS-IS: given pose, no supports: for inspection, not for a patient's guide", err=True)


def _slice_for_print(case_id: str, printer_id: str, resin_id: str, lot: str | None, out: Path | None,
                     json_out: bool, actor: str) -> None:
    """A case sliced for printing: the print's gates and stages up to the job file (cached), nothing sent."""
    import shutil

    from fabctl.db import open_db
    from fabctl.pipeline import prepare

    prep = prepare(open_db(home()), case_id, printer_id, resin_id, lot, actor, home=home())
    if out is not None:
        shutil.copyfile(prep.job_file, out)
    doc = {"ok": True, "case": case_id, "revision": prep.revision, "as_is": False,
           "job": {"path": str(out or prep.job_file), "artifact": str(prep.job_file), "sha256": prep.job_sha256,
                   "format": prep.job_format}, "layers": prep.layers, "printer": prep.printer_id,
           "resin": prep.resin_id, "lot": prep.lot, "stages": [st.as_dict() for st in prep.stages],
           "pictures": prep.pictures}
    if json_out:
        emit_json(doc)
        return
    typer.echo(f"{out or prep.job_file}: {prep.job_format}, {prep.layers} layers, supported and oriented for "
               f"{prep.printer_id}; sha256 {prep.job_sha256}")
    typer.echo("stages: " + ", ".join(f"{st.name} {st.seconds:.1f} s{' (cached)' if st.cached else ''}"
                                      for st in prep.stages))


def _doc(stack, report, printer, resin, out, sha, fmt, t_print, case_id, rev) -> dict:
    return {
        "ok": True, "case": case_id, "revision": rev.revision if rev else None, "as_is": True,
        "job": {"path": str(out), "sha256": sha, "format": fmt, "bytes": Path(out).stat().st_size},
        "printer": printer.id, "printer_profile_sha256": profiles.profile_hash(printer),
        "resin": resin.id, "resin_profile_sha256": profiles.profile_hash(resin),
        "layers": stack.n_layers, "layer_height_mm": stack.layer_height_mm,
        "first_layer_height_mm": stack.first_layer_height_mm,
        "placement_mm": [round(float(x), 6) for x in stack.placement_mm],
        "volume_ml": round(layercheck.resin_ml(stack), 4), "print_time_s": round(t_print, 1),
        "open_chains": stack.open_chains, "checks": report.counts,
        "findings": [f.as_dict() for f in report.islands + report.resin_traps + report.suction_cups][:100],
    }


def _record(case_id, rev, stack, report, printer, resin, sha, fmt, t_print, actor) -> None:
    from fabctl.db import open_db
    from fabctl.trace import log
    from fabctl.trace.slice_events import SliceRecorded

    c = report.counts
    ev = SliceRecorded(
        revision=rev.revision, design_sha256=rev.design_sha256, job_sha256=sha, job_format=fmt,
        printer_id=printer.id, printer_profile_sha256=profiles.profile_hash(printer), resin_id=resin.id,
        resin_profile_sha256=profiles.profile_hash(resin), as_is=True, layer_count=stack.n_layers,
        layer_height_mm=stack.layer_height_mm, first_layer_height_mm=stack.first_layer_height_mm,
        placement_mm=[float(x) for x in stack.placement_mm], volume_ml=layercheck.resin_ml(stack),
        print_time_s=t_print, islands=c["islands"], resin_traps=c["resin_traps"],
        suction_cups=c["suction_cups"], open_chains=stack.open_chains, fabctl_version=__version__)
    log.record(open_db(home()), case_id, ev, actor)
