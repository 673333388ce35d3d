"""Protected faces: the bore, the skin-contact surface (mesh or trajectory), plan regions; keep-out bounds."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from fabctl.mesh.protect import CHANNEL, REGION, SKIN, KeepOut, protected_faces, sample_triangles
from fabctl.mesh.support_proof import point_triangle_distance
from tests.unit.orient.orient_guides import make_guide


def _areas(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    return trimesh.triangles.area(v[f])


def test_bore_and_skin_faces(guide, process) -> None:
    p = protected_faces(guide.vertices, guide.faces, guide.plan, process.protect, guide.skin)
    a = _areas(guide.vertices, guide.faces)
    bore = a[(p.reasons & CHANNEL) > 0].sum()
    length = p.channel.t_range[1] - p.channel.t_range[0]
    assert bore == pytest.approx(np.pi * guide.plan.channel_diameter_mm * length, rel=0.25)
    skin = a[(p.reasons & SKIN) > 0].sum()
    assert 2300 < skin < 2600  # the 60 x 40 mm underside, bent, less the bore's opening
    # skin faces face the patient (-Z in this frame), bore faces face across the axis
    tri = guide.vertices[guide.faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    sk = (p.reasons & SKIN) > 0
    assert a[sk & (n[:, 2] < -0.5)].sum() > 0.999 * skin
    assert (np.abs(n[(p.reasons & CHANNEL) > 0] @ p.channel.axis) < 0.72).all()
    assert p.skin_source == "mesh" and p.mask.sum() == ((p.reasons > 0).sum())


def test_skin_from_trajectory_matches_skin_mesh(guide, process) -> None:
    with_mesh = protected_faces(guide.vertices, guide.faces, guide.plan, process.protect, guide.skin)
    without = protected_faces(guide.vertices, guide.faces, guide.plan, process.protect, None)
    a, b = (with_mesh.reasons & SKIN) > 0, (without.reasons & SKIN) > 0
    area = _areas(guide.vertices, guide.faces)
    iou = area[a & b].sum() / area[a | b].sum()
    assert without.skin_source == "direction" and iou > 0.9


def test_plan_regions_and_slot() -> None:
    g = make_guide(slot_mm=8.0, regions=[{"name": "mark", "center_mm": [20.0, 0.0, 3.0], "radius_mm": 4.0}])
    from fabctl.process import load_process

    p = protected_faces(g.vertices, g.faces, g.plan, load_process().protect, g.skin)
    tri = g.vertices[g.faces]
    reg = (p.reasons & REGION) > 0
    assert reg.any()
    d = point_triangle_distance(np.array([[20.0, 0.0, 3.0]]), tri[reg])
    assert d[0] <= 4.0
    # the runway: bore faces reach out to the slot's ends along slot_direction
    bore = tri[(p.reasons & CHANNEL) > 0].reshape(-1, 3)
    s = (bore - p.channel.entry) @ p.channel.slot
    assert s.max() > 4.0 + 1.5 and s.min() < -4.0 - 1.5


def test_keepout_never_overstates_distance(guide) -> None:
    tri = guide.vertices[guide.faces][:400]
    keep = KeepOut(tri, 0.4)
    pts = np.random.default_rng(3).uniform(guide.vertices.min(0) - 2, guide.vertices.max(0) + 2, (2000, 3))
    exact = point_triangle_distance(pts, tri)
    assert (keep.distance(pts) <= exact + 1e-9).all()
    assert np.median(exact - keep.distance(pts)) < 0.5


def test_sample_triangles_covers_long_thin_triangles() -> None:
    tri = np.array([[[0, 0, 0], [40, 0, 0], [0, 0.3, 0]], [[0, 0, 0], [1, 0, 0], [0, 1, 0]]], float)
    pts = sample_triangles(tri, 0.2)
    assert len(pts) < 2000
    r = np.random.default_rng(0).random((4000, 2))
    r[r.sum(1) > 1] = 1 - r[r.sum(1) > 1]
    for t in tri:
        q = t[0] + r[:, :1] * (t[1] - t[0]) + r[:, 1:] * (t[2] - t[0])
        d = np.min(np.linalg.norm(q[:, None] - pts[None], axis=2), axis=1)
        assert d.max() <= 0.2
