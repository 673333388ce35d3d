"""Wall thickness (fabctl.mesh.thickness) on shapes of known thickness: plates, tubes, spherical shells.

Requirement (issue 3): the reported minimum is within 0.05 mm of the truth from 0.5 to 5 mm.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from fabctl.mesh import topology as T
from fabctl.mesh.thickness import thin_patches, wall_thickness

THICKNESSES = [0.5, 1.0, 2.0, 3.0, 5.0]
TOL = 0.05


def geo(m: trimesh.Trimesh) -> T.Geometry:
    return T.Geometry(np.asarray(m.vertices, dtype=float), np.asarray(m.faces))


def plate(t: float) -> trimesh.Trimesh:
    return trimesh.creation.box((20.0, 30.0, t))


def tube(t: float) -> trimesh.Trimesh:
    return trimesh.creation.annulus(r_min=3.0, r_max=3.0 + t, height=10.0, sections=128)


def shell(t: float) -> trimesh.Trimesh:
    outer = trimesh.creation.icosphere(subdivisions=4, radius=10.0)
    inner = trimesh.creation.icosphere(subdivisions=4, radius=10.0 - t)
    inner.invert()  # normals point into the cavity: out of the material
    return trimesh.util.concatenate([outer, inner])


@pytest.mark.parametrize("t", THICKNESSES)
@pytest.mark.parametrize("shape", [plate, tube, shell], ids=["plate", "tube", "shell"])
def test_minimum_within_tolerance(shape, t: float) -> None:
    th = wall_thickness(geo(shape(t)))
    assert abs(th.minimum - t) <= TOL, (th.minimum, t)
    # the walls themselves read as the wall thickness, not just one sample
    walls = th.value[th.value < t + 0.5]
    assert len(walls) > 0.4 * len(th.value)
    assert np.median(walls) == pytest.approx(t, abs=max(TOL, 0.03 * t))


def test_sharp_edges_do_not_thin_a_plate() -> None:
    th = wall_thickness(geo(plate(3.0)))
    # samples next to the 90 degree edges keep the plate's thickness (or more), never less
    assert th.value.min() >= 3.0 - 1e-6


def test_fin_on_plate_is_found_where_it_is() -> None:
    base = trimesh.creation.box((30.0, 30.0, 3.0))
    fin = trimesh.creation.box((0.6, 20.0, 6.0))
    fin.apply_translation([5.0, 0.0, 4.5])
    m = trimesh.util.concatenate([base, fin])
    m = trimesh.Trimesh(m.vertices, m.faces)  # two boxes touching: still two shells, fine for thickness
    th = wall_thickness(geo(m))
    assert th.minimum == pytest.approx(0.6, abs=TOL)
    p = th.samples.points[th.argmin]
    assert abs(p[0] - 5.0) <= 0.31 and p[2] > 1.5


def test_channel_wall_is_boss_minus_bore() -> None:
    # a 12 mm boss with a 3.2 mm bore: the bore's wall reads 4.4 mm, not the bore's diameter
    m = trimesh.creation.annulus(r_min=1.6, r_max=6.0, height=15.0, sections=96)
    th = wall_thickness(geo(m))
    assert th.minimum == pytest.approx(4.4, abs=TOL)


def test_thin_patches_grouped_with_area_and_centroid() -> None:
    # two separate thin fins on a thick base
    base = trimesh.creation.box((40.0, 40.0, 4.0))
    fins = []
    for x in (-10.0, 10.0):
        f = trimesh.creation.box((0.5, 10.0, 5.0))
        f.apply_translation([x, 0.0, 4.5])
        fins.append(f)
    m = trimesh.util.concatenate([base, *fins])
    g = geo(m)
    th = wall_thickness(g, refine_below=1.0)
    patches = thin_patches(th, 1.0, float(g.area.sum()))
    assert len(patches) == 2
    xs = sorted(p.centroid[0] for p in patches)
    assert xs == pytest.approx([-10.0, 10.0], abs=0.5)
    for p in patches:
        assert p.min_thickness == pytest.approx(0.5, abs=TOL)
        # each fin: two 10 x 5 mm sides thin, plus bits of its top and ends
        assert 80.0 <= p.area <= 140.0


def test_vertex_values_for_colouring() -> None:
    g = geo(plate(2.0))
    th = wall_thickness(g)
    v = th.at_points(g.vertices)
    assert v.shape == (len(g.vertices),) and np.isfinite(v).all()
