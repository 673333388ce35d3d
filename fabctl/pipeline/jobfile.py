"""Slicing a placed part and writing the printer's job file (SL1, laser G-code, CLI).

Layer height: allowed by both the printer and the resin's IFU (else ``CheckFailed``). Default 0.05 mm when
both allow it (the guide's channel stair-step stays below 0.03 mm at 30 degrees), otherwise the finest height
both allow: channel fidelity first, speed second. The job file is written by the printer's ``job_format``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fabctl import __version__
from fabctl.errors import CheckFailed
from fabctl.formats import cli_format, gcode, png, preview, sl1
from fabctl.mesh import layercheck
from fabctl.mesh.raster import ScreenMap, check_fits, rasterize_layer
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
              aa: int = 5, binary: bool = False, workers: int | None = None,
              created: datetime | None = None) -> tuple[str, str, float]:
    """Write the printer's job file for ``stack``; returns (sha256, format label, print time s).

    ``created`` is the time the file states (the SL1's ``fileCreationTimestamp`` and zip entry times, the
    CLI's ``$$DATE``; default now). The pipeline passes the design revision's registration time, so a job
    file is a function of its inputs alone and rebuilding it gives the same sha256."""
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
            settings=_sl1_settings(printer, resin, stack, aa), created=created or datetime.now(UTC))

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
    sha = cli_format.write_cli(out, stack, job_name, spot, e.hatch_spacing_mm, binary=binary, date=created)
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
