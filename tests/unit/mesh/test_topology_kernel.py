"""The compiled whole-mesh passes (fabctl/mesh/_topology.c) against the numpy paths and scipy.

Each pass is compared with the code it replaces on the example guide, meshes of the corpus with real defects
(holes, non-manifold edges and vertices, several shells), and made-up meshes that reach the passes' corner
cases: a vertex with a hundred edges (the sort for crowded vertices), random triangle soups (edges used by
one to many faces, repeated corners), and graphs that are neither symmetric nor permutations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fabctl.mesh import intersect
from fabctl.mesh import topology as T
from fabctl.mesh.validate import topology_checks
from tests.unit.mesh import guide_variants as gv
from tests.unit.mesh.kernels import need

pytestmark = pytest.mark.kernels
CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
CORPUS_MESHES = ["assimp/Spider_binary.stl", "assimp/sphereWithHole.stl", "trimesh/joined_tetrahedra.obj",
                 "trimesh/cone.off", "trimesh/shared.STL", "numpy-stl/rear_case.stl", "trimesh/tref.off"]


def _kernel() -> None:
    need(T._topology, "_topology")


def _fan(k: int) -> tuple[np.ndarray, np.ndarray]:
    """A closed double cone of k sides: two apexes with k edges each."""
    a = np.linspace(0, 2 * np.pi, k, endpoint=False)
    V = np.vstack([np.column_stack([np.cos(a), np.sin(a), np.zeros(k)]), [[0, 0, 1.0], [0, 0, -1.0]]])
    r = np.arange(k)
    F = np.vstack([np.column_stack([r, (r + 1) % k, np.full(k, k)]),
                   np.column_stack([(r + 1) % k, r, np.full(k, k + 1)])])
    return V, F


def _soup(seed: int, n: int = 40, m: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Random triangles on few vertices: edges used by one to many faces, some faces with a repeated corner."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.integers(0, n, size=(m, 3))


def _meshes() -> list[tuple[str, np.ndarray, np.ndarray]]:
    mesh, _ = gv.load_guide()
    out = [("example guide", mesh.vertices, mesh.faces), ("double cone of 100", *_fan(100)),
           ("double cone of 7", *_fan(7))]
    out += [(f"soup {s}", *_soup(s)) for s in range(3)]
    for name in CORPUS_MESHES:
        m = trimesh.load(CORPUS / name, force="mesh")  # merged vertices, as intake gives them
        out.append((name, np.asarray(m.vertices, dtype=np.float64), np.asarray(m.faces, dtype=np.int64)))
    return out


MESHES = _meshes()


def _numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(T, "_topology", None)
    monkeypatch.setattr(intersect, "_topology", None)


def test_the_compiled_topology_passes_are_built() -> None:
    _kernel()
    assert T.compiled()


@pytest.mark.parametrize("name,V,F", MESHES, ids=[m[0] for m in MESHES])
def test_edge_table_is_the_numpy_table(name: str, V: np.ndarray, F: np.ndarray,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _kernel()
    fast = T.edge_table(F)
    _numpy(monkeypatch)
    slow = T.edge_table(F)
    for field in ("src", "dst", "edge_of_half", "edges", "counts", "first", "order"):
        a, b = getattr(fast, field), getattr(slow, field)
        assert a.dtype == b.dtype and np.array_equal(a, b), field
    if name == "double cone of 100":
        assert (fast.counts == 2).all() and len(fast.counts) == 300


@pytest.mark.parametrize("name,V,F", MESHES, ids=[m[0] for m in MESHES])
def test_face_geometry_is_the_numpy_geometry(name: str, V: np.ndarray, F: np.ndarray,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _kernel()
    fast = T.Geometry(V, F)
    got = {k: getattr(fast, k) for k in ("cross", "triangles", "area", "longest2")}  # cross first: one pass
    _numpy(monkeypatch)
    slow = T.Geometry(V, F)
    for k, a in got.items():
        b = getattr(slow, k)
        assert a.shape == b.shape, k
        assert np.array_equal(a, b) if k != "area" else np.allclose(a, b, rtol=1e-15, atol=0), k
    assert np.array_equal(T.degenerate_faces(fast), T.degenerate_faces(slow))


def _partition(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered by first appearance: equal for equal partitions, however each numbers them."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inv.reshape(-1)]


@pytest.mark.parametrize("seed", range(4))
def test_components_are_scipys_weak_components(seed: int) -> None:
    """Any graph, taken as undirected: the same partition as scipy's, labels in order of the lowest node."""
    _kernel()
    rng = np.random.default_rng(seed)
    n, d = [(1, 1), (50, 1), (2000, 3), (5000, 2)][seed]
    nbr = rng.integers(0, n, size=(n, d))
    if seed == 3:  # mostly self-loops: many components
        nbr = np.where(rng.random((n, d)) < 0.7, np.arange(n)[:, None], nbr)
    labels = np.empty(n, dtype=np.int64)
    k = T._topology.components(nbr, d, labels)
    rows = np.repeat(np.arange(n), d)
    kk, ref = connected_components(coo_matrix((np.ones(n * d), (rows, nbr.reshape(-1))), shape=(n, n)).tocsr(),
                                   directed=True, connection="weak")
    assert k == kk
    assert np.array_equal(labels, _partition(ref))  # numbered by lowest node already
    if seed == 3:
        assert k > n // 3


@pytest.mark.parametrize("name,V,F", MESHES, ids=[m[0] for m in MESHES])
def test_topology_checks_and_fans_are_the_numpy_ones(name: str, V: np.ndarray, F: np.ndarray,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Every topology check (verdict, value, message, locations), the shells and the uncertified fans."""
    _kernel()
    fast = topology_checks(T.Geometry(V, F))
    g = T.Geometry(V, F)
    fan_fast = intersect._fan_pairs(g.vertices, g.faces, g.cross, g.triangles)
    _numpy(monkeypatch)
    slow = topology_checks(T.Geometry(V, F))
    g = T.Geometry(V, F)
    fan_slow = intersect._fan_pairs(g.vertices, g.faces, g.cross, g.triangles)
    assert [c.model_dump() for c in fast[0]] == [c.model_dump() for c in slow[0]]
    # the shells' sums and centroids: the compiled areas may differ from numpy's in the last bit
    assert [(s["index"], s["triangles"], s["closed"]) for s in fast[1]] == \
        [(s["index"], s["triangles"], s["closed"]) for s in slow[1]]
    for a, b in zip(fast[1], slow[1], strict=True):
        assert a["volume_mm3"] == pytest.approx(b["volume_mm3"], rel=1e-12)
        assert a["area_mm2"] == pytest.approx(b["area_mm2"], rel=1e-12)
        assert np.allclose(a["centroid_mm"], b["centroid_mm"], rtol=1e-12, atol=1e-12)
    assert np.array_equal(fast[2], slow[2]) and fast[3] == slow[3]
    assert np.array_equal(fan_fast[0], fan_slow[0]) and np.array_equal(fan_fast[1], fan_slow[1])
    if name == "trimesh/joined_tetrahedra.obj":  # two tetrahedra on one vertex: its fan is not certified
        assert len(fan_fast[0]) and not next(c for c in fast[0] if c.name == "non_manifold_vertices").passed


def test_compiled_passes_refuse_bad_arrays() -> None:
    _kernel()
    V, F = _fan(9)
    m, n = len(F), len(V)
    k = T._topology
    out = [np.empty((m, 3, 3)), np.empty((m, 3)), np.empty(m), np.empty(m)]
    k.face_geometry(V, F, *out)
    with pytest.raises(ValueError, match="outside the vertices"):
        k.face_geometry(V, np.where(F == 3, n, F), *out)
    with pytest.raises(ValueError, match="must hold"):
        k.face_geometry(V, F, out[0], out[1], out[2][:-1], out[3])
    with pytest.raises(TypeError, match="faces"):
        k.face_geometry(V, F.astype(np.float64), *out)
    he = np.empty((4, 3 * m), dtype=np.int64)
    edges = np.empty((3 * m, 2), dtype=np.int64)
    assert k.half_edges(F, n, *he, edges) == 3 * m // 2
    with pytest.raises(ValueError, match=r"outside \[0, n\)"):
        k.half_edges(F, n - 1, *he, edges)
    with pytest.raises(ValueError, match=r"outside \[0, n\)"):
        k.half_edges(np.where(F == 0, -1, F), n, *he, edges)
    with pytest.raises(ValueError, match="3m items"):
        k.half_edges(F, n, he[0][:-1], he[1], he[2], he[3], edges)
    with pytest.raises(TypeError, match="order"):
        k.half_edges(F, n, he[0].astype(np.int32), he[1], he[2], he[3], edges)
    labels = np.empty(n, dtype=np.int64)
    with pytest.raises(ValueError, match="outside"):
        k.components(np.full((n, 2), n, dtype=np.int64), 2, labels)
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        k.components(np.zeros((n, 2), dtype=np.int64), 3, labels)
    with pytest.raises(ValueError, match=r"\(n, d\)"):  # n * d wraps to 0 in 64 bits: still refused
        k.components(np.zeros(0, dtype=np.int64), 2**62, np.empty(4, dtype=np.int64))
    assert k.components(np.zeros(0, dtype=np.int64), 1, np.empty(0, dtype=np.int64)) == 0
    ok = np.empty(n, dtype=bool)
    k.fan_certified(V, F, np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]]), ok)
    assert ok.all()  # a convex double cone: every fan turns once, one way
    with pytest.raises(ValueError, match="ok"):
        k.fan_certified(V, F, np.zeros((m, 3)), ok[:-1])
