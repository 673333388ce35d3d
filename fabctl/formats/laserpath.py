"""Laser scan paths from a ``SliceStack`` layer: beam-offset contours and hatch lines.

* Contours are offset to the solid side (left of travel, see ``fabctl.slicestack``) by ``offset_mm``
  (half the laser spot), vertex by vertex along the bisector of the two edge normals (mitre, limited to
  ``2 x offset_mm``), so the cured line's outer edge lies on the nominal boundary. Features thinner than a
  spot are not removed (the validate stage owns minimum wall thickness).
* Hatching fills the region inside the offset contours with parallel lines ``spacing_mm`` apart at
  ``angle_deg`` (the caller alternates it per layer); spans come from sorted crossings with the nonzero
  rule, and every other line runs backwards (boustrophedon) to shorten jumps.
"""

from __future__ import annotations

import math

import numpy as np


def offset_loops(points: np.ndarray, offsets: np.ndarray, d: float) -> np.ndarray:
    """(p, 2) loop points moved ``d`` mm to the left of travel (inwards into the solid).

    points : (p, 2) loops back to back; offsets : (l + 1,) loop offsets into ``points``.
    """
    if d == 0 or len(points) == 0:
        return np.array(points, dtype=np.float64)
    n = len(points)
    nxt = np.arange(1, n + 1)
    nxt[offsets[1:] - 1] = offsets[:-1]
    prv = np.arange(-1, n - 1)
    prv[offsets[:-1]] = offsets[1:] - 1
    e = points[nxt] - points
    length = np.linalg.norm(e, axis=1)
    e = e / np.maximum(length, 1e-12)[:, None]
    normal = np.column_stack([-e[:, 1], e[:, 0]])           # left normal of edge k (from point k)
    n_in, n_out = normal[prv], normal                      # edges before and after each point
    bis = n_in + n_out
    cos_half_sq = np.maximum((1.0 + np.einsum("ij,ij->i", n_in, n_out)) / 2.0, 0.25)  # mitre limit 2
    move = bis / (2.0 * cos_half_sq)[:, None]
    return points + d * move


def hatch(a: np.ndarray, b: np.ndarray, spacing_mm: float, angle_deg: float) -> np.ndarray:
    """(h, 2, 2) hatch segments filling the region bounded by edges ``a -> b`` (each (e, 2) mm)."""
    if len(a) == 0:
        return np.zeros((0, 2, 2))
    t = math.radians(angle_deg)
    c, s = math.cos(t), math.sin(t)
    rot = np.array([[c, s], [-s, c]])                      # platform -> hatch frame (lines along x')
    ra, rb = a @ rot.T, b @ rot.T
    y0 = math.floor(min(ra[:, 1].min(), rb[:, 1].min()) / spacing_mm)
    ya, yb = ra[:, 1] / spacing_mm - y0, rb[:, 1] / spacing_mm - y0
    lo, hi = np.minimum(ya, yb), np.maximum(ya, yb)
    k0 = np.ceil(lo - 0.5)
    n = (np.ceil(hi - 0.5) - k0).astype(np.int64)          # lines y_k = k + 1/2, half-open [lo, hi)
    n = np.maximum(n, 0)
    edge = np.repeat(np.arange(len(ra)), n)
    k = np.repeat(k0, n) + (np.arange(len(edge)) - np.repeat(np.cumsum(n) - n, n))
    yk = k + 0.5
    ea, eb = ra[edge], rb[edge]
    eya, eyb = ya[edge], yb[edge]
    x = ea[:, 0] + (yk - eya) * (eb[:, 0] - ea[:, 0]) / (eyb - eya)
    w = np.where(eyb > eya, 1, -1)
    order = np.lexsort((x, k))
    k, x, w = k[order], x[order], w[order]
    cum = np.cumsum(w)
    inside = cum != 0
    start = inside & np.r_[True, ~inside[:-1]]
    stop_idx = np.flatnonzero(~inside & np.r_[False, inside[:-1]])
    start_idx = np.flatnonzero(start)
    if len(start_idx) != len(stop_idx):
        return np.zeros((0, 2, 2))
    line = k[start_idx]
    xs, xe = x[start_idx], x[stop_idx]
    back = (line.astype(np.int64) % 2) == 1
    xs, xe = np.where(back, xe, xs), np.where(back, xs, xe)
    ymm = (line + 0.5 + y0) * spacing_mm
    seg = np.stack([np.column_stack([xs, ymm]), np.column_stack([xe, ymm])], axis=1)
    return seg @ rot                                        # back to the platform frame


def layer_angle(i: int, base_deg: float = 0.0, step_deg: float = 90.0) -> float:
    """Hatch angle of layer ``i``: alternates by ``step_deg`` each layer."""
    return (base_deg + step_deg * (i % 2)) % 180.0
