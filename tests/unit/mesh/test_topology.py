"""Topology checks (fabctl.mesh.topology) on constructed meshes and on the corpus's known defects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from fabctl.mesh import topology as T
from fabctl.mesh.io import read_mesh

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"


def load(rel: str, units: str = "mm"):
    m = read_mesh(CORPUS / rel, units, check_extent=False)
    return m.vertices, m.faces


def facts(V: np.ndarray, F: np.ndarray) -> dict:
    geo = T.Geometry(V, F)
    et = geo.edges
    k, lab = T.shells(F, et)
    sh = T.shell_summaries(geo, lab, k)
    return {
        "boundary": len(T.boundary_edges(et)), "non_manifold": len(T.non_manifold_edges(et)),
        "inconsistent": len(T.inconsistent_edges(et)), "nm_vertices": len(T.non_manifold_vertices(F, et)),
        "degenerate": len(T.degenerate_faces(geo)), "duplicate": len(T.duplicate_faces(F)), "shells": k,
        "volumes": [s["volume_mm3"] for s in sh], "closed": [s["closed"] for s in sh], "summaries": sh,
    }


def test_clean_box_is_clean() -> None:
    b = trimesh.creation.box((10, 20, 30))
    f = facts(np.asarray(b.vertices), np.asarray(b.faces))
    assert (f["boundary"], f["non_manifold"], f["inconsistent"], f["nm_vertices"]) == (0, 0, 0, 0)
    assert (f["degenerate"], f["duplicate"], f["shells"]) == (0, 0, 1)
    assert f["volumes"][0] == pytest.approx(6000.0)
    assert f["summaries"][0]["centroid_mm"] == pytest.approx([0, 0, 0], abs=1e-9)


def test_inside_out_box_has_negative_volume_but_is_closed_and_consistent() -> None:
    b = trimesh.creation.box((10, 10, 10))
    F = np.asarray(b.faces)[:, ::-1]
    f = facts(np.asarray(b.vertices), F)
    assert f["boundary"] == f["inconsistent"] == 0
    assert f["volumes"][0] == pytest.approx(-1000.0)


def test_bowtie_vertex_is_non_manifold() -> None:
    # two tetrahedra sharing one vertex only
    a = trimesh.creation.box((1, 1, 1))
    V = np.vstack([a.vertices, a.vertices + [1, 1, 1]])
    F = np.vstack([a.faces, a.faces + len(a.vertices)])
    # merge the touching corner (0.5, 0.5, 0.5)
    V = np.round(V, 9)
    u, inv = np.unique(V, axis=0, return_inverse=True)
    f = facts(u, inv.reshape(-1)[F])
    assert f["nm_vertices"] == 1
    assert f["shells"] == 2  # faces join across edges only: two shells touching at a point


def test_corpus_cone_is_inside_out() -> None:
    f = facts(*load("trimesh/cone.off"))
    assert f["boundary"] == f["inconsistent"] == 0
    assert f["volumes"][0] == pytest.approx(-0.257514, rel=1e-4)


def test_corpus_unitcube_flipped_faces() -> None:
    f = facts(*load("trimesh/unitcube.off"))
    assert f["boundary"] == 0 and f["inconsistent"] == 4


def test_corpus_br2_degenerate_faces() -> None:
    f = facts(*load("trimesh/br2.off"))
    assert f["degenerate"] == 5 and f["boundary"] == 0


def test_corpus_shared_edge_is_non_manifold_and_two_shells() -> None:
    f = facts(*load("trimesh/shared.STL"))
    # one edge used by four faces (pymeshlab counts its 4 face-edges as "4 non-manifold edges")
    assert f["non_manifold"] == 1 and f["nm_vertices"] == 2
    assert f["shells"] == 2 and f["volumes"] == pytest.approx([1.0, 1.0])


def test_corpus_joined_tetrahedra_duplicate_face() -> None:
    f = facts(*load("trimesh/joined_tetrahedra.obj"))
    assert f["duplicate"] == 1


def test_corpus_sphere_with_hole() -> None:
    f = facts(*load("assimp/sphereWithHole.stl"))
    assert f["boundary"] == 9 and f["closed"] == [False]


def test_corpus_spider_counts() -> None:
    # metrics.json: 56 degenerate, 36 duplicate, 20 edges with more than two faces, 72 boundary edges
    f = facts(*load("assimp/Spider_binary.stl"))
    assert (f["degenerate"], f["duplicate"], f["non_manifold"], f["boundary"]) == (56, 36, 20, 72)
    assert f["inconsistent"] > 0 and f["shells"] > 1


def test_two_objects_are_two_shells_with_centroids() -> None:
    f = facts(*load("trimesh/two_objects_mixed_case_names.stl"))
    assert f["shells"] == 2
    c = sorted(s["centroid_mm"][0] for s in f["summaries"])
    assert c[1] - c[0] == pytest.approx(5.0, abs=1e-6)


def test_shell_labels_largest_first() -> None:
    big = trimesh.creation.icosphere(subdivisions=2)
    small = trimesh.creation.box((0.1, 0.1, 0.1))
    F = np.vstack([small.faces, big.faces + len(small.vertices)])
    k, lab = T.shells(F, T.edge_table(F))
    assert k == 2 and (lab[len(small.faces):] == 0).all() and (lab[: len(small.faces)] == 1).all()


def test_rear_case_topology_is_clean() -> None:
    f = facts(*load("numpy-stl/rear_case.stl"))
    assert (f["boundary"], f["inconsistent"], f["non_manifold"], f["shells"]) == (0, 0, 0, 1)
    assert f["volumes"][0] == pytest.approx(38229.94, rel=1e-5)


@pytest.mark.parametrize("offset", [0, 2**31])
def test_edge_table_matches_a_plain_grouping(offset: int) -> None:
    # offset 2**31: the vertex indices are too big to pack the edge key with the half-edge index, so the
    # argsort path runs; both must group the half-edges exactly like a dictionary does
    s = trimesh.creation.icosphere(subdivisions=2)
    F = np.vstack([s.faces, s.faces[:7], s.faces[:3, ::-1]]).astype(np.int64) + offset
    et = T.edge_table(F)
    want: dict[tuple[int, int], list[int]] = {}
    for h, (a, b) in enumerate(zip(F.reshape(-1), F[:, [1, 2, 0]].reshape(-1), strict=True)):
        want.setdefault((min(a, b), max(a, b)), []).append(h)
    got = {tuple(e): et.order[et.first[k]:et.first[k] + et.counts[k]].tolist() for k, e in enumerate(et.edges)}
    assert {k: sorted(v) for k, v in got.items()} == want
    assert (et.edges[et.edge_of_half] == np.sort(np.column_stack([et.src, et.dst]), axis=1)).all()


def test_geometry_arrays_match_numpy() -> None:
    s = trimesh.creation.icosphere(subdivisions=2)
    geo = T.Geometry(np.asarray(s.vertices), np.asarray(s.faces))
    t = geo.triangles
    assert np.allclose(geo.cross, np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), rtol=0, atol=1e-15)
    assert np.allclose(geo.centroid, t.mean(axis=1), rtol=0, atol=1e-15)
