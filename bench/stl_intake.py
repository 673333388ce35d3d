"""Binary STL intake speed: fabctl.mesh.io.read_mesh against trimesh.load on one ~880k-triangle file.

Run:  .venv/bin/python bench/stl_intake.py [--triangles N] [--repeat 5]

The file is a closed torus grid generated here (no data needed) and cached in the temp folder. Both readers
do the same job: parse the facets and merge vertices by position (trimesh.load's default processing).
Prints best-of-N seconds for each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

from fabctl.mesh.io import read_mesh


def torus_stl(path: Path, triangles: int) -> None:
    """Write a closed torus (major radius 60 mm, minor 20 mm) with about ``triangles`` facets."""
    nv = max(3, int(np.sqrt(triangles / 2 / 2)))
    nu = max(3, triangles // (2 * nv))
    u = np.linspace(0, 2 * np.pi, nu, endpoint=False)
    v = np.linspace(0, 2 * np.pi, nv, endpoint=False)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    pts = np.stack(
        [(60 + 20 * np.cos(vv)) * np.cos(uu), (60 + 20 * np.cos(vv)) * np.sin(uu), 20 * np.sin(vv)], axis=-1
    ).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    a = i * nv + j
    b = ((i + 1) % nu) * nv + j
    c = ((i + 1) % nu) * nv + (j + 1) % nv
    d = i * nv + (j + 1) % nv
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    rec = np.zeros(len(faces), dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
    rec["v"] = pts[faces]
    path.write_bytes(b"bench torus".ljust(80) + np.uint32(len(faces)).astype("<u4").tobytes() + rec.tobytes())


def best_of(fn, repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds of ``repeat`` calls (CPU time shows our own cost on a busy box)."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--triangles", type=int, default=880_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    path = Path(tempfile.gettempdir()) / "fabctl-bench" / f"torus_{args.triangles}.stl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        torus_stl(path, args.triangles)
    ours = read_mesh(path, units="mm", check_extent=False)
    theirs = trimesh.load(path)
    assert len(ours.faces) == len(theirs.faces) and len(ours.vertices) == len(theirs.vertices)
    (w_ours, c_ours) = best_of(lambda: read_mesh(path, units="mm", check_extent=False), args.repeat)
    (w_theirs, c_theirs) = best_of(lambda: trimesh.load(path), args.repeat)
    print(f"file: {path} ({path.stat().st_size / 1e6:.1f} MB), best of {args.repeat}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'triangles':>10} {'vertices':>10} {'':>5} {'fabctl s':>9} {'trimesh s':>10} {'ratio':>6}")
    for label, ours_s, theirs_s in (("wall", w_ours, w_theirs), ("cpu", c_ours, c_theirs)):
        print(
            f"{len(ours.faces):>10} {len(ours.vertices):>10} {label:>5} {ours_s:>9.3f} {theirs_s:>10.3f} "
            f"{theirs_s / ours_s:>5.1f}x"
        )


if __name__ == "__main__":
    main()
