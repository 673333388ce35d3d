#!/usr/bin/env python3
"""Slice the same mesh with PrusaSlicer 2.5 and fabctl, whole processes side by side, and compare.

Both: SL1S screen 1620 x 2560 at 0.05 mm, 0.05 mm layers, no supports, no pad. PrusaSlicer runs through
shared/peers/prusaslicer_sla.sh (``apt-get install prusa-slicer``; not a test dependency); fabctl runs as
``fabctl slice --mesh M --units mm --printer prusa-sl1s --as-is -o x.sl1 --json``. Runs alternate, median of
``--runs``. Then every layer of both archives is thresholded at 50 % and compared (IoU) after aligning the
part: the best of the 8 rotations/reflections of the image and a shift, found on the union silhouette.

Usage: python bench/slice_vs_prusaslicer.py [--mesh guide.stl ...] [--runs 5] [--out DIR]
Without --mesh: examples/case-42/guide.stl when it exists, else the peers' test guide and its 880k refinement
(built with shared/peers/make_test_meshes.py, needs manifold3d).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "peers"
LAUNCH = ("import sys; from fabctl import cli; from fabctl.cli.slice import slice_cmd; r = cli._register\n"
          "def reg():\n r()\n if 'slice' not in [c.name for c in cli.app.registered_commands]:\n"
          "  cli.app.command('slice')(slice_cmd)\ncli._register = reg; sys.exit(cli.main())")


def fabctl_cmd(mesh: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", LAUNCH, "slice", "--mesh", str(mesh), "--units", "mm", "--printer",
            "prusa-sl1s", "--as-is", "-o", str(out), "--json"]


def prusa_cmd(mesh: Path, out: Path) -> list[str]:
    return ["bash", str(PEERS / "prusaslicer_sla.sh"), str(mesh), str(out), "--supports", "off", "--pad", "off"]


def timed(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return dt, p.stdout


def load_layers(path: Path) -> list[np.ndarray]:
    """Binary (>= 128) layers of an SL1 archive, in order."""
    with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".png") and "/" not in n)
        return [np.asarray(Image.open(io.BytesIO(z.read(n)))) >= 128 for n in names]


def _dihedral(img: np.ndarray, k: int) -> np.ndarray:
    out = np.rot90(img, k % 4)
    return out[:, ::-1] if k >= 4 else out


def _crop(layers: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    u = np.logical_or.reduce(layers)
    r, c = np.flatnonzero(u.any(axis=1)), np.flatnonzero(u.any(axis=0))
    return [m[r[0]:r[-1] + 1, c[0]:c[-1] + 1] for m in layers], np.array([r[0], c[0]])


def _score(crops, theirs, k, shape, at, n) -> float:
    """Mean IoU over 25 evenly spread layers (the union silhouette cannot tell mirror twins apart)."""
    vals = []
    for i in np.linspace(0, n - 1, 25).astype(int):
        a, b = _place(_dihedral(crops[i], k), shape, at), theirs[i]
        vals.append((a & b).sum() / max(1, (a | b).sum()))
    return float(np.mean(vals))


def _place(tile: np.ndarray, shape: tuple[int, int], at: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    h, w = tile.shape
    out[at[0]:at[0] + h, at[1]:at[1] + w] = tile
    return out


def align_iou(ours: list[np.ndarray], theirs: list[np.ndarray]) -> dict:
    """Best dihedral transform + placement of our (cropped) layers onto theirs; per-layer IoU."""
    n = min(len(ours), len(theirs))
    shape = theirs[0].shape
    crops, _ = _crop(ours[:n])
    u_t = np.logical_or.reduce(theirs[:n])
    u_o = np.logical_or.reduce(crops)
    best = None
    for k in range(8):
        uo = _dihedral(u_o, k)
        at0 = np.round(_centre(u_t) - (np.array(uo.shape) - 1) / 2.0).astype(int)
        for dr in range(-1, 2):
            for dc in range(-1, 2):
                at = at0 + [dr, dc]
                iou = _score(crops, theirs, k, shape, at, n)
                if best is None or iou > best[0]:
                    best = (iou, k, at)
    _, k, at = best
    ious = []
    for a, b in zip(crops, theirs[:n], strict=True):
        a = _place(_dihedral(a, k), shape, at)
        union = (a | b).sum()
        if union:
            ious.append(float((a & b).sum() / union))
    ious = np.array(ious)
    return {"transform": f"rot90 x {k % 4}" + (" + flip" if k >= 4 else ""), "at_px": at.tolist(),
            "layers_compared": int(len(ious)), "layers_ours": len(ours), "layers_prusaslicer": len(theirs),
            "iou_min": round(float(ious.min()), 4), "iou_median": round(float(np.median(ious)), 4),
            "iou_mean": round(float(ious.mean()), 4), "iou_min_excl_layer0": round(float(ious[1:].min()), 4),
            "layers_below_0.99": int((ious < 0.99).sum()),
            "worst_layers": np.argsort(ious)[:5].tolist()}


def _centre(mask: np.ndarray) -> np.ndarray:
    r = np.flatnonzero(mask.any(axis=1))
    c = np.flatnonzero(mask.any(axis=0))
    return np.array([(r[0] + r[-1]) / 2.0, (c[0] + c[-1]) / 2.0])


def bench(mesh: Path, runs: int, out: Path) -> dict:
    ours, theirs = out / f"{mesh.stem}_fabctl.sl1", out / f"{mesh.stem}_prusa.sl1"
    t_f, t_p, inner = [], [], []
    for _ in range(runs):
        dt, stdout = timed(fabctl_cmd(mesh, ours))
        t_f.append(dt)
        inner.append(json.loads(stdout)["timings_s"])
        t_p.append(timed(prusa_cmd(mesh, theirs))[0])
    mf, mp = statistics.median(t_f), statistics.median(t_p)
    res = {"mesh": str(mesh), "fabctl_s": round(mf, 3), "prusaslicer_s": round(mp, 3),
           "speedup": round(mp / mf, 2), "fabctl_runs": [round(x, 3) for x in t_f],
           "prusaslicer_runs": [round(x, 3) for x in t_p],
           "fabctl_inside_s": {k: statistics.median(d[k] for d in inner) for k in inner[0]}}
    res["fabctl_inside_s"]["startup_and_exit"] = round(mf - res["fabctl_inside_s"]["total"], 3)
    res["agreement"] = align_iou(load_layers(ours), load_layers(theirs))
    return res


def default_meshes(out: Path) -> list[Path]:
    guide = ROOT / "examples" / "case-42" / "guide.stl"
    made = out / "meshes"
    if not (made / "guide_hires.stl").exists():
        subprocess.run([sys.executable, str(PEERS / "make_test_meshes.py"), str(made)], check=True,
                       capture_output=True)
    return [guide if guide.exists() else made / "guide.stl", made / "guide_hires.stl"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mesh", type=Path, action="append")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    out = a.out or Path(tempfile.mkdtemp(prefix="slice-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    results = [bench(m.resolve(), a.runs, out) for m in (a.mesh or default_meshes(out))]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
