"""The orientation optimiser: hard constraints under temptation, refusals, determinism, resolution."""

from __future__ import annotations

import numpy as np
import pytest

from fabctl.errors import CheckFailed
from fabctl.mesh.orient import align_to_z, fibonacci_sphere, orient_part
from fabctl.mesh.protect import CHANNEL, SKIN, Protection, protected_faces
from fabctl.process import OrientWeights
from tests.conftest import EXAMPLE
from tests.unit.orient.orient_guides import make_dome, make_guide, subdivided

BED = (81.0, 128.0, 150.0)


def _normals(part) -> tuple[np.ndarray, np.ndarray]:
    t = part.triangles
    n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    a = np.linalg.norm(n, axis=1) / 2.0
    return n / (2.0 * a[:, None]), a


def _hard_overhang(part, process) -> float:
    """Skin (and bore, when it cannot bridge) area that would need support in the printer frame."""
    n, a = _normals(part)
    lim = np.cos(np.radians(process.support.critical_angle_deg + process.protect.protected_angle_margin_deg))
    hard = (part.reasons & SKIN) > 0
    if part.scores.bore_span_mm > process.protect.bridgeable_bore_mm:
        hard |= (part.reasons & CHANNEL) > 0
    return float(a[hard & (-n[:, 2] > lim)].sum())


def test_fibonacci_and_alignment_are_exact() -> None:
    u = fibonacci_sphere(500)
    assert np.allclose(np.linalg.norm(u, axis=1), 1.0)
    r = align_to_z(u)
    assert np.allclose(np.einsum("cij,cj->ci", r, u), [0.0, 0.0, 1.0], atol=1e-12)
    assert np.allclose(np.linalg.det(r), 1.0)
    assert np.array_equal(fibonacci_sphere(500), u)


def test_oriented_part_is_placed_and_scored(oriented, process) -> None:
    s = process.support
    v = oriented.vertices
    assert v[:, 2].min() == pytest.approx(s.pad_thickness_mm + s.object_elevation_mm)
    assert oriented.scores.feasible and oriented.scores.fits
    assert set(oriented.scores.weighted) == {"supported_area", "support_count", "peak_layer_area", "height",
                                            "channel_angle", "region_overhang"}
    assert oriented.scores.total == pytest.approx(sum(oriented.scores.weighted.values()), abs=1e-6)
    assert _hard_overhang(oriented, process) == 0.0
    # the transform maps the design onto the placed part
    assert np.isfinite(oriented.transform).all() and np.allclose(oriented.transform[3], [0, 0, 0, 1])


def test_contact_surface_that_is_cheapest_to_support_stays_clean(process) -> None:
    """A dome whose flat base is the contact surface: base down is the cheapest pose by supported area."""
    w = OrientWeights(supported_area=1.0, support_count=0.5, peak_layer_area=0.0, height=0.0,
                      channel_angle=0.0, region_overhang=0.0)
    proc = process.model_copy(update={"orient": process.orient.model_copy(update={"weights": w})})
    g = make_dome()
    prot = protected_faces(g.vertices, g.faces, g.plan, proc.protect, g.skin)
    assert prot.areas_mm2["skin"] > 1000.0
    free = Protection(np.zeros_like(prot.mask), np.zeros_like(prot.reasons), {}, prot.channel, "none")
    greedy = orient_part(g.vertices, g.faces, free, proc, BED)
    n, a = _normals(greedy)
    skin = (prot.reasons & SKIN) > 0
    # without protection the cheapest pose stands on the contact surface (the temptation is real) ...
    assert a[skin & (-n[:, 2] > 0.7)].sum() > 0.9 * a[skin].sum()
    part = orient_part(g.vertices, g.faces, prot, proc, BED)
    # ... with it, not one mm² of the contact surface needs support, though more of the dome does
    assert _hard_overhang(part, proc) == 0.0 and part.scores.protected_minima == 0
    assert part.scores.supported_area_mm2 > greedy.scores.supported_area_mm2


def test_channel_tilting_towards_the_platform(process) -> None:
    g = make_guide(tilt_deg=60.0, slot_mm=6.0)  # a runway too wide to bridge when lying flat
    prot = protected_faces(g.vertices, g.faces, g.plan, process.protect, g.skin)
    part = orient_part(g.vertices, g.faces, prot, process, BED)
    assert _hard_overhang(part, process) == 0.0
    if part.scores.bore_span_mm > process.protect.bridgeable_bore_mm:
        assert part.scores.channel_angle_deg <= 45.0 - process.protect.protected_angle_margin_deg + 1e-6


def test_clear_refusal_when_no_orientation_can_work(process) -> None:
    g = make_guide(regions=[{"name": "everything", "center_mm": [0.0, 0.0, 5.0], "radius_mm": 60.0}])
    prot = protected_faces(g.vertices, g.faces, g.plan, process.protect, g.skin)
    with pytest.raises(CheckFailed, match="no orientation keeps the protected surfaces free") as err:
        orient_part(g.vertices, g.faces, prot, process, BED)
    assert err.value.exit_code == 3 and err.value.hint


def test_refusal_when_nothing_fits(guide, process) -> None:
    prot = protected_faces(guide.vertices, guide.faces, guide.plan, process.protect, guide.skin)
    with pytest.raises(CheckFailed, match="fits"):
        orient_part(guide.vertices, guide.faces, prot, process, (30.0, 30.0, 30.0))


def test_deterministic(guide, oriented, process) -> None:
    prot = protected_faces(guide.vertices, guide.faces, guide.plan, process.protect, guide.skin)
    again = orient_part(guide.vertices, guide.faces, prot, process, BED)
    assert np.array_equal(again.transform, oriented.transform)
    assert again.scores == oriented.scores


def test_same_orientation_for_a_subdivided_refinement(guide, oriented, process) -> None:
    fine = subdivided(guide, 2)
    assert len(fine.faces) == 16 * len(guide.faces)
    prot = protected_faces(fine.vertices, fine.faces, fine.plan, process.protect, fine.skin)
    part = orient_part(fine.vertices, fine.faces, prot, process, BED)
    assert np.allclose(part.up_design, oriented.up_design, atol=1e-9)
    assert part.scores.yaw_deg == oriented.scores.yaw_deg
    assert part.scores.total == pytest.approx(oriented.scores.total, rel=1e-6)


@pytest.mark.skipif(not (EXAMPLE / "guide.stl").is_file(), reason="example case not built")
def test_example_and_its_refinement_orient_alike(process) -> None:
    import trimesh

    from fabctl.mesh.io import read_mesh
    from fabctl.plan import load_plan

    m = read_mesh(EXAMPLE / "guide.stl", "mm")
    plan = load_plan(EXAMPLE / "plan.json")
    s = read_mesh(EXAMPLE / "skin.stl", "mm", check_extent=False)
    ups = []
    for v, f in ((m.vertices, m.faces), trimesh.remesh.subdivide(*trimesh.remesh.subdivide(m.vertices, m.faces))):
        prot = protected_faces(v, f, plan, process.protect, (s.vertices, s.faces))
        part = orient_part(v, f, prot, process, BED)
        assert part.scores.feasible
        ups.append((part.up_design, part.scores.yaw_deg))
    assert np.allclose(ups[0][0], ups[1][0], atol=1e-9) and ups[0][1] == ups[1][1]
