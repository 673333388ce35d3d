"""Benchmark `validate` (fabctl.mesh.validate) and compare its topology checks with admesh.

    .venv/bin/python bench/validate_bench.py [--repeat N] [--src DIR] [--only-extra] [extra.stl ...]

Meshes: the example guide (examples/case-42, 10k triangles), the same guide midpoint-subdivided three times
(640k triangles, written to a temporary folder), numpy-stl's rear_case.stl (18.8k, a real CAD part with a
hidden self-intersection), and any STL given on the command line (e.g. the 880k `guide_hires.stl` made by
shared/peers/make_test_meshes.py). For each: reading, every validation stage, the whole validation, and the
topology checks alone next to `admesh` on the same file in the same run (admesh reads the STL and runs its
default checks: exact edge matching, normals, volume).

Every figure is the median of N runs, as wall time and as CPU time of the process (all its threads; for
admesh, of the child process): on a machine shared with other work, CPU time is the fairer figure. The
stages (topology, grid + self-intersections, wall thickness) are also timed one by one, outside ``validate``.
The allocator thresholds are raised as the fabctl CLI does (``fabctl.cli.allocator``) unless
``--default-malloc`` is given. ``--src DIR`` imports fabctl from another checkout (e.g. ``git archive OLD fabctl | tar -x -C DIR``, with
DIR/profiles linked to this tree's profiles) for a before/after comparison on the same machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

ROOT = Path(__file__).resolve().parent.parent
_src = sys.argv[sys.argv.index("--src") + 1] if "--src" in sys.argv[:-1] else str(ROOT)
sys.path.insert(0, _src)

from fabctl import profiles  # noqa: E402
from fabctl.mesh import topology as topo  # noqa: E402
from fabctl.mesh.intersect import TriangleGrid, self_intersections  # noqa: E402
from fabctl.mesh.io import read_mesh  # noqa: E402
from fabctl.mesh.thickness import wall_thickness  # noqa: E402
from fabctl.mesh.validate import _shell_check, topology_checks, validate  # noqa: E402
from fabctl.plan import load_plan  # noqa: E402

EXAMPLE = ROOT / "examples" / "case-42"
REAR = ROOT / "tests" / "data" / "corpus" / "numpy-stl" / "rear_case.stl"


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(fn, n: int) -> tuple[float, float, object]:
    """Median wall and median CPU time (s) of n calls, and the last result. CPU counts this process's
    threads and the children it waited for (validation forks one for the self-intersections)."""
    walls, cpus, out = [], [], None
    for _ in range(n):
        w, c, k = time.perf_counter(), time.process_time(), _children_cpu()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c + _children_cpu() - k)
    return statistics.median(walls), statistics.median(cpus), out


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


def stages(mesh, resin, printer, n: int) -> dict[str, tuple[float, float]]:
    """Each stage alone, as validate runs it: (median wall, median CPU) per stage."""
    out = {}
    wall = float(resin.ifu.min_wall_mm.value)
    geo = topo.Geometry(mesh.vertices, mesh.faces)
    w, c, (_, _, labels, _) = timed(lambda: topology_checks(topo.Geometry(mesh.vertices, mesh.faces)), n)
    out["topology"] = (w, c)
    geo.triangles, geo.cross, geo.edges  # noqa: B018 (shared with topology in validate)
    w, c, grid = timed(lambda: TriangleGrid.build(geo.triangles), n)
    out["grid"] = (w, c)
    w, c, _ = timed(lambda: self_intersections(geo.vertices, geo.faces, geo.cross, labels, grid=grid,
                                               edges=geo.edges), n)
    out["self_intersections"] = (w, c)
    w, c, _ = timed(lambda: wall_thickness(geo, cap=max(10.0, 3.0 * wall),
                                           refine_below=max(wall, printer.min_feature_mm), grid=grid), n)
    out["thickness"] = (w, c)
    return out


def admesh_time(path: Path, n: int) -> tuple[float, float] | None:
    exe = shutil.which("admesh")
    if exe is None:
        return None
    walls, cpus = [], []
    for _ in range(n):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        w = time.perf_counter()
        subprocess.run([exe, str(path)], capture_output=True, check=True)
        walls.append(time.perf_counter() - w)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("extra", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--src", help="import fabctl from this checkout instead of this tree")
    ap.add_argument("--only-extra", action="store_true", help="skip the built-in meshes")
    ap.add_argument("--default-malloc", action="store_true",
                    help="keep glibc's default allocator thresholds (the fabctl CLI raises them)")
    a = ap.parse_args()
    tuned = False
    if not a.default_malloc:
        try:
            from fabctl.cli.allocator import tune_allocator
            tuned = tune_allocator()
        except ImportError:  # an older checkout (--src) without it
            pass
    resin, printer = profiles.resin(profiles.DEFAULT_RESIN), profiles.printer(profiles.DEFAULT_PRINTER)
    plan = load_plan(EXAMPLE / "plan.json")
    print(f"fabctl from {_src}; medians of {a.repeat} runs, wall / CPU seconds; allocator tuned as the CLI does: "
          f"{'yes' if tuned else 'no'}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as td:
        cases = [] if a.only_extra else [
            ("example guide", EXAMPLE / "guide.stl", plan), ("example x64", refined_example(Path(td)), plan),
            ("rear_case", REAR, None)]
        cases += [(p.name, p, None) for p in a.extra]
        rows = []
        for name, path, pl in cases:
            tr, _, mesh = timed(lambda p=path: read_mesh(p, "mm", max_facets=5_000_000, check_extent=False),
                                a.repeat)
            vw, vc, rep = timed(lambda m=mesh, p=pl: validate(m, p, resin, printer), a.repeat)
            tw, tc, _ = timed(lambda m=mesh: topology_only(m), a.repeat)
            adm = admesh_time(path, a.repeat)
            st = stages(mesh, resin, printer, a.repeat)
            rows.append((name, len(mesh.faces), tr, (vw, vc), (tw, tc), adm, st, rep))
    print(f"{'mesh':<22}{'triangles':>10}{'read s':>8}{'validate wall/cpu':>19}{'topology wall/cpu':>19}"
          f"{'admesh wall/cpu':>17}{'topo/admesh (cpu)':>19}{'(read+topo)/admesh':>19}")
    for name, n, tr, (vw, vc), (tw, tc), adm, _, _ in rows:
        r1 = f"{tw / adm[0]:.2f} ({tc / adm[1]:.2f})" if adm else "-"
        r2 = f"{(tr + tw) / adm[0]:.2f}" if adm else "-"
        ad = f"{adm[0]:.3f}/{adm[1]:.3f}" if adm else "n/a"
        print(f"{name:<22}{n:>10}{tr:>8.3f}{f'{vw:.3f}/{vc:.3f}':>19}{f'{tw:.3f}/{tc:.3f}':>19}{ad:>17}"
              f"{r1:>19}{r2:>19}")
    print("\nstages alone (median wall / CPU s):")
    for name, _, _, _, _, _, st, rep in rows:
        parts = ", ".join(f"{k} {w:.3f}/{c:.3f}" for k, (w, c) in st.items())
        print(f"  {name:<22}{parts}  ok={rep.ok} pairs={rep.self_intersections.pairs} "
              f"min_wall={rep.min_wall_thickness_mm} samples={rep.settings.thickness_samples}")
    print("\nstages of the last validate run (wall s, from the report):")
    for name, _, _, _, _, _, _, rep in rows:
        print(f"  {name:<22}" + ", ".join(f"{k} {v:.3f}" for k, v in rep.timings_s.items()))


if __name__ == "__main__":
    main()
