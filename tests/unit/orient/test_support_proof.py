"""The independent proof: it holds for generated supports and catches each kind of bad support."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from fabctl.errors import CheckFailed
from fabctl.mesh.protect import SKIN
from fabctl.mesh.support_proof import point_triangle_distance, prove, require, surface_samples
from fabctl.mesh.supports import MINIMUM


def _prove(part, contacts, v, f, process):
    return prove(part.vertices, part.faces, part.hard, part.channel, contacts, v, f, process, part.regions)


def _with(sp, extra: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    v = np.concatenate([sp.support_vertices, extra.vertices])
    f = np.concatenate([sp.support_faces, np.asarray(extra.faces) + len(sp.support_vertices)])
    return v, f


def test_generated_supports_pass(oriented, supported, process) -> None:
    rep = require(_prove(oriented, supported.contacts, supported.support_vertices, supported.support_faces,
                         process))
    assert rep.ok and rep.islands >= 1 and rep.layers > 100 and rep.support_samples > 1000
    d = rep.as_dict()
    assert d["protected_contacts"] == 0 and d["unsupported_islands"] == 0


def test_contact_on_a_protected_face_fails(oriented, supported, process) -> None:
    tri = oriented.triangles
    skin = np.nonzero((oriented.reasons & SKIN) > 0)[0]
    spot = tri[skin[len(skin) // 2]].mean(axis=0)
    head = trimesh.creation.icosphere(subdivisions=1, radius=0.4)
    head.apply_translation(spot)
    v, f = _with(supported, head)
    rep = _prove(oriented, np.concatenate([supported.contacts, [spot]]), v, f, process)
    assert rep.protected_contacts == 1 and not rep.ok
    with pytest.raises(CheckFailed, match="protected face") as err:
        require(rep)
    assert err.value.exit_code == 3


def test_pillar_through_the_part_fails(oriented, supported, process) -> None:
    c = oriented.vertices[oriented.faces[len(oriented.faces) // 3]]
    x, y = c.mean(axis=0)[:2]
    rod = trimesh.creation.cylinder(radius=0.5, height=oriented.vertices[:, 2].max() + 5, sections=12)
    rod.apply_translation([x, y, rod.extents[2] / 2])
    v, f = _with(supported, rod)
    rep = _prove(oriented, supported.contacts, v, f, process)
    assert rep.part_intrusions > 0
    with pytest.raises(CheckFailed, match="inside the part"):
        require(rep)


def test_support_inside_the_channel_fails(oriented, supported, process) -> None:
    ch = oriented.channel
    mid = ch.entry + ch.axis * (ch.t_range[0] + ch.t_range[1]) / 2.0
    pin = trimesh.creation.icosphere(subdivisions=1, radius=0.3)
    pin.apply_translation(mid)
    v, f = _with(supported, pin)
    rep = _prove(oriented, supported.contacts, v, f, process)
    assert rep.channel_intrusions > 0 and not rep.ok
    with pytest.raises(CheckFailed, match="channel"):
        require(rep)


def test_island_left_unsupported_fails(oriented, supported, process) -> None:
    k = len(supported.contacts)
    drop = np.nonzero(supported.kinds == MINIMUM)[0]
    keep = np.setdiff1d(np.arange(k), drop)
    gone = np.concatenate([drop, drop + k, drop + 2 * k, drop + 3 * k])  # head, junction, pillar, base
    faces = supported.support_faces[~np.isin(supported.support_body, gone)]
    rep = _prove(oriented, supported.contacts[keep], supported.support_vertices, faces, process)
    assert rep.unsupported_islands >= 1 and rep.protected_contacts == 0
    with pytest.raises(CheckFailed, match="island"):
        require(rep)


def test_contact_in_mid_air_fails(oriented, supported, process) -> None:
    air = supported.contacts[:1] - [0, 0, 3.0]
    rep = _prove(oriented, np.concatenate([supported.contacts, air]), supported.support_vertices,
                 supported.support_faces, process)
    assert rep.contacts_off_surface == 1 and not rep.ok


def test_point_triangle_distance_is_exact() -> None:
    rng = np.random.default_rng(5)
    tri = rng.uniform(-5, 5, (200, 3, 3))
    pts = rng.uniform(-8, 8, (300, 3))
    brute = np.array([np.linalg.norm(trimesh.triangles.closest_point(tri, np.tile(p, (200, 1))) - p,
                                     axis=1).min() for p in pts])
    assert np.allclose(point_triangle_distance(pts, tri), brute)


def test_surface_samples_are_dense() -> None:
    box = trimesh.creation.box(extents=(30, 1, 1))
    s = surface_samples(box.vertices, box.faces, 0.5)
    q = box.sample(3000, seed=1) if "seed" in trimesh.sample.sample_surface.__code__.co_varnames else box.sample(3000)
    d = np.linalg.norm(q[:, None] - s[None], axis=2).min(axis=1)
    assert d.max() <= 0.5
