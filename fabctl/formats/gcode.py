"""Laser G-code for Moai-class laser SLA printers (galvo laser, Marlin-style G-code): writer and reader.

Dialect (what the mock printer in hardware/ and the reader here agree on):

* header comments only: ``;FABCTL laser-gcode 1``, ``;JOB:<name>`` (a case id at most: no patient data),
  printer and resin ids, layer count and height, power, speed, spot, hatch spacing; then ``G21`` (mm),
  ``G90`` (absolute), ``M5`` (beam off);
* per layer ``;LAYER:<n>`` and ``;Z:<mm>``; the platform moves to the layer (``G1 Z.. F..``); ``M3 S<mW>``
  sets the beam power; ``;TYPE:CONTOUR`` then for each loop a ``G0`` jump (beam off) to its first point and
  ``G1`` marks (beam on) around it, closed (the layer's first ``G0`` carries the scan feed, so the jump does
  not inherit the platform's Z feed); ``;TYPE:HATCH`` then ``G0`` / ``G1`` pairs; ``M5``; the peel:
  ``G1 Z<z + peel> F..`` and back down to the next layer;
* ``F`` on marks is the scan speed in mm/min; layer 0 is scanned slower by ``exposure_s /
  first_exposure_s`` (more energy per area, as the first exposure is longer on LCD printers);
* ``;END`` closes the file.

Contours are the slice loops offset into the solid by half the laser spot; hatch lines fill inside them at
the resin's hatch spacing, the angle alternating 0/90 degrees per layer (``laserpath``).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fabctl.errors import InputError
from fabctl.formats import laserpath
from fabctl.slicestack import SliceStack

_JOB_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class LaserJob:
    """Settings of a laser job (ids only, no patient data)."""

    job_name: str
    printer_id: str
    resin_id: str
    power_mw: float
    speed_mm_s: float
    spot_mm: float
    hatch_spacing_mm: float
    first_speed_factor: float = 1.0
    peel_mm: float = 2.0
    z_feed_mm_min: float = 300.0
    hatch_base_deg: float = 0.0

    def __post_init__(self) -> None:
        if not _JOB_RE.fullmatch(self.job_name):
            raise InputError(f"job name {self.job_name!r} is not an id ([a-z0-9][a-z0-9._-], at most 64)",
                             hint="job names are case ids or hashes, never a patient's name")


@dataclass
class LaserLayer:
    """A layer's scan paths: contours (list of (k, 2) closed polylines) and hatches (h, 2, 2)."""

    z_mm: float
    contours: list[np.ndarray] = field(default_factory=list)
    hatches: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 2)))


def plan_layer(stack: SliceStack, i: int, spot_mm: float, spacing_mm: float, base_deg: float = 0.0) -> LaserLayer:
    """Scan paths of layer ``i``: offset contours and alternating hatch."""
    pts, lo = stack.layer_points(i)
    off = laserpath.offset_loops(pts, lo, spot_mm / 2.0)
    contours = [off[lo[k]:lo[k + 1]] for k in range(len(lo) - 1)]
    if len(off):
        nxt = np.arange(1, len(off) + 1)
        nxt[lo[1:] - 1] = lo[:-1]
        hatches = laserpath.hatch(off, off[nxt], spacing_mm, laserpath.layer_angle(i, base_deg))
    else:
        hatches = np.zeros((0, 2, 2))
    return LaserLayer(float(stack.layer_tops_mm[i]), contours, hatches)


def _header(job: LaserJob, stack: SliceStack) -> list[str]:
    return [
        ";FABCTL laser-gcode 1", f";JOB:{job.job_name}", f";PRINTER:{job.printer_id}", f";RESIN:{job.resin_id}",
        f";LAYERS:{stack.n_layers}", f";LAYER_HEIGHT_MM:{stack.layer_height_mm:g}",
        f";FIRST_LAYER_HEIGHT_MM:{stack.first_layer_height_mm:g}", f";POWER_MW:{job.power_mw:g}",
        f";SPEED_MM_S:{job.speed_mm_s:g}", f";SPOT_MM:{job.spot_mm:g}", f";HATCH_MM:{job.hatch_spacing_mm:g}",
        "G21", "G90", "M5",
    ]


def _xy(p: np.ndarray, cmd: str) -> list[str]:
    return [f"{cmd} X{x:.4f} Y{y:.4f}" for x, y in p]


def layer_lines(job: LaserJob, layer: LaserLayer, i: int, next_z: float | None) -> list[str]:
    speed = job.speed_mm_s * (job.first_speed_factor if i == 0 else 1.0)
    feed = f"F{speed * 60.0:.0f}"
    out = [f";LAYER:{i}", f";Z:{layer.z_mm:.4f}", f"G1 Z{layer.z_mm:.4f} F{job.z_feed_mm_min:.0f}",
           f"M3 S{job.power_mw:g}", ";TYPE:CONTOUR"]
    first = len(out)  # the layer's first jump carries the scan feed: the Z move left F at the platform's speed
    for c in layer.contours:
        out.append(f"G0 X{c[0, 0]:.4f} Y{c[0, 1]:.4f}")
        marks = _xy(np.vstack([c[1:], c[:1]]), "G1")
        marks[0] += f" {feed}"
        out += marks
    out.append(";TYPE:HATCH")
    for s in layer.hatches:
        out.append(f"G0 X{s[0, 0]:.4f} Y{s[0, 1]:.4f}")
        out.append(f"G1 X{s[1, 0]:.4f} Y{s[1, 1]:.4f} {feed}")
    if len(out) > first + 1:
        jump = first if out[first].startswith("G0") else first + 1  # no contours: the first hatch jump
        out[jump] += f" {feed}"
    out.append("M5")
    if next_z is not None:
        out += [f"G1 Z{layer.z_mm + job.peel_mm:.4f} F{job.z_feed_mm_min:.0f}"]
    return out


def write_gcode(path: Path, stack: SliceStack, job: LaserJob) -> str:
    """Write the job to ``path`` (temporary file renamed into place); return its sha256."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    h = hashlib.sha256()
    tops = stack.layer_tops_mm
    try:
        with open(tmp, "w", encoding="ascii", newline="\n") as f:
            def put(lines: list[str]) -> None:
                data = "\n".join(lines) + "\n"
                f.write(data)
                h.update(data.encode("ascii"))
            put(_header(job, stack))
            for i in range(stack.n_layers):
                layer = plan_layer(stack, i, job.spot_mm, job.hatch_spacing_mm, job.hatch_base_deg)
                put(layer_lines(job, layer, i, float(tops[i + 1]) if i + 1 < stack.n_layers else None))
            put(["M5", ";END"])
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return h.hexdigest()


_NUM = r"(-?\d+(?:\.\d*)?)"
_MOVE = re.compile(rf"^(G[01])(?: X{_NUM} Y{_NUM})?(?: Z{_NUM})?(?: F{_NUM})?$")


def read_gcode(path: Path) -> tuple[dict[str, str], list[LaserLayer]]:
    """Parse a fabctl laser G-code file: header fields and per-layer contours/hatches."""
    header: dict[str, str] = {}
    layers: list[LaserLayer] = []
    mode, pen, poly, hatch = "", None, [], []

    def flush() -> None:
        if poly and layers:
            layers[-1].contours.append(np.array(poly[:-1] if len(poly) > 1 and poly[0] == poly[-1] else poly))
        poly.clear()

    for raw in Path(path).read_text(encoding="ascii").splitlines():
        line = raw.strip()
        if line.startswith(";LAYER:"):
            flush()
            if layers:
                layers[-1].hatches = np.array(hatch).reshape(-1, 2, 2)
            hatch = []
            layers.append(LaserLayer(0.0))
        elif line.startswith(";Z:") and layers:
            layers[-1].z_mm = float(line[3:])
        elif line.startswith(";TYPE:"):
            flush()
            mode = line[6:]
        elif line.startswith(";") and not layers and ":" in line:
            k, v = line[1:].split(":", 1)
            header[k] = v
        else:
            m = _MOVE.match(line)
            if not m or m.group(2) is None or not layers:
                continue
            p = (float(m.group(2)), float(m.group(3)))
            if m.group(1) == "G0":
                flush() if mode == "CONTOUR" else None
                pen = p
                if mode == "CONTOUR":
                    poly.append(p)
            elif mode == "CONTOUR":
                poly.append(p)
            elif mode == "HATCH" and pen is not None:
                hatch.append([pen, p])
                pen = p
    flush()
    if layers:
        layers[-1].hatches = np.array(hatch).reshape(-1, 2, 2)
    if header.get("FABCTL") is None and "FABCTL laser-gcode 1" not in Path(path).read_text()[:64]:
        raise InputError(f"{path}: not a fabctl laser G-code file")
    return header, layers
