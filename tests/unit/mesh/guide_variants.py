"""Broken variants of the example guide (examples/case-42), made with numpy so every test knows the truth.

Each function takes the guide's (vertices, faces) (and the plan where the channel matters) and returns new
(vertices, faces) plus the point (mm) where the defect is. Used by the validation and CLI tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "examples" / "case-42" / "guide.stl"
PLAN = ROOT / "examples" / "case-42" / "plan.json"

#: a spot on the plate's top (posterior, -z facing) surface away from the boss and the marking ridge
PLATE_SPOT = np.array([40.0, 200.0])


def load_guide():
    from fabctl.mesh.io import read_mesh
    from fabctl.plan import load_plan

    return read_mesh(GUIDE, "mm"), load_plan(PLAN)


def vertex_normals(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    t = V[F]
    cr = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    vn = np.zeros_like(V)
    np.add.at(vn, F.reshape(-1), np.repeat(cr, 3, axis=0))
    return vn / np.linalg.norm(vn, axis=1)[:, None]


def _top_near(V: np.ndarray, F: np.ndarray, radius: float) -> np.ndarray:
    vn = vertex_normals(V, F)
    return np.flatnonzero((np.hypot(V[:, 0] - PLATE_SPOT[0], V[:, 1] - PLATE_SPOT[1]) < radius) & (vn[:, 2] < -0.8))


def thin_patch(V: np.ndarray, F: np.ndarray, wall: float = 0.8, radius: float = 6.0):
    """Sink the plate's top surface around PLATE_SPOT so the 3 mm plate is ``wall`` thick there."""
    V = V.copy()
    idx = _top_near(V, F, radius)
    vn = vertex_normals(V, F)
    V[idx] -= (3.0 - wall) * vn[idx]
    return V, F, V[idx].mean(axis=0)


def _axis_frame(plan) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    e = np.array(plan.entry_point_mm)
    d = np.array(plan.direction)
    s = np.array(plan.slot_direction)
    return e, d, s, np.cross(d, s)


def narrow_channel(V: np.ndarray, F: np.ndarray, plan, width: float = 2.6):
    """Shrink the runway slot's cross-section about the axis so it is ``width`` mm wide (below the 11G
    needle's 3.048 mm). Only the bore's own vertices move, towards the axis, so nothing folds."""
    e, d, s, a = _axis_frame(plan)
    rel = V - e
    across = rel @ a
    along = rel @ s
    half = plan.slot_length_mm / 2
    # distance from the slot's centre segment, in the cross-section
    dist = np.hypot(across, np.maximum(np.abs(along) - half, 0.0))
    bore = dist <= plan.channel_diameter_mm / 2 + 0.02
    k = width / plan.channel_diameter_mm
    V = V.copy()
    V[bore] -= np.outer(across[bore] * (1 - k), a) + np.outer(along[bore] * (1 - k), s)
    mid = (rel[bore] @ d).mean()
    return V, F, e + mid * d


def cube(centre: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    b = trimesh.creation.box((size, size, size))
    return np.asarray(b.vertices) + centre, np.asarray(b.faces)


def add_body(V: np.ndarray, F: np.ndarray, bv: np.ndarray, bf: np.ndarray):
    return np.vstack([V, bv]), np.vstack([F, bf + len(V)])


def blocked_channel(V: np.ndarray, F: np.ndarray, plan):
    """A 1.2 mm cube of resin stuck in the channel, on the axis, half way through the boss."""
    e, d, _, _ = _axis_frame(plan)
    t = ((V - e) @ d).min() / 2
    c = e + t * d
    bv, bf = cube(c, 1.2)
    V2, F2 = add_body(V, F, bv, bf)
    return V2, F2, c


def second_shell(V: np.ndarray, F: np.ndarray):
    """A loose 2 mm cube 20 mm behind the plate."""
    c = np.array([PLATE_SPOT[0], PLATE_SPOT[1], V[:, 2].min() - 20.0])
    bv, bf = cube(c, 2.0)
    V2, F2 = add_body(V, F, bv, bf)
    return V2, F2, c


def _faces_near(V: np.ndarray, F: np.ndarray, k: int) -> np.ndarray:
    idx = _top_near(V, F, 3.0)
    p = V[idx].mean(axis=0)
    d = np.linalg.norm(V[F].mean(axis=1) - p, axis=1)
    return np.argsort(d)[:k]


def flipped_faces(V: np.ndarray, F: np.ndarray, k: int = 6):
    """Reverse the winding of the ``k`` faces nearest PLATE_SPOT on the top surface."""
    sel = _faces_near(V, F, k)
    F = F.copy()
    F[sel] = F[sel][:, ::-1]
    return V, F, V[F[sel]].mean(axis=(0, 1))


def hole(V: np.ndarray, F: np.ndarray, k: int = 3):
    """Delete the ``k`` faces nearest PLATE_SPOT on the top surface."""
    sel = _faces_near(V, F, k)
    where = V[F[sel]].mean(axis=(0, 1))
    return V, np.delete(F, sel, axis=0), where


def self_intersection(V: np.ndarray, F: np.ndarray, depth: float = 5.0):
    """Push one top-surface vertex near PLATE_SPOT straight through the plate's underside."""
    idx = _top_near(V, F, 3.0)
    i = idx[np.argmin(np.hypot(V[idx, 0] - PLATE_SPOT[0], V[idx, 1] - PLATE_SPOT[1]))]
    V = V.copy()
    vn = vertex_normals(V, F)
    V[i] -= depth * vn[i]
    return V, F, V[i]


def write_stl(path: Path, V: np.ndarray, F: np.ndarray) -> Path:
    import trimesh

    Path(path).write_bytes(trimesh.Trimesh(V, F, process=False).export(file_type="stl"))
    return Path(path)
