"""Safe repairs (fabctl.mesh.repair): every fix counted, nothing unsafe touched, the result validates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from fabctl.mesh import topology as T
from fabctl.mesh.io import read_mesh
from fabctl.mesh.repair import repair
from tests.unit.mesh import guide_variants as gv

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"


def fixes(r) -> dict:
    return {f.name: f.count for f in r.fixes}


def left(r) -> dict:
    return {f.name: f.count for f in r.not_fixed}


def clean(V: np.ndarray, F: np.ndarray) -> bool:
    geo = T.Geometry(V, F)
    et = geo.edges
    k, lab = T.shells(F, et)
    vols = [s["volume_mm3"] for s in T.shell_summaries(geo, lab, k)]
    return (et.counts == 2).all() and not len(T.inconsistent_edges(et)) and min(vols) > 0


def load(rel: str):
    m = read_mesh(CORPUS / rel, "mm", check_extent=False)
    return m.vertices, m.faces


def test_clean_mesh_is_left_alone() -> None:
    b = trimesh.creation.box((3, 4, 5))
    r = repair(b.vertices, b.faces)
    assert not r.changed and r.fixes == [] and r.not_fixed == []
    assert np.array_equal(r.faces, b.faces)


def test_inside_out_cone_is_inverted() -> None:
    r = repair(*load("trimesh/cone.off"))
    assert fixes(r) == {"shells_inverted": 1} and clean(r.vertices, r.faces)


def test_flipped_faces_are_reoriented() -> None:
    r = repair(*load("trimesh/unitcube.off"))
    assert fixes(r) == {"faces_reoriented": 2} and clean(r.vertices, r.faces)


def test_duplicate_sliver_pair_goes_whole() -> None:
    r = repair(*load("trimesh/joined_tetrahedra.obj"))
    assert fixes(r) == {"duplicate_faces_removed": 2} and clean(r.vertices, r.faces)


def test_collinear_degenerate_faces_are_reported_not_removed() -> None:
    r = repair(*load("trimesh/br2.off"))
    assert not r.changed and left(r) == {"degenerate_faces": 5}


def test_non_manifold_edge_is_left_for_the_designer() -> None:
    r = repair(*load("trimesh/shared.STL"))
    assert not r.changed and left(r)["non_manifold_edges"] == 1 and left(r)["shell_count"] == 2


def test_guide_with_flips_and_a_hole_is_repaired() -> None:
    m, _ = gv.load_guide()
    V, F, _ = gv.flipped_faces(m.vertices, m.faces, k=6)
    V, F, _ = gv.hole(V, F, k=3)
    r = repair(V, F)
    # the hole took 3 of the 6 flipped faces with it
    assert fixes(r) == {"faces_reoriented": 3, "holes_filled": 1} and r.not_fixed == []
    assert clean(r.vertices, r.faces)
    rim = int((T.edge_table(F).counts == 1).sum())
    assert len(r.vertices) == len(V) + 1 and len(r.faces) == len(F) + rim  # a fan around the hole's centre


def test_large_hole_is_not_filled() -> None:
    m, _ = gv.load_guide()
    V, F, _ = gv.hole(m.vertices, m.faces, k=40)
    r = repair(V, F, max_hole_edges=8)
    assert "holes_filled" not in fixes(r) and left(r)["holes_not_filled"] >= 1


def test_input_arrays_are_not_modified() -> None:
    V, F = load("trimesh/unitcube.off")
    v0, f0 = V.copy(), F.copy()
    repair(V, F)
    assert np.array_equal(V, v0) and np.array_equal(F, f0)
