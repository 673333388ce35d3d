"""fabctl orient + support vs PrusaSlicer 2.5 supports + pad on the example guide, side by side.

PrusaSlicer's support time is ``--export-sla`` with supports and pad minus without either (both whole
processes, so start-up and rasterising cancel), through ../shared/peers/prusaslicer_sla.sh. Its CLI has no
auto-orientation, so it supports the mesh as designed; the design pose does not fit the SL1S screen, so its
ini is widened to a 160 x 120 mm screen (same 0.05 mm pixels, portrait, mirror x). fabctl's time is measured
in-process (protect + orient + supports, then the proof separately).

Where PrusaSlicer's support tips land is measured from its output (sla-prep.md §3.3): support-only pixels
(supported archive minus the model's own layers) directly under model pixels of the next layer are tips;
each tip component is mapped back to the design frame (rows <-> -X, columns <-> +Y, 20 px/mm, calibrated
on the unsupported archive's footprint) and classified by the nearest design face's protection (bore, skin)
or by the plan's region spheres.

Usage: .venv/bin/python bench/orient_support_vs_prusaslicer.py [--runs N] [--refine] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fabctl.mesh.io import read_mesh  # noqa: E402
from fabctl.mesh.orient import orient_part  # noqa: E402
from fabctl.mesh.protect import CHANNEL, SKIN, protected_faces, sphere_distance  # noqa: E402
from fabctl.mesh.support_proof import point_triangle_distance, prove  # noqa: E402
from fabctl.mesh.supports import generate_supports  # noqa: E402
from fabctl.plan import load_plan  # noqa: E402
from fabctl.process import load_process  # noqa: E402

EXAMPLE = ROOT / "examples" / "case-42"
WRAPPER = ROOT.parent / "shared" / "peers" / "prusaslicer_sla.sh"
SL1S = (81.0, 128.0, 150.0)
LAYER = 0.05
PX = 20.0  # pixels per mm


def fabctl_once(mesh, plan, skin, process) -> dict:
    t0 = time.perf_counter()
    prot = protected_faces(mesh.vertices, mesh.faces, plan, process.protect, skin)
    t1 = time.perf_counter()
    part = orient_part(mesh.vertices, mesh.faces, prot, process, SL1S)
    t2 = time.perf_counter()
    sp = generate_supports(part, process)
    t3 = time.perf_counter()
    rep = prove(part.vertices, part.faces, part.hard, part.channel, sp.contacts, sp.support_vertices,
                sp.support_faces, process, part.regions)
    t4 = time.perf_counter()
    return {"protect_s": t1 - t0, "orient_s": t2 - t1, "support_s": t3 - t2, "proof_s": t4 - t3,
            "support_points": int(len(sp.contacts)), "protected_contacts": rep.protected_contacts,
            "unsupported_islands": rep.unsupported_islands, "proof_ok": rep.ok,
            "up_design": part.up_design.tolist(), "transform": part.transform.tolist()}


def wide_ini(path: Path) -> Path:
    """The wrapper's SL1S ini with a 160 x 120 mm screen (3200 x 2400 px) so the design pose fits."""
    keep = path.with_suffix(".base.ini")
    probe = path.parent / "probe.stl"
    import trimesh

    trimesh.creation.box(extents=(5, 5, 1)).export(probe)
    subprocess.run(["bash", str(WRAPPER), str(probe), str(path.parent / "probe.sl1"), "--keep-ini", str(keep),
                    "--supports", "off", "--pad", "off"], check=True, capture_output=True)
    lines = []
    for ln in keep.read_text().splitlines():
        key = ln.split("=")[0].strip()
        if key in ("supports_enable", "pad_enable", "pad_around_object", "support_object_elevation",
                   "support_points_density_relative", "support_head_front_diameter", "layer_height",
                   "initial_layer_height"):
            continue  # the wrapper appends these per run
        lines.append({"display_width": "display_width = 160", "display_height": "display_height = 120",
                      "display_pixels_x": "display_pixels_x = 3200", "display_pixels_y": "display_pixels_y = 2400",
                      "bed_shape": "bed_shape = 0.5x0.5,159.5x0.5,159.5x119.5,0.5x119.5"}.get(key, ln))
    path.write_text("\n".join(lines) + "\n")
    return path


def prusa_once(model: Path, out: Path, ini: Path, supports: bool) -> tuple[float, str]:
    onoff = "on" if supports else "off"
    t = time.perf_counter()
    p = subprocess.run(["bash", str(WRAPPER), str(model), str(out), "--supports", onoff, "--pad", onoff,
                        "--printer-ini", str(ini), "--loglevel", "4"], capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"prusa-slicer failed ({p.returncode}): {p.stderr[-400:]}")
    return dt, p.stdout + p.stderr


class Layers:
    """Lazy access to an .sl1 archive's layer masks (bool), bottom first."""

    def __init__(self, archive: Path) -> None:
        self.z = zipfile.ZipFile(archive)
        self.names = sorted(n for n in self.z.namelist() if n.endswith(".png"))

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, k: int) -> np.ndarray:
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(self.z.read(self.names[k])))) > 127


def tips(sup: Layers, bare: Layers) -> tuple[np.ndarray, np.ndarray, float]:
    """Support tips as (row, col, model layer), the model's footprint and the archives' alignment (IoU of
    their top layers), streaming both archives inside the pad's box: tips are support-only pixels (supported
    layer minus the model's own layer grown one pixel) right under model pixels of the next layer."""
    from scipy import ndimage

    off = len(sup) - len(bare)
    r, c = np.nonzero(sup[0])  # the pad covers every support and the model's footprint
    box = (slice(max(r.min() - 20, 0), r.max() + 20), slice(max(c.min() - 20, 0), c.max() + 20))
    found = []
    here = bare[0][box]
    foot = here.copy()
    grow = np.ones((3, 3), bool)
    for k in range(len(bare) - 1):
        above = bare[k + 1][box]
        foot |= above
        touch = sup[k + off][box] & ~ndimage.binary_dilation(here, structure=grow) & above
        if touch.any():
            lab, n = ndimage.label(touch)
            found += [(a + box[0].start, b + box[1].start, k + 1.0)
                      for a, b in ndimage.center_of_mass(touch, lab, range(1, n + 1))]
        here = above
    top_s, top_b = sup[len(sup) - 1][box], bare[len(bare) - 1][box]
    iou = float((top_s & top_b).sum() / max((top_s | top_b).sum(), 1))
    full = np.zeros(sup[0].shape, dtype=bool)
    full[box] = foot
    return np.array(found).reshape(-1, 3), full, iou


def merge(found: np.ndarray, radius_mm: float = 1.0) -> np.ndarray:
    """One (row, col, layer) per distinct contact: detections within ``radius_mm`` joined."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    if not len(found):
        return found
    mm = found * [1.0 / PX, 1.0 / PX, LAYER]
    pairs = cKDTree(mm).query_pairs(radius_mm, output_type="ndarray")
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(mm), len(mm)))
    _, lab = connected_components(g, directed=False)
    return np.stack([np.bincount(lab, weights=found[:, i]) / np.bincount(lab) for i in range(3)], axis=1)


def classify(found, foot, mesh, prot) -> dict:
    """Map tips to the design frame and count those on protected surfaces."""
    rows, cols = np.nonzero(foot)
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    pts = np.array([[hi[0] - (r - rows.min()) / PX, lo[1] + (c - cols.min()) / PX, lo[2] + (k + 0.5) * LAYER]
                    for r, c, k in found]).reshape(-1, 3)
    tri = mesh.vertices[mesh.faces]
    d = point_triangle_distance(pts, tri)
    on_hard = point_triangle_distance(pts, tri[prot.hard]) <= 0.5
    on_region = sphere_distance(pts, prot.regions) <= 0.5
    skin = point_triangle_distance(pts, tri[(prot.reasons & SKIN) > 0]) <= 0.5
    bore = point_triangle_distance(pts, tri[(prot.reasons & CHANNEL) > 0]) <= 0.5
    return {"tips": int(len(pts)), "tips_within_1mm_of_part": int((d <= 1.0).sum()),
            "on_protected": int((on_hard | on_region).sum()), "on_skin": int(skin.sum()),
            "on_bore": int(bore.sum()), "in_regions": int(on_region.sum())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--refine", action="store_true", help="also orient the x3-subdivided example")
    ap.add_argument("--keep", type=Path, default=None)
    a = ap.parse_args()
    process = load_process()
    mesh = read_mesh(EXAMPLE / "guide.stl", "mm")
    plan = load_plan(EXAMPLE / "plan.json")
    s = read_mesh(EXAMPLE / "skin.stl", "mm", check_extent=False)
    skin = (s.vertices, s.faces)
    work = a.keep or Path(tempfile.mkdtemp(prefix="bench-orient-"))
    work.mkdir(parents=True, exist_ok=True)
    ini = wide_ini(work / "wide.ini")
    model = EXAMPLE / "guide.stl"
    fab, ps_sup, ps_bare = [], [], []
    log = ""
    for i in range(a.runs):  # side by side: one of each per round
        fab.append(fabctl_once(mesh, plan, skin, process))
        dt, log = prusa_once(model, work / "sup.sl1", ini, True)
        ps_sup.append(dt)
        ps_bare.append(prusa_once(model, work / "bare.sl1", ini, False)[0])
        print(f"round {i + 1}: fabctl {sum(fab[-1][k] for k in ('protect_s', 'orient_s', 'support_s')):.2f} s "
              f"+ proof {fab[-1]['proof_s']:.2f} s; prusa-slicer sup+pad {ps_sup[-1]:.2f} s, "
              f"bare {ps_bare[-1]:.2f} s", flush=True)
    m = re.findall(r"Automatic support points: (\d+)", log)
    prot = protected_faces(mesh.vertices, mesh.faces, plan, process.protect, skin)
    found, foot, iou = tips(Layers(work / "sup.sl1"), Layers(work / "bare.sl1"))
    where = {"tip_detections": int(len(found)), **classify(merge(found), foot, mesh, prot),
             "archive_alignment_iou": round(iou, 4)}
    med = {k: statistics.median(r[k] for r in fab) for k in ("protect_s", "orient_s", "support_s", "proof_s")}
    gen = med["protect_s"] + med["orient_s"] + med["support_s"]
    ps = statistics.median(ps_sup) - statistics.median(ps_bare)
    doc = {"mesh": {"triangles": int(len(mesh.faces))}, "runs": a.runs,
           "fabctl": {**{k: round(v, 3) for k, v in med.items()}, "orient_support_s": round(gen, 3),
                      "with_proof_s": round(gen + med["proof_s"], 3),
                      **{k: fab[-1][k] for k in ("support_points", "protected_contacts", "unsupported_islands",
                                                 "proof_ok")}},
           "prusaslicer": {"sup_pad_s": round(statistics.median(ps_sup), 3),
                           "bare_s": round(statistics.median(ps_bare), 3), "support_s": round(ps, 3),
                           "support_points": int(m[-1]) if m else None, **where},
           "ratio_orient_support": round(gen / ps, 3) if ps > 0 else None,
           "ratio_with_proof": round((gen + med["proof_s"]) / ps, 3) if ps > 0 else None}
    if a.refine:
        import trimesh

        v, f = trimesh.remesh.subdivide(*trimesh.remesh.subdivide(*trimesh.remesh.subdivide(mesh.vertices,
                                                                                            mesh.faces)))
        fine = type(mesh)(v, f, mesh.source_sha256, mesh.source_format, mesh.units, mesh.units_source)
        t = time.perf_counter()
        p2 = orient_part(v, f, protected_faces(v, f, plan, process.protect, skin), process, SL1S)
        doc["refinement"] = {"triangles": int(len(f)), "orient_s": round(time.perf_counter() - t, 2),
                             "same_up": bool(np.allclose(p2.up_design, fab[-1]["up_design"], atol=1e-9)),
                             "up": p2.up_design.tolist(), "mesh": fine.source_format}
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
