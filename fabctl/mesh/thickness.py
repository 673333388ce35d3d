"""Wall thickness at every surface sample: the diameter of the largest ball tangent to the surface there.

Definition. At a surface point p with outward normal n, grow a ball inward, tangent to the surface at p
(centre ``p - r n``), until it touches a part of the surface that *faces* p: a point q whose outward normal
points back at p (``n_q . n <= -FACING_COS``, i.e. within 50 degrees of ``-n``). The thickness is 2 r. On a
plate, tube or shell this is the wall thickness; at a sharp convex edge the ball is not stopped by the
neighbouring face (it does not face p), so a 90 degree box edge keeps the thickness of the plate, while a
wedge sharper than 50 degrees does thin out towards its tip, as it should. Inside a needle channel the ball
from the bore grows into the boss wall and stops at the boss's outer surface.

Algorithm ("shrinking ball", Ma et al. 2012, with the facing filter):

1. Samples: deterministic, area-proportional points on the faces (about one per ``spacing``² of area, the
   face normal with each), so the cost follows the area, not the triangle count.
2. Sample pass (``sample_pass``), coarse to fine over sample sets of spacing h, 2h, 4h...: a ball that holds
   no facing sample doubles (up to ``cap / 2``); while a facing sample q lies inside it, it shrinks to the
   ball through p and q, ``r = |p - q|² / (2 n . (p - q))``. Balls only shrink once they hold one, so every
   sample converges. The compiled loop (``_balls.shrink``, fabctl/mesh/_balls.c) looks at every sample of the
   ball's level inside it, through cubes of samples; the numpy loop (``_balls_numpy``, scipy ``cKDTree``)
   looks at the 8, then 32, nearest, and can stop at a ball that still holds a farther facing sample.
3. Exact pass on the triangles for every sample whose coarse thickness is near the minimum or below
   ``refine_below``: the same iteration against the exact closest point of every facing triangle whose box
   overlaps the ball (``TriangleGrid.query`` on a grid of only the triangles near those samples' contacts,
   then ``_balls.refine`` or ``trimesh.triangles.closest_point``). The sample pass can only overestimate
   (fewer points, emptier ball), so this is what makes the reported minimum exact to the mesh.

Thickness above ``cap`` is reported as ``cap``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from trimesh.triangles import closest_point

from fabctl.mesh.intersect import TriangleGrid
from fabctl.mesh.kernels import load
from fabctl.mesh.topology import Geometry

_balls = load("_balls")  # the shrinking balls' loops, compiled (None: the numpy loops below)


def compiled() -> bool:
    """Whether the shrinking balls run the compiled loop (``_balls``)."""
    return _balls is not None

FACING_COS = 0.643  # cos 50 degrees
TARGET_SAMPLES = 60_000
MAX_SAMPLES = 250_000
SPACING_MIN_MM = 0.12
SPACING_MAX_MM = 0.5
K_LEVELS = (8, 32)
R_FINE = 6.0
CUBE = 6.0  # the compiled loop buckets each level in cubes of CUBE spacings
REFINE_BATCH = 1000
REFINE_MAX = 4_000
MAX_ITER = 60
PARALLEL_MIN = 20_000
_R2 = (0.7548776662466927, 0.5698402909980532)  # plastic-number (R2) low-discrepancy sequence


@dataclass
class Samples:
    """points : (s, 3) on the surface; normals : (s, 3) outward unit face normals; face : (s,) their faces."""

    points: np.ndarray
    normals: np.ndarray
    face: np.ndarray
    spacing: float


@dataclass
class Thickness:
    """The thickness field.

    samples : where it was measured; value : (s,) thickness (mm, capped at ``cap``); contact : (s, 3) where
    each ball touches the facing wall (NaN where capped); refined : (s,) exact pass done; cap : mm
    """

    samples: Samples
    value: np.ndarray
    contact: np.ndarray
    refined: np.ndarray
    cap: float

    @property
    def minimum(self) -> float:
        return float(self.value.min()) if len(self.value) else float("nan")

    @property
    def argmin(self) -> int:
        return int(np.argmin(self.value))

    def at_points(self, points: np.ndarray) -> np.ndarray:
        """(k,) thickness of the nearest sample to each point (k, 3): for vertex or face colouring."""
        if len(self.value) == 0:
            return np.full(len(points), np.nan)
        _, i = cKDTree(self.samples.points).query(points, workers=-1)
        return self.value[i]


def default_spacing(total_area: float) -> float:
    """Sample spacing: about ``TARGET_SAMPLES`` samples, kept within [SPACING_MIN_MM, SPACING_MAX_MM], but never
    more than ``MAX_SAMPLES`` (a part far bigger than a guide gets a coarser spacing)."""
    area = max(total_area, 1e-12)
    h = float(np.clip(np.sqrt(area / TARGET_SAMPLES), SPACING_MIN_MM, SPACING_MAX_MM))
    return max(h, float(np.sqrt(area / MAX_SAMPLES)))


def surface_samples(geo: Geometry, spacing: float) -> Samples:
    """Deterministic samples, one per ``spacing``² of area (systematic along the faces' cumulative area).

    Within a face the j-th sample is at the R2 low-discrepancy point j (the first at the centroid), folded
    into the triangle. Degenerate faces get none.
    """
    area = geo.area  # zero exactly where the face has no normal (Geometry.normal)
    a0 = spacing * spacing
    cum = geo.cumulative_area
    total = float(cum[-1]) if len(cum) else 0.0
    n = int(total / a0)
    m = len(area)
    if n == 0:
        cnt = np.zeros(m, dtype=np.int64)
        cnt[np.argmax(area)] = 1 if m and area.max() > 0 else 0
    else:
        u = (np.arange(n) + 0.5) * (total / n)
        hit = np.minimum(np.searchsorted(cum, u, side="right"), m - 1)
        cnt = np.bincount(hit, minlength=m)
        # every face of more than half a sample's area gets at least one
        cnt = np.maximum(cnt, (area > 0.5 * a0).astype(np.int64))
    face = np.repeat(np.arange(m), cnt)
    j = np.arange(len(face)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    s = (0.5 + j[:, None] * np.array(_R2)) % 1.0
    flip = s.sum(axis=1) > 1.0
    s[flip] = 1.0 - s[flip]
    centre = j == 0
    s[centre] = 1.0 / 3.0
    t = np.take(geo.triangles, face, axis=0)
    pts = t[:, 0] + s[:, :1] * (t[:, 1] - t[:, 0]) + s[:, 1:] * (t[:, 2] - t[:, 0])
    return Samples(pts, np.take(geo.normal, face, axis=0), face, float(spacing))


def _workers(n: int) -> int:
    """k-d tree query threads: all cores for big batches; one for small ones (starting threads costs more)."""
    return -1 if n >= PARALLEL_MIN else 1


def _ball_radius(p: np.ndarray, n: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Radius of the ball tangent at p (normal n, centre p - r n) through q: broadcast over leading dims."""
    d = p - q
    den = 2.0 * np.einsum("...j,...j->...", d, n)
    num = np.einsum("...j,...j->...", d, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)


def _level_of(r: np.ndarray, h0: float, levels: int) -> np.ndarray:
    """The sample level for balls of radius r: level l has spacing h0 * 2**l and serves r <= R_FINE * h0 * 2**l."""
    lv = np.ceil(np.log2(np.maximum(r / (R_FINE * h0), 1.0))).astype(np.int64)
    return np.minimum(lv, levels - 1)


def _balls_numpy(P: np.ndarray, N: np.ndarray, r: np.ndarray, sets: list[Samples], trees: list[cKDTree],
                 cap_r: float, facing_cos: float) -> tuple[np.ndarray, np.ndarray]:
    """Shrinking balls at points P (q, 3) with normals N from initial radii r: (q,) radius, (q, 3) contact.

    A ball that holds no facing sample doubles (up to ``cap_r``) until it does, then shrinks through the
    facing samples it holds until it holds none. A ball of radius r is tested against the sample set of
    spacing about r / R_FINE, which keeps every k-d query local. The k nearest samples to the centre are
    examined; when all k lie inside the ball without a facing one, k is raised once, then it is accepted.
    """
    q = len(P)
    h0 = sets[0].spacing
    nlev = len(sets)
    r = r.copy()
    contact = np.full((q, 3), np.nan)
    klev = np.zeros(q, dtype=np.int64)
    growing = np.ones(q, dtype=bool)
    active = np.arange(q)
    for _ in range(MAX_ITER):
        if not len(active):
            break
        nxt = []
        slev = _level_of(r[active], h0, nlev)
        kk = klev[active]
        for sl in np.unique(slev):
            for kl in np.unique(kk[slev == sl]):
                act = active[(slev == sl) & (kk == kl)]
                S = sets[sl]
                k = min(K_LEVELS[kl], len(S.points))
                c = P[act] - r[act, None] * N[act]
                # only samples inside a ball matter: the largest ball of the group bounds the search (missing
                # neighbours come back at infinite distance, index len(points))
                bound = float(r[act].max()) * (1.0 + 1e-9)
                dist, nb = trees[sl].query(c, k=k, distance_upper_bound=bound, workers=_workers(len(c)))
                if k == 1:
                    dist, nb = dist[:, None], nb[:, None]
                nb = np.minimum(nb, len(S.points) - 1)
                facing = np.einsum("akj,aj->ak", S.normals[nb], N[act]) <= -facing_cos
                inside = dist < r[act, None] * (1.0 - 1e-9)
                rn = _ball_radius(P[act, None, :], N[act, None, :], S.points[nb])
                rn = np.where(facing & inside, rn, np.inf)
                best = np.argmin(rn, axis=1)
                rbest = rn[np.arange(len(act)), best]
                shrink = rbest < r[act] * (1.0 - 1e-9)
                r[act[shrink]] = rbest[shrink]
                contact[act[shrink]] = S.points[nb[shrink, best[shrink]]]
                growing[act[shrink]] = False
                klev[act[shrink]] = 0
                # the ball holds more samples than were examined: look at more before deciding
                full = ~shrink & (dist[:, -1] < r[act]) & (k < len(S.points)) & (kl + 1 < len(K_LEVELS))
                klev[act[full]] = kl + 1
                grow = ~shrink & ~full & growing[act] & (r[act] < cap_r)
                g = act[grow]
                r[g] = np.minimum(2.0 * r[g], cap_r)
                klev[g] = 0
                nxt.append(act[shrink | full | grow])
        active = np.concatenate(nxt) if nxt else np.zeros(0, dtype=np.int64)
    return r, contact


@dataclass
class _Buckets:
    """Every sample level bucketed for the compiled loop (``_balls.shrink``): level l in cubes of side
    ``CUBE * h0 * 2**l`` from one origin. points, normals : (S, 3) all levels, level by level, each ordered by
    cube; keys : (C,) each level's occupied cube keys, sorted within the level; cstart : (C + 1,) sample range of
    each cube; lcells : (L + 1,) cube range of each level; origin : (3,); dims : (L, 3) cubes per axis."""

    points: np.ndarray
    normals: np.ndarray
    keys: np.ndarray
    cstart: np.ndarray
    lcells: np.ndarray
    origin: np.ndarray
    dims: np.ndarray

    @classmethod
    def of(cls, sets: list[Samples]) -> _Buckets:
        h0 = sets[0].spacing
        allp = np.concatenate([x.points for x in sets])
        origin, top = allp.min(axis=0), allp.max(axis=0)
        pts, nrm, keys, cstart, dims = [], [], [], [], []
        lcells, taken = [0], 0
        for lv, S in enumerate(sets):
            side = CUBE * h0 * 2**lv
            dm = np.floor((top - origin) / side).astype(np.int64) + 1
            ijk = np.minimum(np.floor((S.points - origin) / side).astype(np.int64), dm - 1)
            key = (ijk[:, 0] * dm[1] + ijk[:, 1]) * dm[2] + ijk[:, 2]
            order = np.argsort(key, kind="stable")
            key = key[order]
            start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, dtype=np.int64)
            pts.append(S.points[order])
            nrm.append(S.normals[order])
            keys.append(key[start])
            cstart.append(start + taken)
            dims.append(dm)
            lcells.append(lcells[-1] + len(start))
            taken += len(key)
        return cls(np.ascontiguousarray(np.concatenate(pts)), np.ascontiguousarray(np.concatenate(nrm)),
                   np.concatenate(keys), np.append(np.concatenate(cstart), taken).astype(np.int64),
                   np.array(lcells, dtype=np.int64), origin, np.array(dims))

    def shrink(self, P: np.ndarray, N: np.ndarray, r: np.ndarray, base: int, h_base: float, cap_r: float,
               facing_cos: float) -> tuple[np.ndarray, np.ndarray]:
        """``_balls_numpy`` through the compiled loop, every facing sample inside a ball seen (not only the k
        nearest): (q,) radius, (q, 3) contact (NaN: none)."""
        out_r = np.zeros(len(P))
        out_c = np.zeros(len(P), dtype=np.int64)
        _balls.shrink(np.ascontiguousarray(P, dtype=np.float64), np.ascontiguousarray(N, dtype=np.float64),
                      np.ascontiguousarray(r, dtype=np.float64), self.points, self.normals, self.keys,
                      self.cstart, self.lcells, self.origin, self.dims, out_r, out_c, base, h_base, R_FINE,
                      CUBE, cap_r, facing_cos, MAX_ITER)
        contact = np.full((len(P), 3), np.nan)
        hit = out_c >= 0
        contact[hit] = self.points[out_c[hit]]
        return out_r, contact


def _coarse(geo: Geometry, sm: Samples, cap_r: float, facing_cos: float) -> tuple[np.ndarray, np.ndarray]:
    """Balls at every sample against the samples: (s,) radius, (s, 3) contact (NaN: none, capped).

    Coarse to fine: sample sets of spacing h, 2h, 4h, ...; the coarsest set's balls start at two spacings;
    every finer set's balls start at 1.15x the radius of the nearest coarser sample, so most converge in a
    few shrinking steps.
    """
    h0 = sm.spacing
    nlev = 1
    while h0 * 2 ** (nlev - 1) * R_FINE < cap_r and nlev < 8:
        nlev += 1
    sets = [sm] + [surface_samples(geo, h0 * 2**lv) for lv in range(1, nlev)]
    buckets = _Buckets.of(sets) if _balls is not None else None
    # the compiled loop needs the trees only to start each level's balls from the coarser level's
    trees = [cKDTree(x.points) if buckets is None or lv > 0 else None for lv, x in enumerate(sets)]
    r_prev = None
    for lv in range(nlev - 1, -1, -1):
        S = sets[lv]
        if r_prev is None:
            r0 = np.full(len(S.points), min(2.0 * S.spacing, cap_r))
        else:
            _, i = trees[lv + 1].query(S.points, workers=-1)
            r0 = np.minimum(1.15 * r_prev[i], cap_r)
        if buckets is not None:
            r_prev, contact = buckets.shrink(S.points, S.normals, r0, lv, S.spacing, cap_r, facing_cos)
        else:
            r_prev, contact = _balls_numpy(S.points, S.normals, r0, sets[lv:], trees[lv:], cap_r, facing_cos)
    return r_prev, contact


def _refine(geo: Geometry, grid: TriangleGrid, P: np.ndarray, N: np.ndarray, r: np.ndarray,
            contact: np.ndarray, reach: float, facing_cos: float,
            compiled: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact correction of sample balls: (q,) radius, (q, 3) contact.

    The sample pass found the wall each ball touches (``contact``, within a sample spacing of the true
    contact) and that no sample lies inside the ball. Here the facing triangles within ``reach`` of that
    contact replace the samples: shrink to the ball through the exact closest point of each, until none
    intrudes. Balls without a contact (capped) are left alone. compiled : run the iteration in
    ``_balls.refine`` (default: when it is built) or in numpy (``trimesh.triangles.closest_point``).
    """
    r = r.copy()
    contact = contact.copy()
    todo = np.flatnonzero(~np.isnan(contact[:, 0]))
    if not len(todo):
        return r, contact
    qi, ti = grid.query(contact[todo] - reach, contact[todo] + reach)
    facing = np.einsum("ij,ij->i", np.take(geo.normal, ti, axis=0), N[todo[qi]]) <= -facing_cos
    qi, ti = todo[qi[facing]], ti[facing]
    # the balls tangent at p only shrink, and a smaller one lies inside the bigger: a triangle outside the
    # current ball can never touch a later one, so it is dropped (first by its box, then by its closest point)
    c = P[qi] - r[qi, None] * N[qi]
    gap = np.maximum(np.maximum(np.take(grid.lo, ti, axis=0) - c, c - np.take(grid.hi, ti, axis=0)), 0.0)
    near = np.einsum("ij,ij->i", gap, gap) < r[qi] ** 2
    qa, ta = qi[near], ti[near]
    if compiled is None:
        compiled = _balls is not None
    if compiled:  # the same iteration, compiled: each ball against its candidates until none intrudes
        order = np.argsort(qa, kind="stable")
        qa, ta = np.take(qa, order), np.take(ta, order)
        start = np.searchsorted(qa, np.arange(len(P) + 1)).astype(np.int64)
        _balls.refine(np.ascontiguousarray(P, dtype=np.float64), np.ascontiguousarray(N, dtype=np.float64),
                      np.ascontiguousarray(r, dtype=np.float64), start, ta.astype(np.int64),
                      np.ascontiguousarray(geo.triangles, dtype=np.float64), r, contact, MAX_ITER)
        return r, contact
    for _ in range(MAX_ITER):
        if not len(qa):
            break
        c = P[qa] - r[qa, None] * N[qa]
        x = closest_point(np.take(geo.triangles, ta, axis=0), c)
        d2 = np.einsum("ij,ij->i", x - c, x - c)
        inside = d2 < (r[qa] * (1.0 - 1e-9)) ** 2
        rn = np.where(inside, _ball_radius(P[qa], N[qa], x), np.inf)
        best = np.full(len(P), np.inf)
        np.minimum.at(best, qa, rn)
        shrink = best < r * (1.0 - 1e-9)
        win = inside & shrink[qa] & (rn == best[qa])
        contact[qa[win]] = x[win]
        r[shrink] = best[shrink]
        keep = inside & shrink[qa]
        qa, ta = qa[keep], ta[keep]
    return r, contact


@dataclass
class SamplePass:
    """The sample pass of ``wall_thickness``: its samples, (s,) ball radii and (s, 3) contacts (NaN: none),
    and the cap it was made with."""

    samples: Samples
    r: np.ndarray
    contact: np.ndarray
    cap: float


def sample_pass(geo: Geometry, spacing: float | None = None, cap: float = 10.0,
                facing_cos: float = FACING_COS) -> SamplePass:
    """Samples and their balls against the samples: the part of ``wall_thickness`` that needs no triangle
    grid (``validate`` has it computed in its forked child, before the self-intersections)."""
    spacing = spacing or default_spacing(float(geo.area.sum()))
    sm = surface_samples(geo, spacing)
    if len(sm.points) == 0:
        return SamplePass(sm, np.zeros(0), np.zeros((0, 3)), cap)
    r, contact = _coarse(geo, sm, cap / 2.0, facing_cos)
    return SamplePass(sm, r, contact, cap)


def wall_thickness(geo: Geometry, *, spacing: float | None = None, cap: float = 10.0,
                   refine_below: float = 0.0, facing_cos: float = FACING_COS,
                   grid: TriangleGrid | None = None, first: SamplePass | None = None) -> Thickness:
    """The thickness field of a mesh (see the module docstring).

    spacing : sample spacing in mm (default ``default_spacing``); cap : largest thickness measured, mm;
    refine_below : samples whose coarse thickness is below this get the exact pass (those near the minimum
    always do); grid : a prebuilt ``TriangleGrid`` of ``geo.triangles``; first : this mesh's ``sample_pass``
    (same spacing, cap and facing_cos), if already done.
    """
    if first is None:
        first = sample_pass(geo, spacing, cap, facing_cos)
    elif first.cap != cap or (spacing is not None and spacing != first.samples.spacing):
        raise ValueError("wall_thickness: the sample pass given was made with another cap or spacing")
    sm = first.samples
    spacing = sm.spacing
    s = len(sm.points)
    if s == 0:
        return Thickness(sm, np.zeros(0), np.zeros((0, 3)), np.zeros(0, dtype=bool), cap)
    r, contact = first.r.copy(), first.contact.copy()
    value = np.minimum(2.0 * r, cap)
    # the sample pass overestimates a wall t by about (covering radius)² / t. Refine, lowest first, every
    # sample that could still hold the true minimum, and those whose side of the limit is in doubt (a
    # coarse value under the limit is already a certain fail: the exact value can only be smaller)
    refined = np.zeros(s, dtype=bool)
    slack = spacing * spacing / max(float(value.min()), spacing) + 0.005
    # balls bigger than R_FINE spacings were measured on coarser samples: up to about 5 % high
    rel = np.where(r > R_FINE * spacing, 1.06, 1.0)
    low = value / rel - slack  # what the exact pass could at most bring each sample down to
    order = np.argsort(low, kind="stable")
    may = _may_refine(value, low, order, refine_below, slack)
    if grid is None:  # a grid of just the triangles the exact pass can reach: near those samples' contacts
        c = contact[may]
        c = c[~np.isnan(c[:, 0])]
        grid = TriangleGrid.build(geo.triangles, near=(c - spacing, c + spacing))

    def run(idx: np.ndarray) -> None:
        nonlocal grid
        if grid.partial and not np.isin(idx, may).all():  # (cannot happen: _may_refine is a superset)
            grid = TriangleGrid.build(geo.triangles)
        rr, cc = _refine(geo, grid, sm.points[idx], sm.normals[idx], r[idx], contact[idx], spacing,
                         facing_cos)
        r[idx] = rr
        value[idx] = np.minimum(2.0 * rr, cap)
        contact[idx] = cc
        refined[idx] = True

    done = 0
    while done < min(s, REFINE_MAX):
        batch = order[done:done + REFINE_BATCH]
        run(batch)
        done += len(batch)
        if done >= s or low[order[done]] >= value[refined].min():
            break
    if refine_below > 0:
        # the pass/fail band keeps the full margin for every ball: a wall just under the limit must not pass
        doubt = np.flatnonzero((value >= refine_below) & (value < refine_below * 1.06 + slack) & ~refined)
        if len(doubt):
            run(doubt[np.argsort(value[doubt])][:REFINE_MAX])
    return Thickness(sm, value, contact, refined, cap)


def _may_refine(value: np.ndarray, low: np.ndarray, order: np.ndarray, refine_below: float,
                slack: float) -> np.ndarray:
    """(k,) every sample the exact pass of ``wall_thickness`` can visit (a superset, from the coarse values).

    The lowest-first batches go on only while the next sample's bound is under the smallest refined value,
    which is at most the first sample's coarse value: so they start before the count of bounds under it.
    The pass/fail band takes, by value, the first REFINE_MAX of its unrefined samples."""
    s = len(value)
    under = int(np.count_nonzero(low < value[order[0]]))
    n = min(s, -(-max(1, min(REFINE_MAX, under)) // REFINE_BATCH) * REFINE_BATCH)
    parts = [order[:n]]
    if refine_below > 0:
        band = np.flatnonzero((value >= refine_below) & (value < refine_below * 1.06 + slack))
        parts.append(band[np.argsort(value[band], kind="stable")][:REFINE_MAX + n])
    return np.unique(np.concatenate(parts))


@dataclass
class Patch:
    """A connected region of samples thinner than ``limit``."""

    limit: float
    min_thickness: float
    area: float
    centroid: np.ndarray
    thinnest_at: np.ndarray
    samples: np.ndarray


def thin_patches(th: Thickness, limit: float, total_area: float) -> list[Patch]:
    """Samples thinner than ``limit`` grouped into patches (samples within 2.5 spacings are neighbours).

    Area is the patch's share of the samples times the total area; patches are sorted thinnest first.
    """
    thin = np.flatnonzero(th.value < limit)
    if not len(thin):
        return []
    pts = th.samples.points[thin]
    pairs = cKDTree(pts).query_pairs(2.5 * th.samples.spacing, output_type="ndarray")
    n = len(thin)
    g = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    k, label = connected_components(g.tocsr(), directed=False)
    per_sample = total_area / max(len(th.value), 1)
    vals = th.value[thin]
    cnt = np.bincount(label, minlength=k)
    cen = np.stack([np.bincount(label, weights=pts[:, i], minlength=k) for i in range(3)], axis=1) / cnt[:, None]
    order = np.lexsort((vals, label))  # by patch, thinnest first
    first = np.searchsorted(label[order], np.arange(k))
    best = order[first]
    groups = np.split(thin[np.argsort(label, kind="stable")], np.cumsum(cnt)[:-1])
    out = [Patch(limit, float(vals[best[i]]), float(cnt[i] * per_sample), cen[i], pts[best[i]], groups[i])
           for i in range(k)]
    out.sort(key=lambda p: (p.min_thickness, -p.area))
    return out
