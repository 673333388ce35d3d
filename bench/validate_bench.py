"""Benchmark `validate` (fabctl.mesh.validate) and compare its topology checks with admesh.

    .venv/bin/python bench/validate_bench.py [--repeat N] [extra.stl ...]

Meshes: the example guide (examples/case-42, 10k triangles), the same guide midpoint-subdivided three times
(640k triangles, written to a temporary folder), numpy-stl's rear_case.stl (18.8k, a real CAD part with a
hidden self-intersection), and any STL given on the command line (e.g. the 880k `guide_hires.stl` made by
shared/peers/make_test_meshes.py). For each: reading, every validation stage, the whole validation, and the
topology checks alone next to `admesh` on the same file in the same run (admesh reads the STL and runs its
default checks: exact edge matching, normals, volume). Best of N wall times; prints a table and ratios.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fabctl import profiles  # noqa: E402
from fabctl.mesh import topology as topo  # noqa: E402
from fabctl.mesh.io import read_mesh  # noqa: E402
from fabctl.mesh.validate import _shell_check, topology_checks, validate  # noqa: E402
from fabctl.plan import load_plan  # noqa: E402

EXAMPLE = ROOT / "examples" / "case-42"
REAR = ROOT / "tests" / "data" / "corpus" / "numpy-stl" / "rear_case.stl"


def best(fn, n: int) -> tuple[float, object]:
    out, t = None, float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        t = min(t, time.perf_counter() - t0)
    return t, out


def refined_example(tmp: Path) -> Path:
    m = trimesh.load(EXAMPLE / "guide.stl", process=False)
    v, f = np.asarray(m.vertices), np.asarray(m.faces)
    for _ in range(3):
        v, f = trimesh.remesh.subdivide(v, f)
    path = tmp / "guide_refined_x64.stl"
    trimesh.Trimesh(v, f, process=False).export(path)
    return path


def topology_only(mesh) -> None:
    geo = topo.Geometry(mesh.vertices, mesh.faces)
    _, sh, _, _ = topology_checks(geo)
    _shell_check(sh)


def admesh_time(path: Path, n: int) -> float | None:
    exe = shutil.which("admesh")
    if exe is None:
        return None
    t, _ = best(lambda: subprocess.run([exe, str(path)], capture_output=True, check=True), n)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("extra", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    resin, printer = profiles.resin(profiles.DEFAULT_RESIN), profiles.printer(profiles.DEFAULT_PRINTER)
    plan = load_plan(EXAMPLE / "plan.json")
    with tempfile.TemporaryDirectory() as td:
        cases = [("example guide", EXAMPLE / "guide.stl", plan), ("example x64", refined_example(Path(td)), plan),
                 ("rear_case", REAR, None)] + [(p.name, p, None) for p in a.extra]
        rows = []
        for name, path, pl in cases:
            t_read, mesh = best(lambda p=path: read_mesh(p, "mm", max_facets=5_000_000, check_extent=False),
                                a.repeat)
            t_val, rep = best(lambda m=mesh, p=pl: validate(m, p, resin, printer), a.repeat)
            t_topo, _ = best(lambda m=mesh: topology_only(m), a.repeat)
            t_adm = admesh_time(path, a.repeat)
            rows.append((name, len(mesh.faces), t_read, t_val, t_topo, t_adm, rep))
    print(f"{'mesh':<22}{'triangles':>10}{'read s':>8}{'validate s':>11}{'topology s':>11}{'admesh s':>9}"
          f"{'topo/admesh':>12}{'(read+topo)/admesh':>19}")
    for name, n, tr, tv, tt, ta, _ in rows:
        r1 = f"{tt / ta:.2f}" if ta else "-"
        r2 = f"{(tr + tt) / ta:.2f}" if ta else "-"
        adm = f"{ta:.3f}" if ta else "n/a"
        print(f"{name:<22}{n:>10}{tr:>8.3f}{tv:>11.3f}{tt:>11.3f}{adm:>9}{r1:>12}{r2:>19}")
    print("\nstages of the last validate run (s):")
    for name, _, _, _, _, _, rep in rows:
        stages = ", ".join(f"{k} {v:.3f}" for k, v in rep.timings_s.items())
        print(f"  {name:<22}{stages}  ok={rep.ok} pairs={rep.self_intersections.pairs} "
              f"min_wall={rep.min_wall_thickness_mm} samples={rep.settings.thickness_samples}")


if __name__ == "__main__":
    main()
