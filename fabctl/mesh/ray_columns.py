"""Vertical-ray columns through a triangle mesh: crossings of vertical lines, and interior sample grids.

Shared by the orientation optimiser (interior points for the peak layer cross-section) and the support
generator (what a contact sees below it, whether a pillar's column is clear). The support proof does not use
it: it slices on its own.
"""

from __future__ import annotations

import numpy as np


def vertical_hits(tri: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crossings of the vertical lines through ``xy`` with the triangles.

    tri : (m, 3, 3) float64; xy : (k, 2) float64
    Returns (query index (h,), z (h,), face index (h,)), sorted by query then z, with hits on shared edges
    counted once per facing direction.
    """
    empty = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
    area2 = ((tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1])
             - (tri[:, 1, 1] - tri[:, 0, 1]) * (tri[:, 2, 0] - tri[:, 0, 0]))
    use = np.nonzero(np.abs(area2) > 1e-14)[0]
    if not len(use) or not len(xy):
        return empty
    t2 = tri[use, :, :2]
    lo, hi = t2.min(axis=1), t2.max(axis=1)
    origin = np.minimum(lo.min(axis=0), xy.min(axis=0)) - 1e-6
    span = np.maximum(hi.max(axis=0), xy.max(axis=0)) - origin
    cell = max(float(np.median(np.ptp(t2, axis=1).max(axis=1))) * 2.0, float(span.max()) / 1024.0, 1e-3)
    dims = np.ceil(span / cell).astype(np.int64) + 1
    i0 = np.floor((lo - origin) / cell).astype(np.int64)
    i1 = np.floor((hi - origin) / cell).astype(np.int64)
    nx, ny = i1[:, 0] - i0[:, 0] + 1, i1[:, 1] - i0[:, 1] + 1
    cnt = nx * ny
    ti = np.repeat(np.arange(len(use)), cnt)
    k = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    cid = (i0[ti, 0] + k % nx[ti]) * dims[1] + (i0[ti, 1] + k // nx[ti])
    order = np.argsort(cid, kind="stable")
    cid, ti = cid[order], ti[order]
    start = np.searchsorted(cid, np.arange(dims[0] * dims[1]))
    stop = np.searchsorted(cid, np.arange(dims[0] * dims[1]), side="right")
    qc = np.floor((xy - origin) / cell).astype(np.int64)
    qcell = qc[:, 0] * dims[1] + qc[:, 1]
    n = stop[qcell] - start[qcell]
    qi = np.repeat(np.arange(len(xy)), n)
    kk = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    fi = use[ti[np.repeat(start[qcell], n) + kk]]
    return _column_cross(tri, xy, qi, fi)


def _column_cross(tri: np.ndarray, xy: np.ndarray, qi: np.ndarray,
                  fi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b, c = tri[fi, 0], tri[fi, 1], tri[fi, 2]
    p = xy[qi]
    d = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    w1 = ((p[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (p[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])) / d
    w2 = ((b[:, 0] - a[:, 0]) * (p[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (p[:, 0] - a[:, 0])) / d
    w0 = 1.0 - w1 - w2
    ok = (w0 >= -1e-12) & (w1 >= -1e-12) & (w2 >= -1e-12)
    qi, fi, d = qi[ok], fi[ok], d[ok]
    z = w0[ok] * a[ok, 2] + w1[ok] * b[ok, 2] + w2[ok] * c[ok, 2]
    up = np.sign(d)  # +1: the face's normal has a positive z component
    order = np.lexsort((up, z, qi))
    qi, z, fi, up = qi[order], z[order], fi[order], up[order]
    dup = np.zeros(len(qi), dtype=bool)
    dup[1:] = (qi[1:] == qi[:-1]) & (np.abs(z[1:] - z[:-1]) < 1e-7) & (up[1:] == up[:-1])
    return qi[~dup], z[~dup], fi[~dup]


def volume_samples(tri: np.ndarray, count: int) -> tuple[np.ndarray, float]:
    """Interior points of a closed mesh on a regular grid of about ``count`` points, and the grid pitch.

    The grid is fixed by the bounding box and the volume only (never by the tessellation), offset by an
    irrational fraction of a pitch so that its columns do not run along mesh edges.
    """
    v = tri.reshape(-1, 3)
    vol = abs(float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum()) / 6.0)
    # rounded: the volume sum differs in its last bits between tessellations, the grid must not
    pitch = round(max((vol / max(count, 1)) ** (1.0 / 3.0), 1e-3), 6)
    lo, hi = v.min(axis=0), v.max(axis=0)
    off = pitch * (0.5 + 0.1372)
    xs = np.arange(lo[0] + off, hi[0], pitch)
    ys = np.arange(lo[1] + off, hi[1], pitch)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    xy = np.stack([gx.ravel(), gy.ravel()], axis=1)
    qi, z, fi = vertical_hits(tri, xy)
    nz = np.cross(tri[fi, 1] - tri[fi, 0], tri[fi, 2] - tri[fi, 0])[:, 2]
    w = np.where(nz < 0, 1, -1)
    cum = np.cumsum(w)
    first = np.searchsorted(qi, qi)  # index of each hit's column's first hit
    wind = cum - np.concatenate([[0], cum])[first]
    nxt = np.append(z[1:], np.inf)
    same = np.append(qi[1:] == qi[:-1], False)
    seg = np.nonzero(same & (wind > 0))[0]
    z0 = lo[2] + off
    k0 = np.ceil((z[seg] - z0) / pitch).astype(np.int64)
    k1 = np.floor((nxt[seg] - z0) / pitch).astype(np.int64)
    n = np.maximum(k1 - k0 + 1, 0)
    si = np.repeat(seg, n)
    kk = np.repeat(k0, n) + np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    pts = np.column_stack([xy[qi[si]], z0 + kk * pitch])
    return pts, pitch
