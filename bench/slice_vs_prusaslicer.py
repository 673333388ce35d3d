#!/usr/bin/env python3
"""Slice the same mesh with PrusaSlicer 2.5 and fabctl, whole processes side by side, and compare.

Both: SL1S screen 1620 x 2560 at 0.05 mm, 0.05 mm layers, no supports, no pad. PrusaSlicer runs through
shared/peers/prusaslicer_sla.sh (``apt-get install prusa-slicer``; not a test dependency) with
``--elefant-foot-compensation 0``: its SL1S preset shrinks the first layers by 0.2 mm, fabctl slices the
geometry as given, and the comparison is of the same geometry. fabctl runs as ``fabctl slice --mesh M
--units mm --printer prusa-sl1s --as-is -o x.sl1 --json``. Runs alternate, median of ``--runs``; wall time
and CPU time (the process and its children: fabctl's layer workers, PrusaSlicer's threads). Then every
layer of both archives is thresholded at 50 % and compared (IoU) after aligning the part: the best of the 8
rotations/reflections of the image and a shift, found on the union silhouette.

Default meshes: the example guide (examples/case-42/guide.stl) does not fit the SL1S screen (81 x 128 mm) in
its design pose, so it is turned into the pose fabctl's orient stage picks for the SL1S (``orient_part``,
then lowered to the platform), and that posed mesh is refined (manifold3d ``refine_to_length``, the same
surface, ~880k triangles). fabctl's build area is 81 x 128 mm (x, y) and PrusaSlicer's bed 128 x 81 mm, so
PrusaSlicer gets ``--rotate 90`` (about z) when the part is longer in y; the IoU alignment undoes it.

Usage: python bench/slice_vs_prusaslicer.py [--mesh M.stl ...] [--runs 5] [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
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


def fabctl_cmd(mesh: Path, out: Path) -> list[str]:
    """``--aa 5``: five sub-rows per pixel (an odd count puts no pixel at exactly 50 %, so the 50 % threshold
    of the comparison is unbiased; with 4, edges along the rows come out 1/8 px fat: 10 of 504 layers of the
    peers' guide fell below 0.99 IoU, 1 with 5)."""
    return [sys.executable, "-m", "fabctl", "slice", "--mesh", str(mesh), "--units", "mm", "--printer",
            "prusa-sl1s", "--as-is", "--aa", "5", "-o", str(out), "--json"]


def prusa_cmd(mesh: Path, out: Path) -> list[str]:
    lo, hi = _bbox(mesh)
    turn = ["--rotate", "90"] if hi[1] - lo[1] > hi[0] - lo[0] else []
    return ["bash", str(PEERS / "prusaslicer_sla.sh"), str(mesh), str(out), "--supports", "off", "--pad", "off",
            *turn, "--", "--elefant-foot-compensation", "0"]


def _bbox(mesh: Path) -> tuple[np.ndarray, np.ndarray]:
    tri = np.fromfile(mesh, dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]), offset=84)
    v = tri["v"].reshape(-1, 3)
    return v.min(axis=0), v.max(axis=0)


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the process and its waited-for children, stdout)."""
    c0 = os.times()
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    dt = time.perf_counter() - t
    c1 = os.times()
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return dt, (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system), p.stdout


class Layers:
    """Binary (>= 128) layers of an SL1 archive, decoded one at a time (a stack does not fit in memory)."""

    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path)
        self.names = sorted(n for n in self.zip.namelist() if n.endswith(".png") and "/" not in n)
        self.box = (slice(None), slice(None))

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> np.ndarray:
        return (np.asarray(Image.open(io.BytesIO(self.zip.read(self.names[i])))) >= 128)[self.box]

    def crop(self, layers: np.ndarray) -> np.ndarray:
        """Restrict every layer to the bounding box of ``layers``' union (+ 3 px); returns that union."""
        u = np.logical_or.reduce([self[i] for i in layers])
        r, c = np.flatnonzero(u.any(axis=1)), np.flatnonzero(u.any(axis=0))
        self.box = (slice(max(0, r[0] - 3), r[-1] + 4), slice(max(0, c[0] - 3), c[-1] + 4))
        return u[self.box]


def _dihedral(img: np.ndarray, k: int) -> np.ndarray:
    out = np.rot90(img, k % 4)
    return out[:, ::-1] if k >= 4 else out


def _place(tile: np.ndarray, shape: tuple[int, int], at: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    h, w = tile.shape
    out[at[0]:at[0] + h, at[1]:at[1] + w] = tile
    return out


def align_iou(ours: Layers, theirs: Layers) -> dict:
    """Best dihedral transform + placement of our (cropped) layers onto theirs; per-layer IoU.

    The transform is chosen by the mean IoU over 25 evenly spread layers (a silhouette cannot tell mirror
    twins apart), trying every transform at the shift that centres their unions and the shifts within 2 px.
    """
    n = min(len(ours), len(theirs))
    sample = np.linspace(0, n - 1, 25).astype(int)
    u_o = ours.crop(sample)
    ref = [theirs[i] for i in sample]
    mine = [ours[i] for i in sample]
    u_t = np.logical_or.reduce(ref)
    shape = u_t.shape
    best = None
    for k in range(8):
        uo = _dihedral(u_o, k)
        at0 = np.round(_centre(u_t) - (np.array(uo.shape) - 1) / 2.0).astype(int)
        for dr in range(-2, 3):
            for dc in range(-2, 3):
                at = at0 + [dr, dc]
                if np.any(at < 0) or np.any(at + uo.shape > np.array(shape)):
                    continue
                pairs = zip(mine, ref, strict=True)
                iou = float(np.mean([_iou(_place(_dihedral(a, k), shape, at), b) for a, b in pairs]))
                if best is None or iou > best[0]:
                    best = (iou, k, at)
    _, k, at = best
    ious, areas = [], []
    for i in range(n):
        a, b = _place(_dihedral(ours[i], k), shape, at), theirs[i]
        ious.append(_iou(a, b))
        areas.append((int(a.sum()), int(b.sum())))
    ious = np.array(ious)
    low = np.flatnonzero(ious < 0.99)
    return {"transform": f"rot90 x {k % 4}" + (" + flip" if k >= 4 else ""), "at_px": at.tolist(),
            "layers_compared": n, "layers_ours": len(ours), "layers_prusaslicer": len(theirs),
            "iou_min": round(float(ious.min()), 4), "iou_median": round(float(np.median(ious)), 4),
            "iou_mean": round(float(ious.mean()), 4),
            "iou_percentiles_1_5_25": [round(float(x), 4) for x in np.percentile(ious, [1, 5, 25])],
            "layers_below_0.99": int(len(low)),
            "below_0.99": [{"layer": int(i), "iou": round(float(ious[i]), 4), "px_ours": areas[i][0],
                            "px_prusaslicer": areas[i][1]} for i in low[:20]]}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return float((a & b).sum() / union) if union else 1.0


def _centre(mask: np.ndarray) -> np.ndarray:
    r = np.flatnonzero(mask.any(axis=1))
    c = np.flatnonzero(mask.any(axis=0))
    return np.array([(r[0] + r[-1]) / 2.0, (c[0] + c[-1]) / 2.0])


def bench(mesh: Path, runs: int, out: Path) -> dict:
    ours, theirs = out / f"{mesh.stem}_fabctl.sl1", out / f"{mesh.stem}_prusa.sl1"
    t_f, t_p, c_f, c_p, inner = [], [], [], [], []
    for i in range(runs):
        dt, cpu, stdout = timed(fabctl_cmd(mesh, ours))
        t_f.append(dt)
        c_f.append(cpu)
        inner.append(json.loads(stdout)["timings_s"])
        dt, cpu, _ = timed(prusa_cmd(mesh, theirs))
        t_p.append(dt)
        c_p.append(cpu)
        print(f"{mesh.name} run {i + 1}: fabctl {t_f[-1]:.2f} s (CPU {c_f[-1]:.2f} s), PrusaSlicer {t_p[-1]:.2f} s "
              f"(CPU {c_p[-1]:.2f} s), load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    mf, mp = statistics.median(t_f), statistics.median(t_p)
    res = {"mesh": str(mesh), "triangles": (mesh.stat().st_size - 84) // 50,
           "fabctl_s": round(mf, 3), "prusaslicer_s": round(mp, 3), "speedup": round(mp / mf, 2),
           "fabctl_cpu_s": round(statistics.median(c_f), 3), "prusaslicer_cpu_s": round(statistics.median(c_p), 3),
           "speedup_cpu": round(statistics.median(c_p) / statistics.median(c_f), 2),
           "fabctl_runs": [round(x, 3) for x in t_f], "prusaslicer_runs": [round(x, 3) for x in t_p],
           "fabctl_cpu_runs": [round(x, 3) for x in c_f], "prusaslicer_cpu_runs": [round(x, 3) for x in c_p],
           "fabctl_inside_s": {k: statistics.median(d[k] for d in inner) for k in inner[0]}}
    res["fabctl_inside_s"]["startup_and_exit"] = round(mf - res["fabctl_inside_s"]["total"], 3)
    res["agreement"] = align_iou(Layers(ours), Layers(theirs))
    return res


def posed_guide(made: Path) -> Path:
    """The example guide in the pose fabctl's orient stage picks for the SL1S, on the platform (cached)."""
    path = made / "guide_sl1s_pose.stl"
    if path.exists():
        return path
    sys.path.insert(0, str(ROOT))
    from fabctl.mesh.io import read_mesh
    from fabctl.mesh.orient import orient_part
    from fabctl.mesh.protect import protected_faces
    from fabctl.plan import load_plan
    from fabctl.process import load_process

    ex = ROOT / "examples" / "case-42"
    m, skin = read_mesh(ex / "guide.stl", "mm"), read_mesh(ex / "skin.stl", "mm", check_extent=False)
    process = load_process()
    prot = protected_faces(m.vertices, m.faces, load_plan(ex / "plan.json"), process.protect,
                           (skin.vertices, skin.faces))
    part = orient_part(m.vertices, m.faces, prot, process, (81.0, 128.0, 150.0))
    v = part.vertices - [0.0, 0.0, part.vertices[:, 2].min()]
    _write_stl(path, v, part.faces)
    return path


def refined(posed: Path, made: Path, target: int = 880_000) -> Path:
    """The posed guide with its edges split (manifold3d ``refine_to_length``) to about ``target`` triangles."""
    path = made / "guide_sl1s_pose_880k.stl"
    if path.exists():
        return path
    from manifold3d import Manifold, Mesh

    tri = np.fromfile(posed, dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]), offset=84)
    v, f = np.unique(tri["v"].reshape(-1, 3), axis=0, return_inverse=True)
    man = Manifold(Mesh(vert_properties=v.astype(np.float32), tri_verts=f.reshape(-1, 3).astype(np.uint32)))
    length = 0.4
    while True:
        mesh = man.refine_to_length(length).to_mesh()
        if len(mesh.tri_verts) >= 0.99 * target:
            break
        length *= 0.98
    _write_stl(path, np.asarray(mesh.vert_properties)[:, :3], np.asarray(mesh.tri_verts))
    return path


def _write_stl(path: Path, v: np.ndarray, f: np.ndarray) -> None:
    t = np.asarray(v, dtype=np.float64)[np.asarray(f, dtype=np.int64)]
    n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    rec = np.zeros(len(t), dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]))
    rec["n"], rec["v"] = n, t
    with open(path, "wb") as fh:
        fh.write(b"fabctl bench mesh".ljust(80, b" ") + np.uint32(len(t)).tobytes())
        fh.write(rec.tobytes())


def default_meshes(out: Path) -> list[Path]:
    made = out / "meshes"
    made.mkdir(parents=True, exist_ok=True)
    posed = posed_guide(made)
    return [posed, refined(posed, made)]


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
