"""Purpose-built meshes for the slice tests (trimesh primitives, no booleans)."""

from __future__ import annotations

import math

import numpy as np
import trimesh

TILT_DEG = 30.0
CHANNEL_D_MM = 3.3


def tilted_channel(tilt_deg: float = TILT_DEG, d_mm: float = CHANNEL_D_MM) -> tuple[trimesh.Trimesh, np.ndarray]:
    """A thick tube (bore ``d_mm``, outer 12 mm, 20 mm long) tilted ``tilt_deg`` from vertical towards +y.

    Returns the mesh (lowest point at z = 0) and its bore axis direction (3,).
    """
    m = trimesh.creation.annulus(r_min=d_mm / 2.0, r_max=6.0, height=20.0, sections=256)
    rot = trimesh.transformations.rotation_matrix(math.radians(-tilt_deg), [1, 0, 0])
    m.apply_transform(rot)
    m.apply_translation([0, 0, -m.bounds[0, 2]])
    axis = rot[:3, :3] @ np.array([0.0, 0.0, 1.0])
    return m, axis


def stacked(*parts: trimesh.Trimesh) -> trimesh.Trimesh:
    """Disjoint shells in one mesh (an inner shell with inverted winding makes a cavity)."""
    return trimesh.util.concatenate(list(parts))


def box(extents, centre) -> trimesh.Trimesh:
    b = trimesh.creation.box(extents)
    b.apply_translation(centre)
    return b


def cavity(outer=(10, 10, 10), inner=(4, 4, 4), inner_centre=(0, 0, 5)) -> trimesh.Trimesh:
    """A closed box with a closed inner void (a resin trap)."""
    hole = box(inner, inner_centre)
    hole.invert()
    return stacked(box(outer, (0, 0, outer[2] / 2)), hole)


def cup(size=10.0, wall=2.0, depth=6.0) -> trimesh.Trimesh:
    """A box with a pocket open at the top (closed towards the platform): a suction cup."""
    v, f = [], []
    s, w = size / 2.0, size / 2.0 - wall
    # extrude the ring between two squares; bottom solid slab below the pocket
    bottom = box((size, size, size - depth), (0, 0, (size - depth) / 2))
    walls = [box((size, wall, depth), (0, s - wall / 2, size - depth / 2)),
             box((size, wall, depth), (0, -s + wall / 2, size - depth / 2)),
             box((wall, 2 * w, depth), (s - wall / 2, 0, size - depth / 2)),
             box((wall, 2 * w, depth), (-s + wall / 2, 0, size - depth / 2))]
    del v, f
    m = trimesh.util.concatenate([bottom, *walls])
    return m
