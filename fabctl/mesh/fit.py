"""Build-volume fit: does the part fit the printer in at least one orientation (the orient stage picks which).

Candidates, cheapest first: the part as it is; the six axis permutations of its bounding box; the
minimum-volume oriented bounding box (``trimesh.bounds.oriented_bounds``) in its six permutations. The first
that fits is reported with its rotation.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

AXES = "xyz"


@dataclass
class FitResult:
    """fits; orientation: how; extents: (3,) mm of the part in that orientation; rotation: (3, 3) or None."""

    fits: bool
    orientation: str
    extents: np.ndarray
    rotation: np.ndarray | None


def _perm_matrix(p: tuple[int, int, int]) -> np.ndarray:
    m = np.zeros((3, 3))
    for new, old in enumerate(p):
        m[new, old] = 1.0
    if np.linalg.det(m) < 0:  # keep it a rotation: flip one axis (a box is symmetric)
        m[2] *= -1
    return m


def fits_build_volume(vertices: np.ndarray, build: np.ndarray, margin: float = 0.0) -> FitResult:
    """vertices (n, 3) mm; build (3,) printable x, y, z in mm; margin mm kept free on every side."""
    v = np.asarray(vertices, dtype=np.float64)
    room = np.asarray(build, dtype=np.float64) - 2.0 * margin
    ext = v.max(axis=0) - v.min(axis=0)
    if (ext <= room).all():
        return FitResult(True, "as-is", ext, np.eye(3))
    for p in permutations(range(3)):
        if p == (0, 1, 2):
            continue
        e = ext[list(p)]
        if (e <= room).all():
            name = "axes permuted: " + ", ".join(f"{AXES[old]}->{AXES[new]}" for new, old in enumerate(p) if new != old)
            return FitResult(True, name, e, _perm_matrix(p))
    obb_ext, rot = ext, None
    if len(v) >= 4:
        from trimesh.bounds import oriented_bounds

        try:
            tf, obb_ext = oriented_bounds(v)
            rot = np.asarray(tf)[:3, :3]
        except (ValueError, np.linalg.LinAlgError):  # flat or degenerate point sets
            rot = None
    if rot is not None:
        for p in permutations(range(3)):
            e = np.asarray(obb_ext)[list(p)]
            if (e <= room).all():
                return FitResult(True, "minimum-volume bounding box", e, _perm_matrix(p) @ rot)
    best = np.sort(np.asarray(obb_ext if rot is not None else ext))[::-1]
    return FitResult(False, "none", best, rot)
