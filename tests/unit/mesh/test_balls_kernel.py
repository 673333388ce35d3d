"""The compiled shrinking-ball loop (fabctl/mesh/_balls.c) against a brute-force oracle and the numpy loop.

The broad phase's compiled loop is tested in test_intersect.py. Both kernels are built by ``make install``;
``FABCTL_MESH_KERNELS=0`` runs the numpy paths, and ``make test`` runs the mesh tests that way too.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

import fabctl.mesh.thickness as TH
from fabctl.mesh import topology as T
from tests.unit.mesh.kernels import need

FACING = TH.FACING_COS
pytestmark = pytest.mark.kernels


def _kernel() -> None:
    need(TH._balls, "_balls")


def test_the_compiled_ball_loop_is_built() -> None:
    _kernel()
    assert TH.compiled()


def _two_noisy_plates(seed: int, n: int = 1500, gap: float = 2.0) -> TH.Samples:
    """Samples of two facing, slightly wavy plates 30 x 30 mm, ``gap`` apart (normals outwards)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 30, (2 * n, 2))
    z = np.where(np.arange(2 * n) < n, 0.0, gap) + 0.2 * np.sin(xy[:, 0] / 3.0) + rng.normal(0, 0.02, 2 * n)
    pts = np.column_stack([xy, z])
    nrm = np.zeros_like(pts)
    nrm[:n, 2] = -1.0
    nrm[n:, 2] = 1.0
    nrm += rng.normal(0, 0.05, nrm.shape)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    return TH.Samples(pts, nrm, np.arange(2 * n), spacing=float(np.sqrt(900.0 / n)))


def _brute(S: TH.Samples, cap_r: float) -> np.ndarray:
    """The largest ball tangent at each sample, no bigger than cap_r, holding no facing sample: every pair."""
    P, N = S.points, S.normals
    d = P[:, None, :] - P[None, :, :]
    den = 2.0 * np.einsum("ijk,ik->ij", d, N)
    num = np.einsum("ijk,ijk->ij", d, d)
    facing = N @ N.T <= -FACING
    with np.errstate(divide="ignore", invalid="ignore"):
        rn = np.where(facing & (den > 0), num / np.where(den > 0, den, 1.0), np.inf)
    best = rn.min(axis=1)
    return np.where(best < cap_r * (1 - 1e-9), best, cap_r)


@pytest.mark.parametrize("seed,cube", [(1, None), (2, None), (3, 0.5), (4, 1.0)])
def test_balls_equal_the_brute_force_oracle(seed: int, cube: float | None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """One level: the loop must find the facing sample giving the smallest ball among all of them, whether
    the balls start at the cap or grow from far too small (the numpy loop looks at the 8, then 32, nearest
    and may stop higher). Small cubes make every ball span many of them."""
    _kernel()
    if cube is not None:
        monkeypatch.setattr(TH, "CUBE", cube)
    S = _two_noisy_plates(seed)
    cap_r = 4.0 * TH.R_FINE * S.spacing  # a single level serves every ball up to the cap
    want = _brute(S, cap_r)
    b = TH._Buckets.of([S])
    r, contact = b.shrink(S.points, S.normals, np.full(len(S.points), cap_r), 0, S.spacing, cap_r, FACING)
    assert np.allclose(r, want, rtol=1e-12, atol=1e-12)
    # grown from 0.05 mm, a ball doubles past the wall and shrinks back: the same smallest ball
    grown, _ = b.shrink(S.points, S.normals, np.full(len(S.points), 0.05), 0, S.spacing, cap_r, FACING)
    assert np.allclose(grown, want, rtol=1e-12, atol=1e-12)
    # the plates are about 2 mm apart: balls of about 1 mm, each touching the other plate
    assert 0.8 < np.median(r) < 1.2 and not np.isnan(contact).any()
    touched = np.linalg.norm(contact - S.points, axis=1)
    assert (touched > 1.0).all()
    # the numpy loop can only miss a sample, never invent one
    tree = TH.cKDTree(S.points)
    r_np, _ = TH._balls_numpy(S.points, S.normals, np.full(len(S.points), cap_r), [S], [tree], cap_r, FACING)
    assert (r_np >= r - 1e-12).all()


def test_nothing_facing_leaves_the_ball_at_the_cap() -> None:
    _kernel()
    S = _two_noisy_plates(5)
    one = TH.Samples(S.points[:1500], S.normals[:1500], S.face[:1500], S.spacing)  # the lower plate alone
    b = TH._Buckets.of([one])
    r, contact = b.shrink(one.points, one.normals, np.full(1500, 0.1), 0, one.spacing, 3.0, FACING)
    assert (r == 3.0).all() and np.isnan(contact).all()


def test_compiled_and_numpy_thickness_agree_on_analytic_walls(monkeypatch: pytest.MonkeyPatch) -> None:
    _kernel()
    for t, shape in ((1.0, trimesh.creation.box((30, 30, 1.0))),
                     (2.0, trimesh.creation.annulus(r_min=5.0, r_max=7.0, height=20.0, sections=128))):
        g = T.Geometry(np.asarray(shape.vertices, dtype=np.float64), np.asarray(shape.faces, dtype=np.int64))
        fast = TH.wall_thickness(g, cap=10.0, refine_below=1.5)
        monkeypatch.setattr(TH, "_balls", None)
        slow = TH.wall_thickness(g, cap=10.0, refine_below=1.5)
        monkeypatch.undo()
        assert abs(fast.minimum - t) <= 0.05 and abs(slow.minimum - t) <= 0.05
        assert abs(fast.minimum - slow.minimum) < 1e-6


def test_compiled_ball_loop_refuses_bad_arrays() -> None:
    _kernel()
    S = _two_noisy_plates(6, n=200)
    b = TH._Buckets.of([S])
    q = len(S.points)
    good = dict(P=S.points, N=S.normals, r0=np.full(q, 1.0), SP=b.points, SN=b.normals, keys=b.keys,
                cstart=b.cstart, lcells=b.lcells, origin=b.origin, dims=b.dims, out_r=np.zeros(q),
                out_c=np.zeros(q, dtype=np.int64), base=0, h=S.spacing, fine=TH.R_FINE, cube=TH.CUBE, cap=3.0)

    def call(**kw):
        a = good | kw
        return TH._balls.shrink(a["P"], a["N"], a["r0"], a["SP"], a["SN"], a["keys"], a["cstart"], a["lcells"],
                                a["origin"], a["dims"], a["out_r"], a["out_c"], a["base"], a["h"], a["fine"],
                                a["cube"], a["cap"], FACING, 60)

    call()
    assert (good["out_r"] > 0).all()
    with pytest.raises(ValueError, match="P and N"):
        call(N=S.normals[:-1])
    with pytest.raises(ValueError, match="base level"):
        call(base=1)
    with pytest.raises(ValueError, match="starting radius"):
        call(r0=np.zeros(q))
    with pytest.raises(ValueError, match="cstart"):
        call(cstart=b.cstart[:-1])
    with pytest.raises(ValueError, match="parameter"):
        call(cube=0.0)
    with pytest.raises(TypeError, match="keys"):
        call(keys=b.keys.astype(np.float64))
    with pytest.raises(TypeError, match="out_r"):
        call(out_r=np.zeros(q, dtype=np.float32))


@pytest.mark.parametrize("variant", ["as designed", "thin patch", "self-intersection"])
def test_validate_gives_the_same_verdicts_with_and_without_the_kernels(variant: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole validation of the example guide and two broken variants: every check's verdict and value,
    the exact minimum wall and the self-intersecting pairs agree; the report says which loops ran."""
    from fabctl import profiles
    from fabctl.mesh import intersect
    from fabctl.mesh.types import MeshInput
    from fabctl.mesh.validate import validate_details
    from tests.unit.mesh import guide_variants as gv

    _kernel()
    mesh, plan = gv.load_guide()
    if variant != "as designed":
        make = gv.thin_patch if variant == "thin patch" else gv.self_intersection
        V, F, _ = make(mesh.vertices.copy(), mesh.faces.copy())
        mesh = MeshInput(V, F, "0" * 64, "stl-binary", "mm", "declared")
    resin, printer = profiles.resin(profiles.DEFAULT_RESIN), profiles.printer(profiles.DEFAULT_PRINTER)
    fast, fast_d = validate_details(mesh, plan, resin, printer)
    monkeypatch.setattr(TH, "_balls", None)
    monkeypatch.setattr(intersect, "_cellpairs", None)
    monkeypatch.setattr(intersect, "_topology", None)
    monkeypatch.setattr(T, "_topology", None)
    slow, slow_d = validate_details(mesh, plan, resin, printer)
    assert fast.settings.kernels == "compiled" and slow.settings.kernels == "numpy"
    assert [(c.name, c.passed, c.value) for c in fast.checks] == [(c.name, c.passed, c.value) for c in slow.checks]
    assert fast.ok == slow.ok and fast.min_wall_thickness_mm == slow.min_wall_thickness_mm
    assert np.array_equal(fast_d.intersections.pairs, slow_d.intersections.pairs)
    assert fast.ok == (variant == "as designed")


def test_compiled_exact_pass_equals_the_numpy_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact pass (``_refine``) in C and in numpy (trimesh's closest points): the same radii and contacts
    to rounding, on the example guide and its thin-patch variant (whose minimum the pass sets)."""
    import functools

    from tests.unit.mesh import guide_variants as gv

    _kernel()
    mesh, _ = gv.load_guide()
    V, F, _spot = gv.thin_patch(mesh.vertices.copy(), mesh.faces.copy())
    for verts, faces in ((mesh.vertices, mesh.faces), (V, F)):
        g = T.Geometry(verts, faces)
        fast = TH.wall_thickness(g, cap=10.0, refine_below=1.5)
        monkeypatch.setattr(TH, "_refine", functools.partial(TH._refine, compiled=False))
        slow = TH.wall_thickness(g, cap=10.0, refine_below=1.5)
        monkeypatch.undo()
        assert fast.refined.sum() >= 1000 and np.array_equal(fast.refined, slow.refined)
        assert np.allclose(fast.value, slow.value, rtol=0, atol=1e-9)
        both = ~np.isnan(slow.contact[:, 0])
        assert np.array_equal(both, ~np.isnan(fast.contact[:, 0]))
        assert np.allclose(fast.contact[both], slow.contact[both], rtol=0, atol=1e-9)
        # the exact pass lowered the minimum below the sample pass's: it did work here
        assert fast.minimum < 3.0


def test_closest_points_of_the_compiled_pass_match_trimesh() -> None:
    """Every region of a triangle (3 corners, 3 edges, the face) for the C closest point: one candidate
    triangle per ball, the ball's contact is the closest point wherever it shrinks."""
    from trimesh.triangles import closest_point

    _kernel()
    rng = np.random.default_rng(7)
    tri = rng.normal(0, 1, (400, 3, 3))
    q = len(tri)
    N = np.tile([0.0, 0.0, 1.0], (q, 1))
    # each ball's centre is a random point near its triangle; p is above it, r big enough to reach it
    centre = tri.mean(axis=1) + rng.normal(0, 1.5, (q, 3))
    r = np.full(q, 50.0)
    P = centre + r[:, None] * N
    out_r, out_c = r.copy(), np.full((q, 3), np.nan)
    TH._balls.refine(P, N, r.copy(), np.arange(q + 1, dtype=np.int64), np.arange(q, dtype=np.int64),
                     np.ascontiguousarray(tri), out_r, out_c, 1)
    want = closest_point(tri, centre)
    shrunk = ~np.isnan(out_c[:, 0])
    assert shrunk.sum() > 300  # a closest point is below p for most: the ball shrinks once to it
    assert np.allclose(out_c[shrunk], want[shrunk], atol=1e-9)


def test_compiled_exact_pass_refuses_bad_arrays() -> None:
    _kernel()
    tri = np.random.default_rng(8).normal(0, 1, (5, 3, 3))
    P, N, r = np.zeros((2, 3)), np.tile([0.0, 0.0, 1.0], (2, 1)), np.ones(2)
    start, ids = np.array([0, 3, 5], dtype=np.int64), np.array([0, 1, 2, 3, 4], dtype=np.int64)

    def call(**kw):
        a = dict(P=P, N=N, r=r, start=start, ids=ids, T=tri, out_r=r.copy(), out_c=np.zeros((2, 3))) | kw
        TH._balls.refine(a["P"], a["N"], a["r"], a["start"], a["ids"], a["T"], a["out_r"], a["out_c"], 5)

    call()
    with pytest.raises(ValueError, match="out of range"):
        call(ids=np.array([0, 1, 2, 3, 5], dtype=np.int64))
    with pytest.raises(ValueError, match="span"):
        call(start=np.array([0, 3, 4], dtype=np.int64))
    with pytest.raises(ValueError, match="q \\+ 1"):
        call(start=np.array([0, 5], dtype=np.int64))
    with pytest.raises(ValueError, match="\\(m, 3, 3\\)"):
        call(T=tri.reshape(-1)[:-1].copy())
    with pytest.raises(TypeError, match="out_c"):
        call(out_c=np.zeros((2, 3), dtype=np.float32))
