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

The job building below imports both ``fabctl.mesh`` and ``fabctl.formats``, so it lives above them; it moves
to ``fabctl.pipeline`` when that exists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import typer

from fabctl import __version__, profiles
from fabctl.cli.common import emit_json, home, operator
from fabctl.errors import CheckFailed, InputError
from fabctl.formats import cli_format, gcode, png, preview, sl1
from fabctl.mesh import layercheck
from fabctl.mesh.raster import ScreenMap, check_fits, rasterize_layer
from fabctl.mesh.slice import slice_mesh
from fabctl.profiles import PrinterProfile, ResinProfile
from fabctl.slicestack import SliceStack

PREFERRED_LAYER_MM = 0.05
EXT = {"sl1": ".sl1", "gcode": ".gcode", "cli": ".cli"}


@dataclass
class SliceResult:
    stack: SliceStack
    report: layercheck.LayerReport
    job_path: Path
    job_sha256: str
    job_format: str
    print_time_s: float
    timings: dict[str, float] = field(default_factory=dict)


def choose_layer_height(printer: PrinterProfile, resin: ResinProfile, wanted: float | None) -> float:
    """The layer height to slice at (module docs); ``CheckFailed`` for one the printer or resin refuses."""
    p_ok = {round(h, 6) for h in printer.layer_heights_mm}
    r_ok = {round(h, 6) for h in resin.ifu.layer_heights_mm.value}
    both = sorted(p_ok & r_ok)
    if wanted is not None:
        w = round(wanted, 6)
        if w not in r_ok:
            raise CheckFailed(f"layer height {wanted:g} mm is not allowed by resin {resin.id} "
                              f"(IFU allows {', '.join(f'{h:g}' for h in sorted(r_ok))} mm)")
        if w not in p_ok:
            raise CheckFailed(f"layer height {wanted:g} mm is not offered by printer {printer.id} "
                              f"({', '.join(f'{h:g}' for h in sorted(p_ok))} mm)")
        return w
    if not both:
        raise CheckFailed(f"printer {printer.id} and resin {resin.id} share no layer height")
    return PREFERRED_LAYER_MM if PREFERRED_LAYER_MM in both else both[0]


def placement_as_is(vertices: np.ndarray, printer: PrinterProfile) -> np.ndarray:
    """(3,) translation: bounding-box x/y centre to the build area's centre, lowest point to z = 0."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    bv = printer.build_volume
    size = hi - lo
    if size[0] > bv.x_mm or size[1] > bv.y_mm or size[2] > bv.z_mm:
        raise CheckFailed(f"part {size[0]:.1f} x {size[1]:.1f} x {size[2]:.1f} mm does not fit printer "
                          f"{printer.id}'s build volume {bv.x_mm:g} x {bv.y_mm:g} x {bv.z_mm:g} mm")
    centre = np.array([bv.x_mm / 2.0, bv.y_mm / 2.0])
    return np.array([*(centre - (lo[:2] + hi[:2]) / 2.0), -lo[2]])


def _model_name(printer: PrinterProfile) -> str:
    pid = printer.id.lower()
    return "SL1S" if "sl1s" in pid else ("SL1" if "sl1" in pid else printer.id)


def _sl1_settings(printer: PrinterProfile, resin: ResinProfile, stack: SliceStack, aa: int) -> dict[str, str]:
    r = printer.raster
    assert r is not None
    long_x = r.orientation == "portrait"          # PrusaSlicer's display_* are the landscape panel's axes
    px, py = (r.resolution_y_px, r.resolution_x_px) if long_x else (r.resolution_x_px, r.resolution_y_px)
    wx, wy = (r.resolution_y_px * r.pixel_y_mm, r.resolution_x_px * r.pixel_x_mm) if long_x else \
        (r.resolution_x_px * r.pixel_x_mm, r.resolution_y_px * r.pixel_y_mm)
    e = resin.exposure
    return {
        "printer_technology": "SLA", "printer_model": _model_name(printer), "printer_settings_id": printer.id,
        "sla_material_settings_id": resin.id, "sla_print_settings_id": f"fabctl {stack.layer_height_mm:g}",
        "display_pixels_x": str(px), "display_pixels_y": str(py), "display_width": f"{wx:g}",
        "display_height": f"{wy:g}", "display_orientation": r.orientation,
        "display_mirror_x": str(int(r.mirror_x)), "display_mirror_y": str(int(r.mirror_y)),
        "layer_height": f"{stack.layer_height_mm:g}", "initial_layer_height": f"{stack.first_layer_height_mm:g}",
        "exposure_time": f"{e.exposure_s:g}", "initial_exposure_time": f"{e.first_exposure_s:g}",
        "faded_layers": str(e.faded_layers), "gamma_correction": "1" if aa > 1 else "0",
        "supports_enable": "0", "pad_enable": "0", "max_print_height": f"{printer.build_volume.z_mm:g}",
    }


def _thumbnails(stack: SliceStack) -> dict[tuple[int, int], bytes]:
    """400x400 and 800x480 RGBA top views (hill-shaded height of the top layer seen from above)."""
    (x0, y0), (x1, y1) = stack.bounds_xy_mm
    cell = max(x1 - x0, y1 - y0, 1e-3) / 200.0
    screen = ScreenMap(int((x1 - x0) / cell) + 3, int((y1 - y0) / cell) + 3, cell, cell)
    shift = np.array([x0 - cell, y0 - cell])
    height = np.full((screen.height_px, screen.width_px), -1.0)
    step = max(1, stack.n_layers // 120)
    for i in range(0, stack.n_layers, step):
        a, b = stack.layer_edges(i)
        if not len(a):
            continue
        from fabctl.mesh.raster import rasterize_edges
        t = rasterize_edges(screen.to_image(a - shift), screen.to_image(b - shift), 1, "nonzero",
                            (screen.height_px, screen.width_px))
        h, w = t.pixels.shape
        view = height[t.row0:t.row0 + h, t.col0:t.col0 + w]
        view[t.pixels > 0] = i
    return {size: png.encode(preview.height_thumbnail(height, size)) for size in ((400, 400), (800, 480))}


def build_job(stack: SliceStack, printer: PrinterProfile, resin: ResinProfile, out: Path, job_name: str,
              aa: int = 4, binary: bool = False, workers: int | None = None) -> tuple[str, str, float]:
    """Write the printer's job file for ``stack``; returns (sha256, format label, print time s)."""
    e = resin.exposure
    if printer.job_format == "sl1":
        screen = ScreenMap.from_raster(printer.raster)
        check_fits(stack, screen)
        t, n_fast, n_slow = layercheck.lcd_time_s(stack, e.exposure_s, e.first_exposure_s, e.faded_layers,
                                                  screen.size_mm[0] * screen.size_mm[1])
        job = sl1.Sl1Job(
            job_dir=sl1.job_dir_for(out), width_px=screen.width_px, height_px=screen.height_px,
            exposure_s=e.exposure_s, first_exposure_s=e.first_exposure_s, faded_layers=e.faded_layers,
            layer_height_mm=stack.layer_height_mm, num_fast=n_fast, num_slow=n_slow, print_time_s=t,
            used_material_ml=layercheck.resin_ml(stack), material_name=resin.id,
            printer_model=_model_name(printer), printer_profile=printer.id,
            print_profile=f"fabctl {stack.layer_height_mm:g}", software=f"fabctl-{__version__}",
            settings=_sl1_settings(printer, resin, stack, aa))

        def render(i: int) -> tuple[int, int, np.ndarray]:
            tile = rasterize_layer(stack, i, screen, aa=aa)
            return tile.row0, tile.col0, tile.pixels

        return sl1.write_sl1(out, job, stack.n_layers, render, _thumbnails(stack), workers), "sl1", t
    assert printer.laser is not None
    power = min(e.laser_power_mw, printer.laser.max_power_mw)
    speed = min(e.laser_speed_mm_s, printer.laser.max_scan_speed_mm_s)
    t = layercheck.laser_time_s(stack, speed, e.hatch_spacing_mm)
    spot = printer.laser.spot_diameter_mm
    if printer.job_format == "gcode":
        job = gcode.LaserJob(job_name, printer.id, resin.id, power, speed, spot, e.hatch_spacing_mm,
                             first_speed_factor=min(1.0, e.exposure_s / e.first_exposure_s))
        return gcode.write_gcode(out, stack, job), "gcode", t
    sha = cli_format.write_cli(out, stack, job_name, spot, e.hatch_spacing_mm, binary=binary)
    return sha, "cli-binary" if binary else "cli", t


def channel_points(plan_entry: np.ndarray, plan_dir: np.ndarray, placement: np.ndarray,
                   z: np.ndarray) -> np.ndarray:
    """(n, 2) platform x/y where the planned channel axis crosses each plane z (n,); NaN when parallel."""
    e = np.asarray(plan_entry, dtype=np.float64) + placement
    d = np.asarray(plan_dir, dtype=np.float64)
    if abs(d[2]) < 1e-9:
        return np.full((len(z), 2), np.nan)
    t = (z - e[2]) / d[2]
    return e[:2] + t[:, None] * d[:2]


def write_preview(path: Path, stack: SliceStack, printer: PrinterProfile, plan=None) -> None:
    """Contact sheet of 12 layers, cropped to the part, with the planned channel's crossing marked."""
    pix = printer.raster.pixel_x_mm if printer.raster else 0.05
    (x0, y0), (x1, y1) = stack.bounds_xy_mm
    pad = 2.0
    screen = ScreenMap(int((x1 - x0 + 2 * pad) / pix) + 1, int((y1 - y0 + 2 * pad) / pix) + 1, pix, pix)
    shift = np.array([x0 - pad, y0 - pad])
    layers = preview.pick_layers(stack.n_layers)
    cross = (channel_points(np.array(plan.entry_point_mm), np.array(plan.direction), stack.placement_mm,
                            stack.z_mm[layers]) if plan is not None else None)
    from fabctl.mesh.raster import full_image, rasterize_edges
    masks, marks, titles = [], [], []
    for k, i in enumerate(layers):
        a, b = stack.layer_edges(i)
        tile = rasterize_edges(screen.to_image(a - shift), screen.to_image(b - shift), 4, "nonzero",
                               (screen.height_px, screen.width_px))
        masks.append(full_image(tile, (screen.height_px, screen.width_px)))
        titles.append(f"layer {i}  z {stack.z_mm[i]:.2f} mm")
        mark = None
        if cross is not None and np.all(np.isfinite(cross[k])):
            mark = tuple(screen.to_image((cross[k] - shift)[None])[0])
        marks.append(mark)
    radius = (plan.channel_diameter_mm / 2.0 / pix) if plan is not None else 0.0
    Path(path).write_bytes(png.encode(preview.contact_sheet(masks, titles, marks, radius)))


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
    aa: int = typer.Option(4, "--aa", min=1, max=16, help="SL1 anti-aliasing sub-rows (1 = binary)."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Slice a case's design or a mesh into the printer's job file (SL1, laser G-code or CLI)."""
    t0 = time.perf_counter()
    actor = operator() if case_id is not None else None
    if case_id is not None and not as_is:
        raise CheckFailed("orient/support stages not available; a case cannot be sliced for printing yet",
                          hint="use --as-is to slice the design in its given pose, without supports, for inspection")
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
