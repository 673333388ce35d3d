"""Cross-sections: areas, planes through vertices/edges/faces, loops and holes, volume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from fabctl.errors import CheckFailed
from fabctl.mesh.slice import chain_cycles, layer_planes, slice_mesh
from tests.unit.slice.meshes import box, tilted_channel

PIXEL = 0.05


def test_layer_planes_mid_heights_and_count():
    z = layer_planes(5.0, 0.05, 0.05)
    assert len(z) == 100 and z[0] == pytest.approx(0.025) and z[-1] == pytest.approx(4.975)
    z = layer_planes(25.2104, 0.05, 0.05)          # PrusaSlicer slices the guide into 504 layers
    assert len(z) == 504
    z = layer_planes(1.0, 0.05, 0.1)
    assert z[0] == pytest.approx(0.05) and z[1] == pytest.approx(0.125)


def test_cylinder_layer_areas_equal_pi_r2_within_one_pixel_of_perimeter():
    r = 5.0
    m = trimesh.creation.cylinder(radius=r, height=8.0, sections=512)
    st = slice_mesh(m.vertices, m.faces, 0.05)
    assert st.n_layers == 160
    assert np.all(np.abs(st.layer_area_mm2 - math.pi * r * r) <= 2 * math.pi * r * PIXEL)
    assert st.volume_mm3 == pytest.approx(m.volume, rel=1e-9)
    assert np.all(st.loop_area_mm2 > 0) and st.open_chains == 0


def test_loops_are_ccw_outside_and_cw_holes_with_parents():
    m, _ = tilted_channel()
    st = slice_mesh(m.vertices, m.faces, 0.05)
    mid = st.n_layers // 2
    loops = range(st.layer_offsets[mid], st.layer_offsets[mid + 1])
    areas = st.loop_area_mm2[list(loops)]
    assert sorted(np.sign(areas)) == [-1, 1]
    hole = [k for k in loops if st.loop_area_mm2[k] < 0][0]
    outer = [k for k in loops if st.loop_area_mm2[k] > 0][0]
    assert st.loop_parent[hole] == outer and st.loop_parent[outer] == -1
    assert st.volume_mm3 == pytest.approx(m.volume, rel=1e-6)


def test_faces_and_vertices_exactly_on_a_plane_follow_the_half_open_rule():
    # a 2 x 2 block under a 1 x 1 block; the step face lies exactly on layer 2's plane (z = 0.625; all
    # values are binary fractions, so the coincidence is exact)
    lower = box((2, 2, 0.625), (0, 0, 0.3125))
    upper = box((1, 1, 1.375), (0, 0, 1.3125))
    m = trimesh.util.concatenate([lower, upper])
    st = slice_mesh(m.vertices, m.faces, 0.25)
    assert st.z_mm[2] == 0.625 and m.vertices[:, 2].tolist().count(0.625) >= 8
    a = st.layer_area_mm2
    # the plane is nudged infinitesimally down: the step face counts as above it
    assert a[1] == pytest.approx(4.0) and a[2] == pytest.approx(4.0) and a[3] == pytest.approx(1.0)
    assert st.open_chains == 0


def test_edge_exactly_on_a_plane():
    # a cube turned 45 degrees about x: one edge lies at z = top of its lowest corner, and we put the
    # middle edges exactly on a slicing plane
    b = trimesh.creation.box((2, 2, 2))
    b.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 4, [1, 0, 0]))
    b.apply_translation([0, 0, -b.bounds[0, 2]])
    h = b.bounds[1, 2]
    st = slice_mesh(b.vertices, b.faces, h / 2 / 10.5)           # plane 10 lies on the middle edges
    assert st.z_mm[10] == pytest.approx(h / 2)
    assert st.open_chains == 0
    assert st.layer_area_mm2[10] == pytest.approx(2 * h, rel=1e-9)   # full width x the diagonal
    assert st.volume_mm3 == pytest.approx(8.0, rel=0.01)


def test_part_must_stand_on_the_platform():
    b = box((1, 1, 1), (0, 0, 5))
    with pytest.raises(CheckFailed):
        slice_mesh(b.vertices, b.faces, 0.05, placement_mm=np.zeros(3))


def test_chain_cycles_drops_open_chains():
    kf = np.array([1, 2, 3, 10, 11])
    kt = np.array([2, 3, 1, 11, 12])
    keep, label, rank = chain_cycles(kf, kt)
    assert keep.tolist() == [True, True, True, False, False]
    assert label[:3].tolist() == [0, 0, 0] and rank[:3].tolist() == [0, 1, 2]
