"""Layer checks: islands, resin traps and suction cups on purpose-built meshes; volume and time."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from fabctl.mesh import layercheck
from fabctl.mesh.slice import slice_mesh
from tests.unit.slice.meshes import box, cavity, stacked, tilted_channel


def _stack(m, lh=0.05):
    return slice_mesh(m.vertices, m.faces, lh)


def test_floating_block_is_an_island_at_its_first_layer():
    m = stacked(box((10, 10, 2), (0, 0, 1)), box((2, 2, 1), (20, 0, 3.5)))
    st = _stack(m)
    rep = layercheck.check_layers(st)
    assert [f.layer for f in rep.islands] == [60]
    assert rep.islands[0].x_mm == pytest.approx(20, abs=0.1) and rep.islands[0].area_mm2 == pytest.approx(4)


def test_overhang_that_overlaps_the_layer_below_is_not_an_island():
    m = stacked(box((10, 10, 2), (0, 0, 1)), box((20, 2, 1), (5, 0, 2.5)))   # a ledge on the block
    assert layercheck.check_layers(_stack(m)).islands == []


def test_enclosed_void_is_a_resin_trap():
    rep = layercheck.check_layers(_stack(cavity()))
    assert len(rep.resin_traps) == 1 and not rep.suction_cups
    t = rep.resin_traps[0]
    assert t.volume_mm3 == pytest.approx(64, rel=0.02) and t.area_mm2 == pytest.approx(16, rel=1e-6)


def test_cup_open_towards_the_vat_is_a_suction_cup():
    tube = trimesh.creation.annulus(r_min=3, r_max=5, height=6, sections=128)
    tube.apply_translation([0, 0, 7])
    base = trimesh.creation.cylinder(radius=5, height=4, sections=128)
    base.apply_translation([0, 0, 2])
    rep = layercheck.check_layers(_stack(stacked(base, tube)))
    assert len(rep.suction_cups) == 1 and not rep.resin_traps
    # a bare tube standing on the platform: the platform seals its bore from below, so it is a cup too
    rep = layercheck.check_layers(_stack(stacked(tube)))
    assert len(rep.suction_cups) == 1 and rep.suction_cups[0].layer == 0


def test_tilted_channel_drains_and_has_no_islands():
    m, _ = tilted_channel()
    rep = layercheck.check_layers(_stack(m, 0.1))
    assert rep.counts == {"islands": 0, "resin_traps": 0, "suction_cups": 0}


def test_volume_and_time_estimates():
    st = _stack(box((10, 10, 5), (0, 0, 2.5)))
    assert layercheck.resin_ml(st) == pytest.approx(0.5)
    t, fast, slow = layercheck.lcd_time_s(st, 2.0, 20.0, 10, screen_area_mm2=200.0)
    assert fast == 0 and slow == 100 and t > 100 * 2.0
    t2 = layercheck.laser_time_s(st, 1000.0, 0.1)
    assert t2 == pytest.approx((100 * 40 + 100 * 1000) / 1000 + 6 * 100, rel=1e-6)


def test_winding_numbers():
    sq = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    w = layercheck.winding(np.array([[0.5, 0.5], [2.0, 0.5]]), sq, np.roll(sq, -1, axis=0))
    assert w.tolist() == [1, 0]
