"""Self-intersections (fabctl.mesh.intersect): corpus counts, clean meshes, constructed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from fabctl.mesh import topology as T
from fabctl.mesh.intersect import TriangleGrid, self_intersections
from fabctl.mesh.io import read_mesh
from tests.unit.mesh.kernels import need

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "case-42" / "guide.stl"


def run(V: np.ndarray, F: np.ndarray):
    k, lab = T.shells(F, T.edge_table(F))
    return self_intersections(V, F, shell_labels=lab)


def no_shared_vertex(F: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    return ~(F[pairs[:, 0]][:, :, None] == F[pairs[:, 1]][:, None, :]).any(axis=(1, 2))


def test_rear_case_15_crossing_pairs() -> None:
    m = read_mesh(CORPUS / "numpy-stl/rear_case.stl", "mm")
    si = run(m.vertices, m.faces)
    disjoint = no_shared_vertex(m.faces, si.pairs)
    # the data README: 15 confirmed crossing pairs between faces with no common vertex, all in one shell
    assert int(disjoint.sum()) == 15
    assert not si.inter_shell.any()
    # the rest fold over a shared vertex or edge (also defects); every point is on the part
    assert len(si.pairs) == 27
    lo, hi = m.vertices.min(axis=0), m.vertices.max(axis=0)
    assert ((si.points >= lo - 1e-6) & (si.points <= hi + 1e-6)).all()
    # a handful of small spots, not scattered noise
    spots = np.unique(np.round(si.points / 3.0), axis=0)
    assert len(spots) <= 6


def test_tref_16_pairs() -> None:
    m = read_mesh(CORPUS / "trimesh/tref.off", "mm", check_extent=False)
    si = run(m.vertices, m.faces)
    assert len(si.pairs) == 16 and len(si.faces) == 16
    assert no_shared_vertex(m.faces, si.pairs).all()


@pytest.mark.parametrize("path", [EXAMPLE, CORPUS / "numpy-stl/CubeInvalidUnicode.stl",
                                  CORPUS / "trimesh/large_block_obb.STL"])
def test_clean_meshes_have_none(path: Path) -> None:
    m = read_mesh(path, "mm", check_extent=False)
    assert len(run(m.vertices, m.faces).pairs) == 0


def test_smooth_sphere_has_none() -> None:
    s = trimesh.creation.icosphere(subdivisions=5, radius=15.0)
    assert len(run(np.asarray(s.vertices), np.asarray(s.faces)).pairs) == 0


def test_two_overlapping_boxes_are_inter_shell() -> None:
    a = trimesh.creation.box((2, 2, 2))
    b = trimesh.creation.box((2, 2, 2))
    V = np.vstack([a.vertices, np.asarray(b.vertices) + [1.0, 0.5, 0.25]])
    F = np.vstack([a.faces, np.asarray(b.faces) + 8])
    si = run(V, F)
    assert len(si.pairs) > 0 and si.inter_shell.all()


def test_boxes_a_hair_apart_are_clean_and_face_contact_is_reported() -> None:
    a = trimesh.creation.box((2, 2, 2))
    V = np.vstack([a.vertices, np.asarray(a.vertices) + [2.001, 0.5, 0.0]])
    F = np.vstack([a.faces, np.asarray(a.faces) + 8])
    assert len(run(V, F).pairs) == 0
    # pressed face to face: coplanar overlapping faces of two shells are reported (inter-shell)
    V = np.vstack([a.vertices, np.asarray(a.vertices) + [2.0, 0.5, 0.0]])
    si = run(V, F)
    assert len(si.pairs) > 0 and si.inter_shell.all()
    assert np.allclose(si.points[:, 0], 1.0)


def test_coplanar_overlap_is_found() -> None:
    V = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [0.5, 0.5, 0], [3, 0.5, 0], [0.5, 3, 0]], dtype=float)
    F = np.array([[0, 1, 2], [3, 4, 5]])
    si = self_intersections(V, F)
    assert [tuple(p) for p in si.pairs] == [(0, 1)]


def test_pushed_vertex_crosses_the_far_wall() -> None:
    b = trimesh.creation.box((10, 10, 2)).subdivide().subdivide()
    V = np.asarray(b.vertices).copy()
    F = np.asarray(b.faces)
    top = np.flatnonzero((V[:, 2] > 0.99) & (np.abs(V[:, 0]) < 1e-9) & (np.abs(V[:, 1]) < 1e-9))
    assert len(top) == 1
    V[top[0], 2] = -3.0
    si = run(V, F)
    assert len(si.pairs) > 0 and not si.inter_shell.any()
    assert np.allclose(si.points[:, :2], 0.0, atol=2.6)


def test_grid_query_finds_overlapping_boxes() -> None:
    s = trimesh.creation.icosphere(subdivisions=3)
    tri = np.asarray(s.triangles)
    g = TriangleGrid.build(tri)
    q = np.array([[0.0, 0.0, 0.9]])
    qi, ti = g.query(q - 0.2, q + 0.2)
    lo, hi = tri.min(axis=1), tri.max(axis=1)
    brute = np.flatnonzero(((lo <= q + 0.2) & (hi >= q - 0.2)).all(axis=1))
    assert sorted(ti.tolist()) == brute.tolist() and (qi == 0).all()


def _soup(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A subdivided box (shared vertices, many neighbour pairs), a random triangle soup of mixed sizes through
    it and one long sliver spanning many cells: every broad-phase path at once."""
    rng = np.random.default_rng(seed)
    b = trimesh.creation.box((4, 4, 4)).subdivide().subdivide()
    V = [np.asarray(b.vertices)]
    F = [np.asarray(b.faces)]
    n = len(V[0])
    c = rng.uniform(-2.5, 2.5, (60, 1, 3))
    tri = c + rng.normal(0, 1, (60, 3, 3)) * rng.choice([0.05, 0.3, 1.0], (60, 1, 1))
    special = [
        [[-3.0, -0.1, 0.0], [3.0, 0.1, 0.05], [3.0, 0.12, 0.0]],  # a long sliver through the box
        [[0.3, 0.3, 2.0], [0.5, 0.3, 3.0], [0.3, 0.5, 3.0]],  # a corner touching the top face: no crossing
        [[0.2, 0.2, 2.0], [1.1, 0.2, 2.0], [0.2, 1.1, 2.0]],  # lying in the top face: coplanar overlap
        [[-0.7, -0.7, 1.5], [-0.2, -0.7, 2.5], [-0.7, -0.2, 2.5]],  # through the top face
        [[-2.0, 1.0, -1.0], [-2.0, 1.5, 1.0], [-2.0, 1.2, 0.5]],  # in the side face x = -2
    ]
    tri = np.concatenate([tri, special])
    V.append(tri.reshape(-1, 3))
    F.append(n + np.arange(3 * len(tri)).reshape(-1, 3))
    return np.vstack(V), np.vstack(F)


def _brute_candidates(V: np.ndarray, F: np.ndarray) -> set[tuple[int, int]]:
    t = V[F]
    lo, hi = t.min(axis=1), t.max(axis=1)
    i, j = np.triu_indices(len(F), 1)
    ov = ((lo[i] <= hi[j]) & (lo[j] <= hi[i])).all(axis=1)
    share = (F[i][:, :, None] == F[j][:, None, :]).any(axis=(1, 2))
    keep = ov & ~share
    return set(zip(i[keep].tolist(), j[keep].tolist(), strict=True))


@pytest.mark.parametrize("cell", [None, 0.15, 0.6, 3.0])
def test_grid_candidates_equal_brute_force_box_overlaps(cell: float | None) -> None:
    V, F = _soup()
    g = TriangleGrid.build(V[F], cell=cell)
    sw = g.sweep(F)
    # small chunks, so pairs of one cell are split over several chunks too
    got = [g.chunk_pairs(sw, a, b) for a, b in g.chunks(sw, size=97)]
    pairs = [tuple(sorted(p)) for i, j in got for p in zip(i.tolist(), j.tolist(), strict=True)]
    assert len(pairs) == len(set(pairs))  # each pair exactly once
    want = _brute_candidates(V, F)
    assert len(want) > 200
    assert set(pairs) == want


def test_self_intersections_equal_brute_force_narrow_phase() -> None:
    from fabctl.mesh.intersect import _test_pairs, contact_tolerance

    V, F = _soup(11)
    si = self_intersections(V, F)
    t = V[F]
    N = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    i, j = np.triu_indices(len(F), 1)
    hit, _ = _test_pairs(V, F, N, i, j, contact_tolerance(V))
    brute = {(a, b) for a, b in zip(i[hit].tolist(), j[hit].tolist(), strict=True)}
    got = {tuple(p) for p in si.pairs.tolist()}
    assert len(got) > 20
    # every pair the exact test finds over all m(m-1)/2 pairs, and nothing more
    assert got == brute
    # the last four: touching the top face (no crossing), lying in it, through it, lying in a side face
    m = len(F)
    hit_faces = {b for _, b in got}
    assert m - 4 not in hit_faces and {m - 3, m - 2, m - 1} <= hit_faces


def test_one_thread_and_many_give_the_same_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    import fabctl.mesh.intersect as I

    V, F = _soup(3)
    many = self_intersections(V, F)
    monkeypatch.setattr(I, "THREADS", 1)
    monkeypatch.setattr(I, "PAIR_CHUNK", 50)
    one = self_intersections(V, F)
    assert np.array_equal(many.pairs, one.pairs) and np.allclose(many.points, one.points)
    assert len(one.pairs) > 20


@pytest.mark.kernels
def test_the_compiled_broad_phase_is_built() -> None:
    """make install builds fabctl/mesh/_cellpairs.c; an install without it runs 5x slower, so it must not go
    unnoticed (FABCTL_MESH_KERNELS=0 turns it off on purpose)."""
    import fabctl.mesh.intersect as I

    need(I._cellpairs, "_cellpairs")
    assert I.compiled()


def _compiled_pairs(g: TriangleGrid, F: np.ndarray, size: int | None = None) -> list[tuple[int, int]]:
    import fabctl.mesh.intersect as I

    need(I._cellpairs, "_cellpairs")
    return [tuple(sorted(p)) for i, j in g.cell_pairs(F, size) for p in zip(i.tolist(), j.tolist(), strict=True)]


@pytest.mark.kernels
@pytest.mark.parametrize("cell", [None, 0.15, 0.6, 3.0, 100.0])
@pytest.mark.parametrize("size", [None, 1, 97])
def test_compiled_pairs_equal_brute_force_box_overlaps(cell: float | None, size: int | None) -> None:
    V, F = _soup()
    g = TriangleGrid.build(V[F], cell=cell)
    # size 1 is raised to the widest cell; 97 splits cells across chunks (a row is never split)
    pairs = _compiled_pairs(g, F, size)
    assert len(pairs) == len(set(pairs))
    want = _brute_candidates(V, F)
    assert len(want) > 200 and set(pairs) == want


@pytest.mark.kernels
def test_compiled_pairs_equal_the_numpy_sweep_on_the_example_guide() -> None:
    m = read_mesh(EXAMPLE, "mm")
    t = m.vertices[m.faces]
    # small cells put each box in several cells, a single cell (100 mm) sorts one crowded cell with qsort
    for cell in (None, 0.4, 100.0):
        g = TriangleGrid.build(t, cell=cell)
        sw = g.sweep(m.faces)
        numpy_pairs = {tuple(sorted(p)) for i, j in (g.chunk_pairs(sw, a, b) for a, b in g.chunks(sw))
                       for p in zip(i.tolist(), j.tolist(), strict=True)}
        compiled = _compiled_pairs(g, m.faces)
        assert len(compiled) == len(set(compiled)) and set(compiled) == numpy_pairs
        assert len(numpy_pairs) > 1000


@pytest.mark.kernels
def test_self_intersections_are_the_same_without_the_compiled_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    import fabctl.mesh.intersect as I

    need(I._cellpairs, "_cellpairs")
    m = read_mesh(CORPUS / "numpy-stl/rear_case.stl", "mm")
    V, F = _soup(5)
    for verts, faces in ((m.vertices, m.faces), (V, F)):
        fast = run(verts, faces)
        monkeypatch.setattr(I, "_cellpairs", None)
        slow = run(verts, faces)
        monkeypatch.undo()
        assert np.array_equal(fast.pairs, slow.pairs) and np.allclose(fast.points, slow.points)
        assert len(fast.pairs) >= 20


@pytest.mark.kernels
def test_compiled_loop_refuses_mismatched_arrays() -> None:
    import fabctl.mesh.intersect as I

    need(I._cellpairs, "_cellpairs")
    V, F = _soup()
    g = TriangleGrid.build(V[F])
    lo, hi = g.boxes32()
    fc = [np.ascontiguousarray(F[:, k], dtype=np.int64) for k in range(3)]
    out = [np.zeros(10 * len(g.tri), dtype=np.int64) for _ in range(2)]
    us, tri, first = g.ustart.astype(np.int64), g.tri.astype(np.int64), g.first

    def call(**kw):
        a = dict(us=us, tri=tri, first=first, lo=lo, hi=hi, fc=fc, out=out, cell=0, row=0) | kw
        return I._cellpairs.cell_pairs(a["us"], a["tri"], a["first"], *a["lo"], *a["hi"], *a["fc"], *a["out"],
                                       a["cell"], a["row"])

    n, cell, row = call()
    assert n > 0 and cell == len(us) - 1 and row == 0
    with pytest.raises(TypeError, match="lo0"):
        call(lo=[lo[0].astype(np.float64), lo[1], lo[2]])
    with pytest.raises(TypeError, match="tri"):
        call(tri=tri.astype(np.int32))
    with pytest.raises(ValueError, match="out of range"):
        call(tri=np.where(np.arange(len(tri)) == 3, len(F), tri))
    with pytest.raises(ValueError, match="box columns"):
        call(hi=[hi[0][:-1], hi[1], hi[2]])
    with pytest.raises(ValueError, match="span"):
        call(us=us[:-1])
    with pytest.raises(ValueError, match="widest"):
        call(out=[np.zeros(1, dtype=np.int64)] * 2)
    with pytest.raises(ValueError, match="start cell"):
        call(cell=len(us))
    with pytest.raises(ValueError, match="contiguous"):
        call(out=[out[0], np.zeros(20 * len(tri), dtype=np.int64)[::2]])


def _grid_fields(g: TriangleGrid) -> dict:
    return {k: getattr(g, k) for k in ("cell", "dims", "keys", "tri", "first", "ukeys", "ustart", "lo", "hi",
                                       "partial")}


@pytest.mark.kernels
@pytest.mark.parametrize("cell", [None, 0.05, 0.6, 100.0])
@pytest.mark.parametrize("where", ["soup", "guide", "guide near two spots"])
def test_compiled_grid_is_the_numpy_grid(cell: float | None, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``TriangleGrid.build`` with the compiled count and counting sort (``grid_count``, ``grid_fill``) and
    with numpy's expansion and sort: the same cell size and the same entries in the same order. The smallest
    cells give far more cells than entries, so the compiled build keeps numpy's sort: the same grid either way."""
    import fabctl.mesh.intersect as I

    need(I._cellpairs, "_cellpairs")
    if where == "soup":
        V, F = _soup()
    else:
        m = read_mesh(EXAMPLE, "mm")
        V, F = m.vertices, m.faces
        cell = 0.35 if cell == 0.05 else cell  # (0.05 mm cells over the whole guide: 600M entries)
    near = None
    if where == "guide near two spots":
        c = V[[10, 2000]]
        near = (c - 3.0, c + 3.0)
    fast = TriangleGrid.build(V[F], cell=cell, near=near)
    monkeypatch.setattr(I, "_cellpairs", None)
    slow = TriangleGrid.build(V[F], cell=cell, near=near)
    for k, a in _grid_fields(fast).items():
        b = _grid_fields(slow)[k]
        assert np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype, k
    assert len(fast.keys) >= len(np.unique(fast.tri)) > (10 if near else len(F) - 1)
    if near is not None:
        assert fast.partial and len(np.unique(fast.tri)) < len(F) // 4


@pytest.mark.kernels
def test_compiled_grid_fill_refuses_bad_arrays() -> None:
    import fabctl.mesh.intersect as I

    need(I._cellpairs, "_cellpairs")
    cols = [np.array([0.0, 1.0]), np.array([0.0, 0.0]), np.array([0.0, 0.0]), np.array([0.5, 2.5]),
            np.array([0.0, 0.0]), np.array([0.0, 0.0])]
    assert I._cellpairs.grid_count(*cols, 0.0, 0.0, 0.0, 1.0) == 3.0  # box 0 in cell 0, box 1 in cells 1 and 2
    none = np.zeros(0, dtype=np.int64)

    def fill(n: int = 3, dims: tuple = (3, 1, 1), ids=none, counts: int = 3):
        out = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.uint8)
        k = I._cellpairs.grid_fill(*cols, ids, 0.0, 0.0, 0.0, 1.0, *dims, *out, np.empty(counts, dtype=np.int64))
        return k, out

    k, (keys, tri, first) = fill()
    assert k == 3 and keys.tolist() == [0, 1, 2] and tri.tolist() == [0, 1, 1]
    assert first.tolist() == [7, 7, 6]  # box 1's second cell is not its first along x
    assert fill(ids=np.array([5, 9]))[1][1].tolist() == [5, 9, 9]
    with pytest.raises(ValueError, match="outside the grid"):
        fill(dims=(2, 1, 1), counts=2)
    with pytest.raises(ValueError, match="one item per entry"):
        fill(n=4)
    with pytest.raises(ValueError, match="one item per cell"):
        fill(counts=4)
    with pytest.raises(ValueError, match="ids"):
        fill(ids=np.array([1]))
    with pytest.raises(ValueError, match="ids must increase"):
        fill(ids=np.array([9, 5]))
    with pytest.raises(ValueError, match="one item per cell"):  # 2**32 * 2**32 cells wrap to 0 in 64 bits
        fill(dims=(2**32, 2**32, 1), counts=0)
    with pytest.raises(ValueError, match="cell size"):
        I._cellpairs.grid_count(*cols, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(TypeError, match="lo1"):
        I._cellpairs.grid_count(cols[0], cols[1].astype(np.float32), *cols[2:], 0.0, 0.0, 0.0, 1.0)
    occupied = np.array([0, 0, 1], dtype=bool)
    hit = np.empty(2, dtype=bool)
    assert I._cellpairs.near_hits(*cols, 0.0, 0.0, 0.0, 1.0, 3, 1, 1, occupied, hit) == 1
    assert hit.tolist() == [False, True]  # box 1 reaches cell 2
    with pytest.raises(ValueError, match="one item per cell"):
        I._cellpairs.near_hits(*cols, 0.0, 0.0, 0.0, 1.0, 4, 1, 1, occupied, hit)
    with pytest.raises(ValueError, match="hit"):
        I._cellpairs.near_hits(*cols, 0.0, 0.0, 0.0, 1.0, 3, 1, 1, occupied, hit[:1])
    with pytest.raises(ValueError, match="one item per cell"):
        I._cellpairs.near_hits(*cols, 0.0, 0.0, 0.0, 1.0, 2**32, 2**32, 1, np.zeros(0, dtype=bool), hit)
    T3 = np.arange(18, dtype=np.float64).reshape(2, 3, 3)[:, ::-1].copy()
    rows = np.empty((2, 3)), np.empty((2, 3))
    c6 = [np.empty(2) for _ in range(6)]
    I._cellpairs.boxes(T3, *rows, *c6)
    assert np.array_equal(rows[0], T3.min(axis=1)) and np.array_equal(rows[1], T3.max(axis=1))
    assert np.array_equal(np.column_stack(c6[:3]), rows[0]) and np.array_equal(np.column_stack(c6[3:]), rows[1])
    with pytest.raises(ValueError, match=r"\(m, 3, 3\)"):
        I._cellpairs.boxes(T3, rows[0], rows[1][:1], *c6)


@pytest.mark.kernels
def test_compiled_plane_filter_equals_the_numpy_one() -> None:
    """``plane_keep`` against ``_plane_reject`` over every box-overlapping pair of the soup and of the rear
    case, and over random pairs of the example guide (mostly far apart: dropped)."""
    import fabctl.mesh.intersect as I

    need(I._cellpairs, "_cellpairs")
    m = read_mesh(EXAMPLE, "mm")
    Vs, Fs = _soup(9)
    rng = np.random.default_rng(2)
    for V, F, pairs in ((Vs, Fs, None), (m.vertices, m.faces, rng.integers(0, len(m.faces), (20000, 2)))):
        t = np.ascontiguousarray(V[F])
        N = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
        if pairs is None:
            g = TriangleGrid.build(t)
            i, j = (np.concatenate(x) for x in zip(*g.cell_pairs(F), strict=True))
        else:
            i, j = pairs[:, 0].copy(), pairs[:, 1].copy()
        tol = I.contact_tolerance(V)
        pl = I._Planes.of(t, N)
        want = set(zip(*(a.tolist() for a in I._plane_reject(pl, i, j, tol)), strict=True))
        keep = np.zeros(len(i), dtype=bool)
        n = I._cellpairs.plane_keep(i, j, pl.unit, pl.off, t, keep, tol)
        got = set(zip(i[keep].tolist(), j[keep].tolist(), strict=True))
        assert n == keep.sum() == len(want) and got == want
        assert 0 < len(want) < len(i)


def test_a_grid_of_some_triangles_answers_queries_and_refuses_pair_search() -> None:
    """``TriangleGrid.build(near=...)`` registers only the triangles that can overlap the given boxes: its
    queries of those boxes find exactly what the full grid finds, and the pair search refuses it."""
    from fabctl.mesh.intersect import candidates

    m = read_mesh(EXAMPLE, "mm")
    t = m.vertices[m.faces]
    rng = np.random.default_rng(4)
    c = t[rng.integers(0, len(t), 300)].mean(axis=1)
    qlo, qhi = c - 0.6, c + 0.6
    full = TriangleGrid.build(t)
    part = TriangleGrid.build(t, near=(qlo, qhi))
    assert part.partial and not full.partial
    assert len(np.unique(part.tri)) < 0.5 * len(t)
    for a, b in ((qlo, qhi), (qlo[:17] + 0.3, qhi[:17] - 0.3)):
        got = sorted(zip(*(x.tolist() for x in part.query(a, b)), strict=True))
        want = sorted(zip(*(x.tolist() for x in full.query(a, b)), strict=True))
        assert got == want and len(want) > 50
    with pytest.raises(ValueError, match="every triangle"):
        candidates(m.vertices, m.faces, grid=part)


@pytest.mark.kernels
def test_compiled_float32_boxes_are_numpys(monkeypatch: pytest.MonkeyPatch) -> None:
    """``boxes32`` rounds outwards in C as numpy does: random coordinates (most not float32 numbers), exact
    float32 numbers (kept as they are) and the example guide's boxes; every float32 box holds its float64 box."""
    import fabctl.mesh.intersect as I

    need(I._cellpairs, "_cellpairs")
    rng = np.random.default_rng(3)
    pts = rng.uniform(-300, 300, (4000, 3, 3))
    pts[:500] = pts[:500].astype(np.float32)
    m = read_mesh(EXAMPLE, "mm")
    for name, t in (("random", pts), ("guide", m.vertices[m.faces])):
        g = TriangleGrid.build(t)
        fast = g.boxes32()
        monkeypatch.setattr(I, "_cellpairs", None)
        slow = g.boxes32()
        monkeypatch.undo()
        for a, b in zip(fast[0] + fast[1], slow[0] + slow[1], strict=True):
            assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b)
        assert all((fast[0][k] <= g.lo[:, k]).all() and (fast[1][k] >= g.hi[:, k]).all() for k in range(3))
        if name == "random":  # float32 numbers stay as they are
            assert (fast[0][0][:500] == g.lo[:500, 0]).all()
