"""Self-intersections: which triangle pairs of a mesh cross each other, and where.

Broad phase: a uniform grid over the triangles' bounding boxes (``TriangleGrid``); within each cell a sweep
along x keeps only boxes whose x-intervals overlap; a pair is kept in exactly one cell, the one holding the
lower corner of the two boxes' intersection, so no deduplication is needed. Pairs sharing a vertex are
never taken from the grid: they come from the mesh's connectivity (``_edge_pairs``, ``_fan_pairs``). The
sweep is cut into chunks of about ``PAIR_CHUNK`` raw pairs, and each chunk goes through the broad filters
and the narrow phase in a small thread pool (``THREADS``). Narrow phase, vectorised over candidate pairs
(``_plane_reject`` first drops pairs that cannot pass it: one triangle must cross the other's plane, or
both must lie in one plane):

- no shared vertex: each triangle's vertices against the other's plane (Möller's rejection); pairs that
  straddle both planes intersect iff an edge of one crosses the other (6 segment–triangle tests); pairs that
  lie in one plane are tested for overlapping interiors with a 2-D separating-axis test;
- one shared vertex: they intersect beyond that vertex iff the opposite edge of one crosses the other, or
  they are coplanar and overlap;
- a shared edge: they intersect iff they are coplanar and fold onto each other (the two far vertices on the
  same side of the edge).

Tolerances (``contact_tolerance``): points closer than ``REL_TOL`` of the part's size, or 8 float32 steps, to
a plane count as on it, so triangles that merely touch, or cross only by STL rounding, are not reported;
coplanar means parallel normals as well. The grid is reused by ``thickness`` and
``channel`` for box queries (``TriangleGrid.query``).

Compiled (``fabctl/mesh/_cellpairs.c``, when built): the grid's boxes, its cell count and its entries (a
counting sort over the cells), the per-cell pair loop and the first pair filter; and the vertex fans'
certificate (``fabctl/mesh/_topology.c``). Each gives what its numpy path gives (tests).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from fabctl.mesh.kernels import load

_cellpairs = load("_cellpairs")  # the grid and the broad phase's loops, compiled (None: the numpy paths)
_topology = load("_topology")  # the vertex fans' certificate, compiled likewise


def compiled() -> bool:
    """Whether the broad phase runs the compiled loop (``_cellpairs``)."""
    return _cellpairs is not None


REL_TOL = 1e-9
PAIR_CHUNK = 2_000_000
#: worker threads for the pair chunks (numpy releases the GIL inside each big array operation)
THREADS = max(1, min(4, os.cpu_count() or 1))


def _cells(lo: np.ndarray, hi: np.ndarray, origin: np.ndarray, g: float) -> tuple[np.ndarray, np.ndarray]:
    i0 = np.floor((lo - origin) / g).astype(np.int64)
    i1 = np.floor((hi - origin) / g).astype(np.int64)
    return i0, i1


def _expand(i0: list[np.ndarray], i1: list[np.ndarray], dims: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell of every box, from the boxes' first and last cells per axis (three (m,) int64 columns each):
    (owner index (k,), cell key (k,), (k,) uint8 bit mask: bit ``ax`` set when the cell is the box's first
    cell along axis ``ax``). Box by box, x slowest then y then z; each entry's offset in its box is split
    into per-axis offsets with two divisions, so the work is a few passes over the entries."""
    m = len(i0[0])
    span = [i1[k] - i0[k] + 1 for k in range(3)]
    syz = span[1] * span[2]
    total = span[0] * syz
    base = (i0[0] * dims[1] + i0[1]) * dims[2] + i0[2]
    if not m or int(total.max()) == 1:  # every box in one cell (a coarse grid, or small boxes)
        return np.arange(m), base, np.full(m, 7, dtype=np.uint8)
    owner = np.repeat(np.arange(m), total)
    off = np.arange(len(owner)) - np.repeat(np.cumsum(total) - total, total)
    ox, rest = np.divmod(off, np.take(syz, owner))
    oy, oz = np.divmod(rest, np.take(span[2], owner))
    key = np.take(base, owner) + (ox * dims[1] + oy) * dims[2] + oz
    first = (ox == 0).astype(np.uint8)
    first |= (oy == 0).astype(np.uint8) << 1
    first |= (oz == 0).astype(np.uint8) << 2
    return owner, key, first


def _near(loc: list[np.ndarray], hic: list[np.ndarray], origin: np.ndarray, top: np.ndarray, qlo: np.ndarray,
          qhi: np.ndarray) -> np.ndarray | None:
    """(s,) the triangles (boxes as per-axis (m,) columns ``loc``, ``hic`` within [origin, top]) that share a
    cell of an occupancy grid with one of the query boxes (q, 3)-(q, 3): every triangle whose box overlaps
    a query box, and some more. None when the occupancy grid would be too big (then all triangles)."""
    if not len(qlo):
        return np.zeros(0, dtype=np.int64)
    size = float(np.max(top - origin)) or 1.0
    g = max(float(np.max(qhi - qlo)), size * 1e-6)
    dims = np.floor((top - origin) / g).astype(np.int64) + 1
    if int(dims.prod()) > 2**26:
        return None
    occupied = np.zeros(int(dims.prod()), dtype=bool)
    # query boxes reaching outside the triangles' bounds mark the border cells: more triangles, never fewer
    q0 = np.clip(np.floor((qlo - origin) / g).astype(np.int64), 0, dims - 1)
    q1 = np.clip(np.floor((qhi - origin) / g).astype(np.int64), 0, dims - 1)
    occupied[_expand([q0[:, k] for k in range(3)], [q1[:, k] for k in range(3)], dims)[1]] = True
    if _cellpairs is not None:  # compiled: each box's cells looked up until one is occupied
        hit = np.empty(len(loc[0]), dtype=bool)
        _cellpairs.near_hits(*loc, *hic, *origin, g, *(int(d) for d in dims), occupied, hit)
        return np.flatnonzero(hit)
    t0 = [np.clip(np.floor((loc[k] - origin[k]) / g).astype(np.int64), 0, dims[k] - 1) for k in range(3)]
    t1 = [np.clip(np.floor((hic[k] - origin[k]) / g).astype(np.int64), 0, dims[k] - 1) for k in range(3)]
    # most boxes lie in one cell: look that up; only the others are expanded into all their cells
    hit = np.take(occupied, (t0[0] * dims[1] + t0[1]) * dims[2] + t0[2])
    wide = np.flatnonzero((t0[0] != t1[0]) | (t0[1] != t1[1]) | (t0[2] != t1[2]))
    if len(wide):
        owner, keys, _ = _expand([np.take(c, wide) for c in t0], [np.take(c, wide) for c in t1], dims)
        hit[np.take(wide, np.compress(np.take(occupied, keys), owner))] = True
    return np.flatnonzero(hit)


@dataclass
class Sweep:
    """Grid entries in sweep order: tri, keys : (k,) triangle and cell of each entry; count : (k,) later
    entries of the same cell overlapping it in x; csum : cumulative count; lo32, hi32 : per axis (k,) float32
    boxes rounded outwards; fv : per corner (k,) vertex indices; first : (k,) uint8, bit ``ax`` set when the
    entry's cell is the first cell of its triangle's box along axis ``ax``."""

    tri: np.ndarray
    keys: np.ndarray
    count: np.ndarray
    csum: np.ndarray
    lo32: list
    hi32: list
    fv: list
    first: np.ndarray


@dataclass
class TriangleGrid:
    """Triangles' bounding boxes registered in a uniform grid of cubic cells of size ``cell``.

    lo, hi : (m, 3) box corners; origin : (3,); dims : (3,) cells per axis
    keys : (k,) sorted cell keys of the entries; tri : (k,) triangle of each entry
    ukeys : (c,) distinct occupied cell keys; ustart : (c + 1,) entry range of each occupied cell
    first : (k,) uint8 per entry, bit ``ax`` set when its cell is the first of its box along axis ``ax``
    partial : only the triangles near given boxes are registered (``build(near=...)``): for queries only
    """

    lo: np.ndarray
    hi: np.ndarray
    origin: np.ndarray
    cell: float
    dims: np.ndarray
    keys: np.ndarray
    tri: np.ndarray
    ukeys: np.ndarray
    ustart: np.ndarray
    first: np.ndarray
    partial: bool = False

    @classmethod
    def build(cls, triangles: np.ndarray, cell: float | None = None,
              near: tuple[np.ndarray, np.ndarray] | None = None) -> TriangleGrid:
        """Grid over (m, 3, 3) triangles. The default cell is 4x the median box size, grown while the grid
        would hold more than 3 entries per triangle (long slivers span many cells).

        near : (q, 3) lower and upper corners of the only boxes the grid will be asked about: then just the
        triangles that can overlap one of them are registered (``_near``; indices stay the mesh's), which is
        far cheaper when the queries cover a small part of the mesh."""
        if _cellpairs is not None:  # the boxes as rows and columns in one pass
            m = len(triangles)
            lo, hi = np.empty((m, 3)), np.empty((m, 3))
            loc, hic = [np.empty(m) for _ in range(3)], [np.empty(m) for _ in range(3)]
            _cellpairs.boxes(np.ascontiguousarray(triangles, dtype=np.float64), lo, hi, *loc, *hic)
        else:
            t0, t1, t2 = triangles[:, 0], triangles[:, 1], triangles[:, 2]
            lo = np.minimum(np.minimum(t0, t1), t2)
            hi = np.maximum(np.maximum(t0, t1), t2)
            # per-axis contiguous columns: reductions and arithmetic over (m,) columns, not along (m, 3) rows
            loc = [np.ascontiguousarray(lo[:, k]) for k in range(3)]
            hic = [np.ascontiguousarray(hi[:, k]) for k in range(3)]
        origin = np.array([c.min() for c in loc]) if len(lo) else np.zeros(3)
        top = np.array([c.max() for c in hic]) if len(hi) else np.ones(3)
        size = float(np.max(top - origin)) or 1.0
        ids = _near(loc, hic, origin, top, *near) if near is not None and len(lo) else None
        sloc = loc if ids is None else [np.take(c, ids) for c in loc]
        shic = hic if ids is None else [np.take(c, ids) for c in hic]

        def cells(g: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
            return ([np.floor((sloc[k] - origin[k]) / g).astype(np.int64) for k in range(3)],
                    [np.floor((shic[k] - origin[k]) / g).astype(np.int64) for k in range(3)])

        def count(g: float) -> tuple[float, tuple | None]:
            """The entries cell size g gives, and the numpy path's first and last cells of every box."""
            if _cellpairs is not None:
                return _cellpairs.grid_count(*sloc, *shic, *origin, g), None
            i0, i1 = cells(g)
            span = [i1[k] - i0[k] + 1 for k in range(3)]
            return float((span[0] * span[1] * span[2]).sum()), (i0, i1)

        n_reg = len(sloc[0])
        if cell is None:
            ext = np.maximum(np.maximum(shic[0] - sloc[0], shic[1] - sloc[1]), shic[2] - sloc[2]) if n_reg \
                else np.ones(1)
            cell = max(4.0 * float(np.median(ext)), size * 1e-6)
            while True:
                entries, spans = count(cell)
                if entries <= 3.0 * max(n_reg, 1) or cell >= size:
                    break
                cell *= 1.5
        else:
            cell = max(float(cell), size * 1e-6)  # more cells than that would overflow the int64 keys
            entries, spans = count(cell)
        dims = np.floor((top - origin) / cell).astype(np.int64) + 1
        if _cellpairs is not None and int(dims.prod()) <= max(4 * entries, 2**20):
            # compiled: every entry placed by a counting sort over the cells, in the order the sort below gives
            keys = np.empty(int(entries), dtype=np.int64)
            tri = np.empty(int(entries), dtype=np.int64)
            first = np.empty(int(entries), dtype=np.uint8)
            _cellpairs.grid_fill(*sloc, *shic, ids if ids is not None else np.zeros(0, dtype=np.int64), *origin,
                                 cell, *(int(d) for d in dims), keys, tri, first,
                                 np.empty(int(dims.prod()), dtype=np.int64))
            return cls._of_entries(lo, hi, origin, float(cell), dims, keys, tri, first, ids is not None, loc, hic)
        owner, keys, first = _expand(*(spans or cells(cell)), dims)
        if ids is not None:
            owner = np.take(ids, owner)
        bits = max(int(len(lo)).bit_length(), 1)
        if int(dims.prod()) < 2 ** (59 - bits):  # one plain sort of (key, owner, first) packed into an int64
            packed = np.sort((((keys << bits) | owner) << 3) | first)
            first = (packed & 7).astype(np.uint8)
            packed >>= 3
            keys = packed >> bits
            tri = packed & ((1 << bits) - 1)
        else:
            order = np.argsort(keys, kind="stable")
            keys, tri, first = np.take(keys, order), np.take(owner, order), np.take(first, order)
        return cls._of_entries(lo, hi, origin, float(cell), dims, keys, tri, first, ids is not None, loc, hic)

    @classmethod
    def _of_entries(cls, lo: np.ndarray, hi: np.ndarray, origin: np.ndarray, cell: float, dims: np.ndarray,
                    keys: np.ndarray, tri: np.ndarray, first: np.ndarray, partial: bool, loc: list,
                    hic: list) -> TriangleGrid:
        """The grid of entries sorted by cell (keys, tri, first : (k,)), with its occupied cells' ranges."""
        start = np.ones(len(keys), dtype=bool)
        np.not_equal(keys[1:], keys[:-1], out=start[1:])
        start_at = np.flatnonzero(start)
        grid = cls(lo, hi, origin, cell, dims, keys, tri, keys[start_at], np.append(start_at, len(keys)), first,
                   partial)
        grid.__dict__["columns"] = (loc, hic)  # the cached_property, already at hand
        return grid

    def sweep(self, faces: np.ndarray) -> Sweep | None:
        """The entries in sweep order (by cell, then by the box's lower x within the cell) with, for each,
        how many later entries of its cell start before its box ends in x (``Sweep.count``).

        The x positions within a cell are quantised outwards (lower ends down, upper ends up), so the count
        can only include more pairs, never fewer; cell rank, position and entry index are packed into one
        int64 for a plain sort.
        """
        n = len(self.keys)
        if n < 2:
            return None
        keys, tri = self.keys, self.tri
        loc, hic = self.columns
        cx0 = self.origin[0] + (keys // (self.dims[1] * self.dims[2])) * self.cell
        a = (np.take(loc[0], tri) - cx0) / self.cell
        b = (np.take(hic[0], tri) - cx0) / self.cell
        start = np.ones(n, dtype=bool)
        start[1:] = keys[1:] != keys[:-1]
        rank = np.cumsum(start) - 1
        ebits = n.bit_length()
        qbits = 62 - ebits - int(rank[-1]).bit_length() - 1
        if qbits >= 8:
            scale = float(2**qbits)
            aq = np.clip(np.floor(a * scale), 0, scale).astype(np.int64)
            bq = np.clip(np.ceil(b * scale), 0, scale).astype(np.int64)
            skey = (rank << (qbits + 1)) | aq
            packed = np.sort((skey << ebits) | np.arange(n, dtype=np.int64))
            order = packed & ((1 << ebits) - 1)
            end = np.searchsorted(packed >> ebits, ((rank << (qbits + 1)) | bq)[order], side="right")
        else:
            sk = 2.0 * rank + np.clip(a, 0.0, 1.0)
            order = np.argsort(sk, kind="stable")
            end = np.searchsorted(sk[order], (2.0 * rank + np.clip(b, 0.0, 1.0))[order], side="right")
        tri, keys = np.take(tri, order), np.take(keys, order)
        cnt = end - np.arange(n) - 1
        lo32, hi32 = self.boxes32()
        lo32 = [np.take(c, tri) for c in lo32]
        hi32 = [np.take(c, tri) for c in hi32]
        fv = [np.take(np.ascontiguousarray(faces[:, k]), tri) for k in range(3)]
        return Sweep(tri, keys, cnt, np.cumsum(cnt), lo32, hi32, fv, np.take(self.first, order))

    def boxes32(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The boxes as float32 (m,) columns per axis, rounded outwards (a prefilter on them never loses an
        overlap)."""
        loc, hic = self.columns
        if _cellpairs is not None:
            out = [np.empty(len(loc[0]), dtype=np.float32) for _ in range(6)]
            _cellpairs.boxes32(*loc, *hic, *out)
            return out[:3], out[3:]
        out_lo, out_hi = [], []
        for lo, hi in zip(loc, hic, strict=True):
            l32, h32 = lo.astype(np.float32), hi.astype(np.float32)
            out_lo.append(np.where(l32 > lo, np.nextafter(l32, np.float32(-np.inf)), l32))
            out_hi.append(np.where(h32 < hi, np.nextafter(h32, np.float32(np.inf)), h32))
        return out_lo, out_hi

    def chunks(self, sw: Sweep | None, size: int | None = None) -> list[tuple[int, int]]:
        """Entry ranges [a, b) of the sweep holding about ``size`` (default ``PAIR_CHUNK``) raw pairs each."""
        if sw is None:
            return []
        size = size or PAIR_CHUNK
        out = []
        lo_e, n = 0, len(sw.count)
        while lo_e < n:
            base = sw.csum[lo_e - 1] if lo_e else 0
            hi_e = max(int(np.searchsorted(sw.csum, base + size, side="right")), lo_e + 1)
            if sw.csum[hi_e - 1] > base:
                out.append((lo_e, hi_e))
            lo_e = hi_e
        return out

    def chunk_pairs(self, sw: Sweep, lo_e: int, hi_e: int) -> tuple[np.ndarray, np.ndarray]:
        """Face pairs (i, j) of the sweep entries [lo_e, hi_e) whose boxes overlap and that share no vertex,
        each kept only in the cell holding the lower corner of the two boxes' overlap (so exactly once).

        Everything here runs over tens of millions of candidate entries: ``np.take`` and ``np.compress`` do
        the gathers and the selections (several times faster than fancy and boolean indexing at this size),
        on int32 entry indices and the float32 boxes."""
        c = sw.count[lo_e:hi_e]
        total = int(c.sum())
        if not total:
            z = np.zeros(0, dtype=np.int64)
            return z, z
        idx = np.int32 if len(sw.count) < 2**31 - 1 else np.int64
        p = np.repeat(np.arange(lo_e, hi_e, dtype=idx), c)
        q = np.arange(total, dtype=idx)
        q -= np.repeat((np.cumsum(c) - c).astype(idx), c)
        q += p
        q += 1
        # x overlaps by the (outward-quantised) sweep; y first: the boxes of p are repeated, not gathered
        lo, hi = sw.lo32[1], sw.hi32[1]
        keep = np.repeat(lo[lo_e:hi_e], c) <= np.take(hi, q)
        keep &= np.take(lo, q) <= np.repeat(hi[lo_e:hi_e], c)
        p, q = np.compress(keep, p), np.compress(keep, q)
        for ax in (2, 0):
            lo, hi = sw.lo32[ax], sw.hi32[ax]
            keep = np.take(lo, p) <= np.take(hi, q)
            keep &= np.take(lo, q) <= np.take(hi, p)
            p, q = np.compress(keep, p), np.compress(keep, q)
        # one owning cell per pair, the cell holding the lower corner of the two boxes' overlap: along every
        # axis, it is the first cell of one of the two boxes
        keep = (np.take(sw.first, p) | np.take(sw.first, q)) == 7
        p, q = np.compress(keep, p), np.compress(keep, q)
        vq = [np.take(f, q) for f in sw.fv]
        share = np.zeros(len(p), dtype=bool)
        for k1 in range(3):
            vp = np.take(sw.fv[k1], p)
            for k2 in range(3):
                share |= vp == vq[k2]
        keep = ~share
        return np.take(sw.tri, np.compress(keep, p)), np.take(sw.tri, np.compress(keep, q))

    def cell_pairs(self, faces: np.ndarray, size: int | None = None):
        """The pairs ``chunk_pairs`` gives over the whole sweep, from the compiled loop
        (``fabctl/mesh/_cellpairs.c``): yields ((p,) i, (p,) j) triangle pairs, at most about ``size``
        (default ``PAIR_CHUNK``) per chunk. Only when ``_cellpairs`` is built."""
        if len(self.ustart) < 2:
            return
        widest = int(np.diff(self.ustart).max())
        cap = max(size or PAIR_CHUNK, widest, 1)
        lo32, hi32 = self.boxes32()
        fc = [np.ascontiguousarray(faces[:, k], dtype=np.int64) for k in range(3)]
        ustart = np.ascontiguousarray(self.ustart, dtype=np.int64)
        tri = np.ascontiguousarray(self.tri, dtype=np.int64)
        first = np.ascontiguousarray(self.first, dtype=np.uint8)
        cell, row, last = 0, 0, len(ustart) - 1
        while cell < last:
            oi = np.empty(cap, dtype=np.int64)  # (written from 0; only the first n are used)
            oj = np.empty(cap, dtype=np.int64)
            n, cell, row = _cellpairs.cell_pairs(ustart, tri, first, *lo32, *hi32, *fc, oi, oj, cell, row)
            if n:
                yield oi[:n], oj[:n]

    @cached_property
    def columns(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The boxes' lower and upper coordinates as contiguous (m,) columns, per axis."""
        return ([np.ascontiguousarray(self.lo[:, k]) for k in range(3)],
                [np.ascontiguousarray(self.hi[:, k]) for k in range(3)])

    def query(self, qlo: np.ndarray, qhi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Triangles whose boxes overlap each query box (k, 3)-(k, 3): ((p,) query index, (p,) triangle)."""
        if not len(self.ukeys) or not len(qlo):
            z = np.zeros(0, dtype=np.int64)
            return z, z
        i0, i1 = _cells(qlo, qhi, self.origin, self.cell)
        i0 = np.clip(i0, 0, self.dims - 1)
        i1 = np.clip(i1, 0, self.dims - 1)
        owner, ckey, qfirst = _expand([i0[:, k] for k in range(3)], [i1[:, k] for k in range(3)], self.dims)
        pos = np.minimum(np.searchsorted(self.ukeys, ckey), len(self.ukeys) - 1)
        hit = np.take(self.ukeys, pos) == ckey
        owner, qfirst, pos = (np.compress(hit, a) for a in (owner, qfirst, pos))
        start = np.take(self.ustart, pos)
        n = np.take(self.ustart, pos + 1) - start
        q = np.repeat(owner, n)
        ent = np.repeat(start - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
        # report each (query, triangle) once: in the cell holding the lower corner of the boxes' overlap,
        # which along every axis is the first cell of one of the two boxes
        ok = (np.repeat(qfirst, n) | np.take(self.first, ent)) == 7
        q, t = np.compress(ok, q), np.compress(ok, np.take(self.tri, ent))
        lo, hi = self.columns
        for ax in range(3):
            ok = np.take(lo[ax], t) <= np.take(qhi[:, ax], q)
            ok &= np.take(qlo[:, ax], q) <= np.take(hi[ax], t)
            q, t = np.compress(ok, q), np.compress(ok, t)
        return q, t


@dataclass
class SelfIntersections:
    """pairs : (k, 2) intersecting face pairs (i < j); points : (k, 3) a point of each intersection (mm);
    inter_shell : (k,) bool, the pair joins two different shells."""

    pairs: np.ndarray
    points: np.ndarray
    inter_shell: np.ndarray

    @property
    def faces(self) -> np.ndarray:
        return np.unique(self.pairs)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def _seg_cross(p: np.ndarray, q: np.ndarray, dp: np.ndarray, dq: np.ndarray, tri: np.ndarray,
               n: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Segments p-q (k, 3) against triangles (k, 3, 3) with normals n (k, 3, unnormalised) and the segment
    ends' signed plane distances dp, dq (mm). Crossing strictly through the plane and inside the triangle
    (inside by more than ``tol``): (k,) bool, (k, 3) crossing point."""
    crosses = ((dp > tol) & (dq < -tol)) | ((dp < -tol) & (dq > tol))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(crosses, dp / np.where(crosses, dp - dq, 1.0), 0.0)
    x = p + s[:, None] * (q - p)
    nn = np.sqrt(_dot(n, n))
    inside = crosses.copy()
    for k in range(3):
        a = tri[:, k]
        b = tri[:, (k + 1) % 3]
        # signed distance of x from edge a-b, within the plane, positive inside
        side = _dot(np.cross(b - a, x - a), n) / np.maximum(np.sqrt(_dot(b - a, b - a)) * nn, 1e-300)
        inside &= side > tol
    return inside, x


def _coplanar_overlap(ta: np.ndarray, tb: np.ndarray, n: np.ndarray, tol: float) -> np.ndarray:
    """(k,) bool: coplanar triangles (k, 3, 3) whose interiors overlap by more than ``tol`` (2-D SAT).

    Each pair is projected on the coordinate plane across its normal's largest component; the six edge
    normals are the candidate separating axes. Pairs are dropped from the work as soon as one separates.
    """
    drop = np.argmax(np.abs(n), axis=1)
    u = np.array([1, 0, 0])[drop]
    v = np.array([2, 2, 1])[drop]
    r = np.arange(len(ta))
    ax = [ta[r, k, u] for k in range(3)]
    ay = [ta[r, k, v] for k in range(3)]
    bx = [tb[r, k, u] for k in range(3)]
    by = [tb[r, k, v] for k in range(3)]
    live = np.arange(len(ta))
    for which in (0, 1):
        for k in range(3):
            if not len(live):
                break
            px, py = (ax, ay) if which == 0 else (bx, by)
            ex = px[(k + 1) % 3] - px[k]
            ey = py[(k + 1) % 3] - py[k]
            ln = np.maximum(np.hypot(ex, ey), 1e-300)
            nx, ny = -ey / ln, ex / ln
            pa = [ax[c] * nx + ay[c] * ny for c in range(3)]
            pb = [bx[c] * nx + by[c] * ny for c in range(3)]
            amax = np.maximum(np.maximum(pa[0], pa[1]), pa[2])
            amin = np.minimum(np.minimum(pa[0], pa[1]), pa[2])
            bmax = np.maximum(np.maximum(pb[0], pb[1]), pb[2])
            bmin = np.minimum(np.minimum(pb[0], pb[1]), pb[2])
            keep = ~((amax <= bmin + tol) | (bmax <= amin + tol))
            live = live[keep]
            ax, ay, bx, by = ([c[keep] for c in arr] for arr in (ax, ay, bx, by))
    out = np.zeros(len(ta), dtype=bool)
    out[live] = True
    return out


def _test_pairs(V: np.ndarray, F: np.ndarray, N: np.ndarray, i: np.ndarray, j: np.ndarray,
                tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Narrow phase for candidate pairs: (k,) bool intersecting, (k, 3) a point of the intersection."""
    fa, fb = F[i], F[j]
    eq = fa[:, :, None] == fb[:, None, :]  # (k, 3, 3): vertex ka of A equals vertex kb of B
    shared = eq.sum(axis=(1, 2))
    ta, tb = V[fa], V[fb]
    na, nb = N[i], N[j]
    la = np.sqrt(_dot(na, na))
    lb = np.sqrt(_dot(nb, nb))
    good = (la > 0) & (lb > 0)
    la = np.where(good, la, 1.0)
    lb = np.where(good, lb, 1.0)
    # signed distances (mm) of B's corners to A's plane and A's corners to B's plane: (k, 3)
    db = np.einsum("ikj,ij->ik", tb - ta[:, :1], na) / la[:, None]
    da = np.einsum("ikj,ij->ik", ta - tb[:, :1], nb) / lb[:, None]
    # shared corners sit on both planes exactly
    db = np.where(eq.any(axis=1), 0.0, db)
    da = np.where(eq.any(axis=2), 0.0, da)
    hit = np.zeros(len(i), dtype=bool)
    point = 0.5 * (ta.mean(axis=1) + tb.mean(axis=1))
    flat_a = (np.abs(da) <= tol).all(axis=1)
    flat_b = (np.abs(db) <= tol).all(axis=1)
    parallel = np.abs(_dot(na, nb)) >= (1.0 - 1e-6) * la * lb
    coplanar = good & flat_a & flat_b & parallel
    straddle = good & ~coplanar & ~((da > tol).all(axis=1) | (da < -tol).all(axis=1))
    straddle &= ~((db > tol).all(axis=1) | (db < -tol).all(axis=1))
    straddle &= shared < 2
    idx = np.flatnonzero(straddle)
    if len(idx):
        found = np.zeros(len(idx), dtype=bool)
        where = point[idx].copy()
        # edges of A against B, edges of B against A; with a shared vertex only the opposite edges matter
        for src, dsrc, dst, ndst, eqax in ((ta, da, tb, nb, 2), (tb, db, ta, na, 1)):
            own_shared = eq.any(axis=eqax)[idx]  # (s, 3) which corners of src are shared
            for k in range(3):
                k2 = (k + 1) % 3
                use = ~(own_shared[:, k] | own_shared[:, k2])
                ok, x = _seg_cross(src[idx, k], src[idx, k2], dsrc[idx, k], dsrc[idx, k2], dst[idx],
                                   ndst[idx], tol)
                ok &= use
                new = ok & ~found
                where[new] = x[new]
                found |= ok
        hit[idx] = found
        point[idx] = where
    cp = np.flatnonzero(coplanar & (shared == 0))
    if len(cp):
        hit[cp] = _coplanar_overlap(ta[cp], tb[cp], na[cp], tol)
    # a shared vertex or edge: coplanar overlap beyond the shared part (a fold)
    cs = np.flatnonzero(coplanar & (shared == 2))
    if len(cs):
        # far vertex of each: the corner not shared
        ka = np.argmin(eq[cs].any(axis=2), axis=1)
        kb = np.argmin(eq[cs].any(axis=1), axis=1)
        r = np.arange(len(cs))
        ea = eq[cs].any(axis=2)
        s0 = ta[cs][r, np.argmax(ea, axis=1)]
        s1 = ta[cs][r, 2 - np.argmax(ea[:, ::-1], axis=1)]
        pa = ta[cs][r, ka] - s0
        pb = tb[cs][r, kb] - s0
        e = s1 - s0
        same_side = _dot(np.cross(e, pa), np.cross(e, pb)) > 0
        hit[cs] = same_side
    c1 = np.flatnonzero(coplanar & (shared == 1))
    if len(c1):
        # shrink both towards their centroids a little so the shared corner stops touching, then SAT
        sa = ta[c1] - 1e-6 * (ta[c1] - ta[c1].mean(axis=1, keepdims=True))
        sb = tb[c1] - 1e-6 * (tb[c1] - tb[c1].mean(axis=1, keepdims=True))
        hit[c1] = _coplanar_overlap(sa, sb, na[c1], tol)
    return hit, point


def _fans_certified_numpy(V: np.ndarray, F: np.ndarray, N: np.ndarray, cv: np.ndarray,
                          triangles: np.ndarray | None) -> np.ndarray:
    """(n,) bool: each vertex's fan is certified (``_fan_pairs``). cv : (3m,) the corners' vertices."""
    nv = np.empty((len(V), 3))
    for k in range(3):
        nv[:, k] = np.bincount(cv, weights=np.repeat(N[:, k], 3), minlength=len(V))
    ln = np.sqrt(_dot(nv, nv))
    nv /= np.where(ln > 0, ln, 1.0)[:, None]
    t = np.take(V, F, axis=0) if triangles is None else triangles
    e = [t[:, 1] - t[:, 0], t[:, 2] - t[:, 1], t[:, 0] - t[:, 2]]
    ang = np.empty((len(F), 3))
    for k in range(3):
        # corner k: a = e[k] from its vertex to the next, b = -e[k - 1] to the previous; projected on the plane
        # across n: (a' x b') . n = (a x b) . n = N . n, and a' . b' = a . b - (a . n)(b . n)
        a, mb = e[k], e[(k + 2) % 3]
        n = np.take(nv, F[:, k], axis=0)
        ang[:, k] = np.arctan2(_dot(N, n), _dot(a, n) * _dot(mb, n) - _dot(a, mb))
    ang = ang.reshape(-1)
    total = np.bincount(cv, weights=ang, minlength=len(V))
    bad_corner = np.bincount(cv[ang <= 1e-12], minlength=len(V)) > 0
    ok = (np.abs(total - 2 * np.pi) < 1e-6) & ~bad_corner & (ln > 0)
    return ok


def _fan_pairs(V: np.ndarray, F: np.ndarray, N: np.ndarray,
               triangles: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Face pairs sharing a vertex that need the narrow test: every pair of faces around a vertex whose fan is
    not certified. A fan is certified when, projected on the plane across the vertex normal, every corner at
    the vertex turns the same way and the corners add up to one full turn: the faces then cover disjoint
    sectors, so no two of them can meet beyond the vertex."""
    cv = F.reshape(-1)
    if _topology is not None:  # the same certificate, compiled (fabctl/mesh/_topology.c)
        ok = np.empty(len(V), dtype=bool)
        _topology.fan_certified(np.ascontiguousarray(V, dtype=np.float64), np.ascontiguousarray(F, dtype=np.int64),
                                np.ascontiguousarray(N, dtype=np.float64), ok)
    else:
        ok = _fans_certified_numpy(V, F, N, cv, triangles)
    corners = np.flatnonzero(~np.take(ok, cv))
    if not len(corners):
        z = np.zeros(0, dtype=np.int64)
        return z, z
    order = np.argsort(cv[corners], kind="stable")
    corners = corners[order]
    vk = cv[corners]
    start = np.ones(len(vk), dtype=bool)
    start[1:] = vk[1:] != vk[:-1]
    gid = np.cumsum(start) - 1
    gsize = np.bincount(gid)
    gfirst = np.flatnonzero(start)
    local = np.arange(len(vk)) - gfirst[gid]
    c = gsize[gid] - local - 1
    i = np.repeat(np.arange(len(vk)), c)
    j = i + 1 + (np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c))
    fi, fj = corners[i] // 3, corners[j] // 3
    return np.minimum(fi, fj), np.maximum(fi, fj)


def _edge_pairs(F: np.ndarray, N: np.ndarray, et=None) -> tuple[np.ndarray, np.ndarray]:
    """Face pairs sharing an edge that could fold onto each other: two-face neighbours folded flat (coplanar,
    lying on the same side of the edge), and every pair of faces on an edge with more than two."""
    from fabctl.mesh.topology import edge_table

    et = et if et is not None else edge_table(F)
    a, b = et.pairs()
    fa, fb = a // 3, b // 3
    # cos of the angle between the two faces' normals, over (k,) columns (gathers of (k, 3) rows and
    # reductions along their short axis are several times slower)
    cols = [np.ascontiguousarray(N[:, k]) for k in range(3)]
    ln = np.sqrt(cols[0] * cols[0] + cols[1] * cols[1] + cols[2] * cols[2])
    dot = np.take(cols[0], fa) * np.take(cols[0], fb)
    for k in (1, 2):
        dot += np.take(cols[k], fa) * np.take(cols[k], fb)
    cos = dot / np.maximum(np.take(ln, fa) * np.take(ln, fb), 1e-300)
    # folded onto each other: a consistently wound pair turns its normals opposite, a flipped pair keeps them
    same_dir = np.take(et.src, a) == np.take(et.src, b)
    flat = np.where(same_dir, cos > 1.0 - 1e-9, cos < -1.0 + 1e-9)
    fi, fj = [fa[flat]], [fb[flat]]
    multi = np.flatnonzero(et.counts > 2)
    if len(multi):
        cnt = et.counts[multi]
        c2 = cnt * (cnt - 1) // 2
        # all pairs (r < s) among the faces of each such edge
        g = np.repeat(np.arange(len(multi)), c2)
        k = np.arange(int(c2.sum())) - np.repeat(np.cumsum(c2) - c2, c2)
        n_g = cnt[g]
        # unrank k into (r, s): r is the largest with r * (2n - r - 1) / 2 <= k
        rr = np.floor(((2 * n_g - 1) - np.sqrt((2 * n_g - 1) ** 2 - 8.0 * k)) / 2).astype(np.int64)
        r = np.clip(rr, 0, n_g - 2)
        s_ = k - r * (2 * n_g - r - 1) // 2 + r + 1
        base = et.first[multi][g]
        fi.append(et.order[base + r] // 3)
        fj.append(et.order[base + s_] // 3)
    i, j = np.concatenate(fi), np.concatenate(fj)
    return np.minimum(i, j), np.maximum(i, j)


def contact_tolerance(V: np.ndarray) -> float:
    """Distances below this count as zero (mm): ``REL_TOL`` of the part's size, and never below 8 steps of
    float32 at the part's largest coordinate, so rounding a design to STL's float32 does not create
    crossings (a float32 coordinate near 250 mm is only good to 0.03 um)."""
    if not len(V):
        return 0.0
    # column by column: a reduction over the long axis of an (n, 3) array is several times slower
    lo = np.array([V[:, k].min() for k in range(3)])
    hi = np.array([V[:, k].max() for k in range(3)])
    size = float(np.linalg.norm(hi - lo))
    big = float(np.maximum(np.abs(lo), np.abs(hi)).max())
    return max(REL_TOL * (size or 1.0), 8.0 * float(np.spacing(np.float32(big))))


@dataclass
class _Planes:
    """Each face's plane, for the pair filters: unit : (m, 3) unit normal (zero for a degenerate face);
    off : (m,) unit . first corner; triangles : (m, 3, 3); corners : three (m, 3) arrays, corner k of every
    face (made when first asked for: the compiled filter reads the triangles)."""

    unit: np.ndarray
    off: np.ndarray
    triangles: np.ndarray

    @classmethod
    def of(cls, triangles: np.ndarray, N: np.ndarray) -> _Planes:
        ln = np.sqrt(_dot(N, N))
        unit = N / np.where(ln > 0, ln, 1.0)[:, None]
        return cls(unit, _dot(unit, triangles[:, 0]), triangles)

    @cached_property
    def corners(self) -> list[np.ndarray]:
        return [np.ascontiguousarray(self.triangles[:, k]) for k in range(3)]

    def distances(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        """Signed distances (mm) of the corners of faces y from the planes of faces x: three (k,) arrays."""
        n = np.take(self.unit, x, axis=0)
        off = np.take(self.off, x)
        return [_dot(np.take(c, y, axis=0), n) - off for c in self.corners]


def _sides(pl: _Planes, x: np.ndarray, y: np.ndarray,
           tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangle y against triangle x's plane, (k,) bool each: y lies strictly on one side (every corner
    farther than ``tol``, on the same side); y crosses it (corners farther than ``tol`` on both sides); y lies
    in it (every corner within ``tol``). With a 1e-6 relative margin, so that rounding can only keep a pair
    for the exact test (``_test_pairs``), never drop one it would report."""
    lo_lim, hi_lim = tol * (1.0 - 1e-6), tol * (1.0 + 1e-6)
    above = np.zeros(len(x), dtype=bool)
    below = np.zeros(len(x), dtype=bool)
    all_above = np.ones(len(x), dtype=bool)
    all_below = np.ones(len(x), dtype=bool)
    flat = np.ones(len(x), dtype=bool)
    for d in pl.distances(x, y):
        above |= d > lo_lim
        below |= d < -lo_lim
        all_above &= d > hi_lim
        all_below &= d < -hi_lim
        flat &= np.abs(d) <= hi_lim
    return all_above | all_below, above & below, flat


def _split_same_sheet(pl: _Planes, i: np.ndarray, j: np.ndarray,
                      tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split off the coplanar pairs facing the same way: (i, j) the rest, (si, sj) those. Within one shell
    they are neighbours on a flat region and are dropped (``finish``): on an oriented shell, faces can only
    cover each other by folding, and a fold turns one of them over (opposite normals: still tested), or by a
    sheet winding over itself while facing the same way, which a closed guide does not do without also
    crossing elsewhere. Such pairs from two shells are tested."""
    ni, nj = np.take(pl.unit, i, axis=0), np.take(pl.unit, j, axis=0)
    same = _dot(ni, nj) >= 1.0 - 1e-6
    same &= _dot(ni, ni) > 0.5  # a degenerate face has no plane to share
    if not same.any():
        z = np.zeros(0, dtype=i.dtype)
        return i, j, z, z
    si, sj = np.compress(same, i), np.compress(same, j)
    flat = np.ones(len(si), dtype=bool)
    for d in pl.distances(si, sj):
        flat &= np.abs(d) <= tol
    drop = np.zeros(len(i), dtype=bool)
    drop[np.flatnonzero(same)[flat]] = True
    return np.compress(~drop, i), np.compress(~drop, j), np.compress(drop, i), np.compress(drop, j)


def _plane_reject(pl: _Planes, i: np.ndarray, j: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the pairs (i, j), sharing no vertex, that ``_test_pairs`` could report: neither lies strictly on
    one side of the other's plane and one of them crosses the other's plane (an edge can only cross a
    triangle when its ends lie on both sides of the triangle's plane, ``_seg_cross``), or both lie in one
    plane (the coplanar test). Pairs that only touch a plane are dropped here."""
    side_j, cross_j, flat_j = _sides(pl, i, j, tol)
    keep = ~side_j
    i, j, cross_j, flat_j = (np.compress(keep, a) for a in (i, j, cross_j, flat_j))
    side_i, cross_i, flat_i = _sides(pl, j, i, tol)
    keep = (~side_i & (cross_i | cross_j)) | (flat_i & flat_j)
    return np.compress(keep, i), np.compress(keep, j)


@dataclass
class Candidates:
    """What ``candidates`` finds without the mesh's topology, for ``finish``: hit_i, hit_j : (h,) intersecting
    face pairs; points : (h, 3) a point of each; sheet_i, sheet_j : (s,) coplanar pairs facing the same way,
    dropped within a shell, tested across two."""

    hit_i: np.ndarray
    hit_j: np.ndarray
    points: np.ndarray
    sheet_i: np.ndarray
    sheet_j: np.ndarray

    def with_hits(self, i: np.ndarray, j: np.ndarray, points: np.ndarray) -> Candidates:
        """These candidates and more intersecting pairs (h,) i, (h,) j with (h, 3) points."""
        return Candidates(np.concatenate([self.hit_i, i]).astype(np.int64),
                          np.concatenate([self.hit_j, j]).astype(np.int64),
                          np.concatenate([self.points, points]).reshape(-1, 3), self.sheet_i, self.sheet_j)


def fan_hits(V: np.ndarray, F: np.ndarray, N: np.ndarray,
             triangles: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The intersecting pairs around vertices whose fan is not certified (``_fan_pairs``): (h,) i, (h,) j,
    (h, 3) a point of each. V : (n, 3); F : (m, 3); N : (m, 3) unnormalised face normals."""
    i, j = _fan_pairs(V, F, N, triangles)
    if not len(i):
        return i, j, np.zeros((0, 3))
    hit, pt = _test_pairs(V, F, N, i, j, contact_tolerance(V))
    return i[hit], j[hit], pt[hit]


def candidates(vertices: np.ndarray, faces: np.ndarray, normals_raw: np.ndarray | None = None,
               grid: TriangleGrid | None = None, triangles: np.ndarray | None = None,
               sweep: Sweep | None = None, threads: int | None = None, with_fans: bool = True) -> Candidates:
    """The self-intersections that need no edge table or shells: every grid pair (sharing no vertex) and
    every pair around a vertex whose fan is not certified (``fan_hits``), through the narrow phase.

    vertices : (n, 3) float64; faces : (m, 3) int64; normals_raw : (m, 3) unnormalised face normals (cross
    products), computed when not given; grid : a prebuilt ``TriangleGrid`` of the faces; triangles : (m, 3, 3)
    ``vertices[faces]`` if at hand; sweep : ``grid.sweep(faces)`` if at hand (numpy path); threads : worker
    threads for the chunks (default ``THREADS``; 1 runs everything in the calling thread); with_fans : False
    leaves the fans out (the caller adds ``fan_hits`` to ``Candidates.with_hits`` itself).
    """
    V = np.asarray(vertices, dtype=np.float64)
    F = np.asarray(faces, dtype=np.int64)
    z = np.zeros(0, dtype=np.int64)
    if len(F) < 2:
        return Candidates(z, z, np.zeros((0, 3)), z, z)
    if triangles is None:
        triangles = np.take(V, F, axis=0)
    if normals_raw is None:
        normals_raw = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    if grid is not None and grid.partial:  # it holds only some triangles: pairs of the others would be lost
        raise ValueError("candidates: needs a grid of every triangle, not one built with near=")
    grid = grid or TriangleGrid.build(triangles)
    tol = contact_tolerance(V)
    planes = _Planes.of(triangles, normals_raw)
    tri_c = np.ascontiguousarray(triangles, dtype=np.float64)

    def fans() -> tuple[np.ndarray, ...]:
        if not with_fans:
            return z, z, np.zeros((0, 3)), z, z
        return (*fan_hits(V, F, normals_raw, triangles), z, z)

    def grid_chunk(span: tuple[int, int] | tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, ...]:
        # grid pairs share no vertex: drop those wholly on one side of the other's plane
        if isinstance(span[0], int):
            i, j = _plane_reject(planes, *grid.chunk_pairs(sw, *span), tol)
        else:  # from the compiled loop: the plane filter compiled too
            i, j = span
            keep = np.zeros(len(i), dtype=bool)
            _cellpairs.plane_keep(i, j, planes.unit, planes.off, tri_c, keep, tol)
            i, j = np.compress(keep, i), np.compress(keep, j)
        i, j, si, sj = _split_same_sheet(planes, i, j, tol)
        if not len(i):
            return i, j, np.zeros((0, 3)), si, sj
        hit, pt = _test_pairs(V, F, normals_raw, i, j, tol)
        return i[hit], j[hit], pt[hit], si, sj

    threads = THREADS if threads is None else threads
    sw = None
    if threads <= 1:
        if _cellpairs is not None:
            found = [grid_chunk(ij) for ij in grid.cell_pairs(F)] + [fans()]
        else:
            sw = sweep if sweep is not None else grid.sweep(F)
            found = [grid_chunk(span) for span in grid.chunks(sw)] + [fans()]
    else:  # chunks of big numpy operations, which release the GIL at least inside each operation
        with ThreadPoolExecutor(max_workers=threads) as pool:
            near = pool.submit(fans)
            if _cellpairs is not None:
                found = list(pool.map(grid_chunk, grid.cell_pairs(F))) + [near.result()]
            else:
                sw = sweep if sweep is not None else grid.sweep(F)
                found = list(pool.map(grid_chunk, grid.chunks(sw))) + [near.result()]
    cat = [np.concatenate([f[k] for f in found]).astype(np.int64) for k in (0, 1, 3, 4)]
    return Candidates(cat[0], cat[1], np.concatenate([f[2] for f in found]).reshape(-1, 3), cat[2], cat[3])


def finish(cand: Candidates, vertices: np.ndarray, faces: np.ndarray, normals_raw: np.ndarray,
           shell_labels: np.ndarray, edges) -> SelfIntersections:
    """``candidates`` completed with what needs the topology: same-facing coplanar pairs of two shells, and
    the pairs sharing an edge that could fold (``_edge_pairs``), through the narrow phase; then each pair
    once (i < j), sorted, with whether it joins two shells.

    shell_labels : (m,) shell of each face; edges : the faces' ``topology.EdgeTable``."""
    V = np.asarray(vertices, dtype=np.float64)
    F = np.asarray(faces, dtype=np.int64)
    tol = contact_tolerance(V) if len(V) else 0.0
    found_i, found_j, found_x = [cand.hit_i], [cand.hit_j], [cand.points]
    two = np.take(shell_labels, cand.sheet_i) != np.take(shell_labels, cand.sheet_j)
    ei, ej = _edge_pairs(F, normals_raw, edges) if len(F) >= 2 else (cand.hit_i[:0], cand.hit_j[:0])
    ti = np.concatenate([np.compress(two, cand.sheet_i), ei]).astype(np.int64)
    tj = np.concatenate([np.compress(two, cand.sheet_j), ej]).astype(np.int64)
    if len(ti):
        hit, pt = _test_pairs(V, F, normals_raw, ti, tj, tol)
        found_i.append(ti[hit])
        found_j.append(tj[hit])
        found_x.append(pt[hit])
    P = np.sort(np.column_stack([np.concatenate(found_i), np.concatenate(found_j)]).astype(np.int64), axis=1)
    X = np.concatenate(found_x).reshape(-1, 3)
    # a pair found twice (sharing an edge, around an uncertified fan too) is the same test: keep one
    key = P[:, 0] * max(len(F), 1) + P[:, 1]
    _, first = np.unique(key, return_index=True)
    P, X = P[first], X[first]
    inter = np.take(shell_labels, P[:, 0]) != np.take(shell_labels, P[:, 1])
    return SelfIntersections(P, X, inter)


def self_intersections(vertices: np.ndarray, faces: np.ndarray, normals_raw: np.ndarray | None = None,
                       shell_labels: np.ndarray | None = None,
                       grid: TriangleGrid | None = None, edges=None,
                       triangles: np.ndarray | None = None, sweep: Sweep | None = None,
                       threads: int | None = None) -> SelfIntersections:
    """All intersecting face pairs of a mesh: ``candidates`` then ``finish``.

    vertices : (n, 3) float64; faces : (m, 3) int64; normals_raw : (m, 3) unnormalised face normals (cross
    products), computed when not given; shell_labels : (m,) shell of each face (to tell inter-shell pairs);
    grid : a prebuilt ``TriangleGrid`` of the faces; edges : the faces' ``topology.EdgeTable`` if at hand;
    triangles : (m, 3, 3) ``vertices[faces]`` if at hand; sweep : ``grid.sweep(faces)`` if at hand;
    threads : worker threads for the chunks (default ``THREADS``; 1 runs everything in the calling thread).

    Pairs that share no vertex come from the grid; pairs that share a vertex or an edge come from the mesh's
    own connectivity (``_fan_pairs``, ``_edge_pairs``), so the grid never has to test neighbours.
    """
    V = np.asarray(vertices, dtype=np.float64)
    F = np.asarray(faces, dtype=np.int64)
    if len(F) < 2:
        empty = np.zeros((0, 2), dtype=np.int64)
        return SelfIntersections(empty, np.zeros((0, 3)), np.zeros(0, dtype=bool))
    if triangles is None:
        triangles = np.take(V, F, axis=0)
    if normals_raw is None:
        normals_raw = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    if edges is None or shell_labels is None:
        from fabctl.mesh.topology import edge_table, shells

        edges = edges if edges is not None else edge_table(F)
        shell_labels = shell_labels if shell_labels is not None else shells(F, edges)[1]
    cand = candidates(V, F, normals_raw, grid=grid, triangles=triangles, sweep=sweep, threads=threads)
    return finish(cand, V, F, normals_raw, shell_labels, edges)
