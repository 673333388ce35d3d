"""The support generator: points off protected faces by construction, bodies watertight, routes clear."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from fabctl.errors import CheckFailed
from fabctl.mesh.orient import OrientedPart, ScoreTerms
from fabctl.mesh.protect import Channel
from fabctl.mesh.support_proof import point_triangle_distance
from fabctl.mesh.supports import CREASE, MINIMUM, face_normals, generate_supports, minima_clusters, thin


def test_points_avoid_protected_faces_by_construction(oriented, supported, process) -> None:
    tri = oriented.triangles
    d = point_triangle_distance(supported.contacts, tri[oriented.hard])
    assert len(supported.contacts) >= 5
    assert d.min() >= process.protect.contact_margin_mm
    assert point_triangle_distance(supported.contacts, tri).max() < 1e-6  # on the part
    kept = np.linalg.norm(supported.contacts[:, None] - supported.contacts[None], axis=2)
    np.fill_diagonal(kept, np.inf)
    assert kept.min() >= process.support.min_point_distance_mm - 1e-9
    assert (supported.kinds == MINIMUM).sum() >= 1


def test_every_local_minimum_gets_a_point(oriented, supported) -> None:
    fn, _ = face_normals(oriented.triangles)
    idx, lab = minima_clusters(oriented.vertices, oriented.faces, fn)
    firsts = oriented.vertices[idx[np.unique(lab, return_index=True)[1]]]
    d = np.linalg.norm(firsts[:, None] - supported.contacts[None], axis=2).min(axis=1)
    assert (d < 1e-9).all()


def test_bodies_are_watertight_and_pillars_reach_the_pad(supported, process) -> None:
    v, f, b = supported.support_vertices, supported.support_faces, supported.support_body
    for k in np.unique(b)[:: max(1, len(np.unique(b)) // 40)]:
        m = trimesh.Trimesh(v, f[b == k], process=True)
        assert m.is_watertight and m.is_winding_consistent and m.volume > 0, supported.body_kinds[k]
    s = process.support
    pad = np.nonzero(np.asarray(supported.body_kinds) == "pad")[0]
    assert len(pad) == 1
    assert v[f[b == pad[0]]][..., 2].min() == pytest.approx(0.0)
    assert v[f[b == pad[0]]][..., 2].max() == pytest.approx(s.pad_thickness_mm)
    assert supported.print_vertices is not None
    merged = trimesh.Trimesh(supported.print_vertices, supported.print_faces)
    assert merged.is_watertight and len(merged.split(only_watertight=False)) == 1


def test_heads_respect_the_critical_angle(supported, process) -> None:
    down = -supported.head_dirs[:, 2]
    assert (down >= np.cos(np.radians(process.support.critical_angle_deg)) - 1e-9).all()


def test_deterministic(oriented, supported, process) -> None:
    again = generate_supports(oriented, process)
    assert np.array_equal(again.contacts, supported.contacts)
    assert np.array_equal(again.support_vertices, supported.support_vertices)


def test_thin_is_greedy_in_order() -> None:
    p = np.array([[0, 0, 0], [0.5, 0, 0], [1.2, 0, 0], [5, 0, 0]], float)
    assert thin(p, 1.0).tolist() == [True, False, True, True]
    assert thin(p, 1.0, fixed=np.array([[5.2, 0, 0]])).tolist() == [True, False, True, False]


def _placed(v: np.ndarray, f: np.ndarray, process) -> OrientedPart:
    v = v - [0, 0, v[:, 2].min() - process.support.pad_thickness_mm - process.support.object_elevation_mm]
    scores = ScoreTerms(0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, True, 0.0, (0.0, 0.0))
    far = Channel(np.array([500.0, 500, 500]), np.array([0, 0, 1.0]), np.array([1.0, 0, 0]), 0.0, 1.0, (0.0, 0.0))
    return OrientedPart(np.eye(4), v, f, np.zeros(len(f), bool), np.zeros(len(f), np.uint8), far,
                        np.array([0, 0, 1.0]), scores, 0, 0, (200.0, 200.0, 200.0))


def test_a_minimum_with_no_way_down_is_refused(process) -> None:
    """A 'C': the upper arm's downward spike is a local minimum right above the lower arm."""
    from manifold3d import Manifold

    c = (Manifold.cube([30, 10, 4]) + Manifold.cube([4, 10, 24]) + Manifold.cube([30, 10, 4]).translate([0, 0, 20])
         + Manifold.cylinder(6, 2.5, 0.2, 24).rotate([180, 0, 0]).translate([20, 5, 20]))
    m = c.to_mesh()
    v, f = np.asarray(m.vert_properties)[:, :3].astype(float), np.asarray(m.tri_verts).astype(np.int64)
    with pytest.raises(CheckFailed, match="unsupportable: local minimum"):
        generate_supports(_placed(v, f, process), process)


def test_crease_points_follow_a_keel(process) -> None:
    """A box standing on one of its edges: the bottom edge is a keel that needs points along it."""
    box = trimesh.creation.box(extents=(40, 10, 10))
    r = trimesh.transformations.rotation_matrix(np.radians(45), [1, 0, 0])
    r = r @ trimesh.transformations.rotation_matrix(np.radians(5), [0, 1, 0])
    box.apply_transform(r)
    sp = generate_supports(_placed(np.asarray(box.vertices), np.asarray(box.faces), process), process)
    keel = sp.contacts[sp.kinds == CREASE]
    assert len(keel) >= 5 and np.ptp(keel[:, 0]) > 25
