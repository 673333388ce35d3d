"""The needle channel (fabctl.mesh.channel) on a boss with a known bore, and on the example guide."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from fabctl.mesh import topology as T
from fabctl.mesh.channel import measure_channel, segment_segment, segment_triangle
from fabctl.plan import Plan

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "case-42"
REQUIRED = 3.048 + 0.1  # 11G needle + demo-grey clearance
SECTIONS = 128


def boss(bore: float, centre=(0.0, 0.0)) -> T.Geometry:
    """A 12 mm boss, 10 mm tall (z -5..5), with a round bore of diameter ``bore`` along z."""
    m = trimesh.creation.annulus(r_min=bore / 2, r_max=6.0, height=10.0, sections=SECTIONS)
    m.apply_translation([centre[0], centre[1], 0.0])
    return T.Geometry(np.asarray(m.vertices), np.asarray(m.faces))


def plan(entry=(0.0, 0.0, -5.0), slot: float = 0.0) -> Plan:
    # the guide lies above the skin: the needle goes in along -z from the boss's underside
    return Plan(vertebral_level="L3", side="left", needle_gauge=11, needle_od_mm=3.048,
                entry_point_mm=list(entry), direction=[0.0, 0.0, -1.0], target_depth_mm=100.0,
                channel_diameter_mm=3.4, slot_length_mm=slot, slot_direction=[0.0, 1.0, 0.0])


def polygon_min(d: float) -> float:
    return d * np.cos(np.pi / SECTIONS)  # the bore is a polygon: its flats are nearer the axis


def test_open_round_bore() -> None:
    ch = measure_channel(boss(3.4), plan(), REQUIRED)
    assert ch.found
    assert ch.t_range == pytest.approx((-10.0, 0.0), abs=1e-9)
    assert ch.min_diameter == pytest.approx(polygon_min(3.4), abs=1e-6)
    assert len(ch.obstruction_points) == 0
    assert ch.slot_length == pytest.approx(0.0, abs=0.01)
    # the profile holds the bore along the whole boss
    assert np.allclose(ch.profile[:, 1], polygon_min(3.4), atol=0.03)


def test_narrow_bore_is_found_with_its_place() -> None:
    ch = measure_channel(boss(3.0), plan(), REQUIRED)
    assert ch.min_diameter == pytest.approx(polygon_min(3.0), abs=1e-6)
    assert ch.min_diameter < REQUIRED
    assert len(ch.obstruction_points) > 0
    p = ch.narrowest_point
    assert np.hypot(p[0], p[1]) == pytest.approx(1.5, abs=0.01) and -5.0 <= p[2] <= 5.0


def test_plug_in_the_bore_blocks_it() -> None:
    g = boss(3.4)
    plug = trimesh.creation.box((1.0, 1.0, 1.0))
    plug.apply_translation([0.0, 0.0, 2.0])
    V = np.vstack([g.vertices, plug.vertices])
    F = np.vstack([g.faces, np.asarray(plug.faces) + len(g.vertices)])
    ch = measure_channel(T.Geometry(V, F), plan(), REQUIRED)
    assert ch.min_diameter == 0.0
    assert np.allclose(ch.narrowest_point, [0, 0, 2.0], atol=0.51)
    assert ch.narrowest_t == pytest.approx(-7.0, abs=0.51)


def test_axis_beside_the_guide_is_not_a_channel() -> None:
    # the plan's axis runs 8 mm from the boss's centre: through its wall's edge region, not its bore
    ch = measure_channel(boss(3.4), plan(entry=(8.0, 0.0, -5.0)), REQUIRED)
    assert not ch.found or ch.min_diameter < REQUIRED


def test_axis_far_away_finds_nothing() -> None:
    ch = measure_channel(boss(3.4), plan(entry=(60.0, 0.0, -5.0)), REQUIRED)
    assert ch.t_range is None and not ch.found


def test_segment_helpers() -> None:
    p0 = np.array([[0.0, 0.0, 0.0]])
    p1 = np.array([[1.0, 0.0, 0.0]])
    d, s, u = segment_segment(p0, p1, np.array([[0.5, 1.0, -1.0]]), np.array([[0.5, 1.0, 1.0]]))
    assert d[0] == pytest.approx(1.0) and s[0] == pytest.approx(0.5) and u[0] == pytest.approx(0.5)
    tri = np.array([[[0.5, -1.0, -1.0], [0.5, 1.0, -1.0], [0.5, 0.0, 1.0]]])
    d, s, x = segment_triangle(p0, p1, tri)
    assert d[0] == 0.0 and s[0] == pytest.approx(0.5)
    d, s, x = segment_triangle(p0 + [0, 0, 3.0], p1 + [0, 0, 3.0], tri)
    assert d[0] == pytest.approx(2.0) and x[0] == pytest.approx([0.5, 0.0, 1.0])


def test_example_guide_runway() -> None:
    from fabctl.mesh.io import read_mesh
    from fabctl.plan import load_plan
    m = read_mesh(EXAMPLE / "guide.stl", "mm")
    p = load_plan(EXAMPLE / "plan.json")
    ch = measure_channel(T.Geometry(m.vertices, m.faces), p, REQUIRED)
    assert ch.found
    # README: runway slot 3.3 x 13.3 mm, 10 mm runway
    assert ch.min_diameter == pytest.approx(3.3, abs=0.01)
    assert ch.slot_length == pytest.approx(10.0, abs=0.05)
