"""The needle channel along the planned trajectory: is it open, how wide is it, how long is the runway.

The axis is ``entry + t * direction`` (t in mm, positive into the patient; the guide lies at t <= 0, above the
skin). Only triangles near the axis matter (within ``search_radius``). Exact geometry throughout:

- the guide's axial extent ``[t0, t1]``: where those triangles project onto the axis;
- the bore: the exact distance from the axis segment ``[t0, t1]`` to every nearby triangle (segment–triangle
  distance: crossing, end points to triangle, segment to each edge). Its minimum, doubled, is the narrowest
  bore diameter, and the closest point on that triangle is where it is narrowest. A cylinder of diameter D
  around the axis is free of material end to end exactly when that diameter is at least D (material lies
  behind a surface, and a surface the cylinder does not reach cannot put material inside it);
- the channel exists: rays cast from axis stations at ``ENCLOSURE_RAYS`` angles across the axis must all hit
  the guide, i.e. the axis runs through a bore that the guide encloses, not past the guide's edge;
- the runway: at each enclosed station, rays along ± ``slot_direction`` and across it; the free length along
  the slot minus the free width across it is the runway length (10 mm for a 3.3 x 13.3 mm stadium slot).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from trimesh.triangles import closest_point

from fabctl.mesh.topology import Geometry
from fabctl.plan import Plan

ENCLOSURE_RAYS = 8
STATION_MM = 0.5
RAY_STATIONS = 24
SEARCH_MARGIN_MM = 8.0


@dataclass
class ChannelMeasure:
    """What ``measure_channel`` found (all mm; points in the mesh frame)."""

    entry: np.ndarray
    direction: np.ndarray
    t_range: tuple[float, float] | None
    min_diameter: float
    narrowest_point: np.ndarray | None
    narrowest_t: float | None
    enclosed_stations: int
    stations: int
    slot_length: float | None
    obstruction_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    profile: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @property
    def found(self) -> bool:
        return self.t_range is not None and self.enclosed_stations > 0


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def segment_segment(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closest points of segments p0-p1 and q0-q1, all (k, 3): (k,) distance, (k,) s on p, (k,) u on q."""
    d1 = p1 - p0
    d2 = q1 - q0
    r = p0 - q0
    a = _dot(d1, d1)
    e = _dot(d2, d2)
    f = _dot(d2, r)
    c = _dot(d1, r)
    b = _dot(d1, d2)
    denom = a * e - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > 1e-12 * np.maximum(a * e, 1e-300), np.clip((b * f - c * e) / denom, 0, 1), 0.0)
        u = np.where(e > 0, (b * s + f) / np.where(e > 0, e, 1.0), 0.0)
        lo = u < 0
        s = np.where(lo, np.clip(np.where(a > 0, -c / np.where(a > 0, a, 1.0), 0.0), 0, 1), s)
        hi = u > 1
        s = np.where(hi, np.clip(np.where(a > 0, (b - c) / np.where(a > 0, a, 1.0), 0.0), 0, 1), s)
        u = np.clip(u, 0, 1)
    x = p0 + s[:, None] * d1
    y = q0 + u[:, None] * d2
    return np.linalg.norm(x - y, axis=1), s, u


def ray_triangle(origins: np.ndarray, dirs: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Möller–Trumbore, broadcast: origins/dirs (k, 3), tri (k, 3, 3) -> (k,) hit distance (inf: miss)."""
    e1 = tri[:, 1] - tri[:, 0]
    e2 = tri[:, 2] - tri[:, 0]
    pv = np.cross(dirs, e2)
    det = _dot(e1, pv)
    ok = np.abs(det) > 1e-12
    inv = 1.0 / np.where(ok, det, 1.0)
    tv = origins - tri[:, 0]
    u = _dot(tv, pv) * inv
    qv = np.cross(tv, e1)
    v = _dot(dirs, qv) * inv
    t = _dot(e2, qv) * inv
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    return np.where(hit, t, np.inf)


def segment_triangle(p0: np.ndarray, p1: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance from segments p0-p1 (k, 3) to triangles (k, 3, 3).

    Returns (k,) distance, (k,) parameter s in [0, 1] of the closest point on the segment, (k, 3) closest
    point on the triangle.
    """
    k = len(p0)
    best = np.full(k, np.inf)
    s_best = np.zeros(k)
    x_best = np.zeros((k, 3))
    for s_end, p in ((0.0, p0), (1.0, p1)):
        x = closest_point(tri, p)
        d = np.linalg.norm(x - p, axis=1)
        better = d < best
        best[better], s_best[better], x_best[better] = d[better], s_end, x[better]
    for j in range(3):
        a, b = tri[:, j], tri[:, (j + 1) % 3]
        d, s, u = segment_segment(p0, p1, a, b)
        better = d < best
        best[better], s_best[better] = d[better], s[better]
        x_best[better] = (a + u[:, None] * (b - a))[better]
    seg = p1 - p0
    length = np.linalg.norm(seg, axis=1)
    t = ray_triangle(p0, seg / np.maximum(length, 1e-300)[:, None], tri)
    cross = np.flatnonzero(t <= length)
    best[cross] = 0.0
    s_best[cross] = t[cross] / np.maximum(length[cross], 1e-300)
    x_best[cross] = p0[cross] + s_best[cross, None] * seg[cross]
    return best, s_best, x_best


def _basis(d: np.ndarray, hint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = hint - d * float(hint @ d)
    if np.linalg.norm(u) < 1e-6:
        u = np.cross(d, [1.0, 0.0, 0.0] if abs(d[0]) < 0.9 else [0.0, 1.0, 0.0])
    u = u / np.linalg.norm(u)
    return u, np.cross(d, u)


def _spans(k0: np.ndarray, k1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand integer ranges [k0, k1] (empty when k1 < k0): (owner index, value) of every member."""
    n = np.maximum(k1 - k0 + 1, 0)
    owner = np.repeat(np.arange(len(k0)), n)
    val = k0[owner] + (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n))
    return owner, val


def measure_channel(geo: Geometry, plan: Plan, required_diameter: float) -> ChannelMeasure:
    """Measure the channel along the plan's axis (see the module docstring)."""
    e = np.asarray(plan.entry_point_mm, dtype=np.float64)
    d = np.asarray(plan.direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    sd = np.asarray(plan.slot_direction, dtype=np.float64)
    u_slot, u_across = _basis(d, sd)
    search = plan.channel_diameter_mm / 2.0 + plan.slot_length_mm / 2.0 + SEARCH_MARGIN_MM
    # triangles near the axis line: centroid distance minus bounding radius
    cen = geo.centroid
    rel = cen - e
    t_c = rel @ d
    perp = np.linalg.norm(rel - t_c[:, None] * d, axis=1)
    rho = np.linalg.norm(geo.triangles - cen[:, None, :], axis=2).max(axis=1)
    near = np.flatnonzero(perp - rho <= search)
    empty = ChannelMeasure(e, d, None, 0.0, None, None, 0, 0, None)
    if not len(near):
        return empty
    tv = ((geo.triangles[near] - e) @ d).reshape(-1)
    t0, t1 = float(tv.min()), float(tv.max())
    # the bore and its walls: triangles within reach of the slot's outline (the rest is guide body, which the
    # axis can only meet through them)
    bore_reach = plan.channel_diameter_mm / 2.0 + plan.slot_length_mm / 2.0 + 1.0
    close = near[perp[near] - rho[near] <= bore_reach]
    if not len(close):
        close = near
    near = close
    tri = geo.triangles[near]
    # bore: exact distance from the axis segment to each nearby triangle
    a0 = np.repeat((e + t0 * d)[None], len(near), axis=0)
    a1 = np.repeat((e + t1 * d)[None], len(near), axis=0)
    dist, s, x = segment_triangle(a0, a1, tri)
    i = int(np.argmin(dist))
    min_d = float(2.0 * dist[i])
    t_at = float(t0 + s[i] * (t1 - t0))
    obst = x[dist < required_diameter / 2.0]
    # each triangle's span along the axis
    tt = (tri - e) @ d  # (k, 3)
    tlo, thi = tt.min(axis=1), tt.max(axis=1)
    # profile: at each axial station, twice the smallest distance of the triangles spanning it
    nst = max(2, int(np.ceil((t1 - t0) / STATION_MM)) + 1)
    ts = np.linspace(t0, t1, nst)
    step = (t1 - t0) / (nst - 1) if t1 > t0 else 1.0
    k0 = np.clip(np.floor((tlo - t0) / step).astype(np.int64), 0, nst - 1)
    k1 = np.clip(np.ceil((thi - t0) / step).astype(np.int64), 0, nst - 1)
    owner, st = _spans(k0, k1)
    prof = np.full(nst, np.inf)
    np.minimum.at(prof, st, 2.0 * dist[owner])
    # enclosure and runway: rays across the axis from stations inside the extent, each tested against the
    # triangles whose span covers its station
    inner = np.linspace(t0, t1, RAY_STATIONS + 2)[1:-1]
    ang = np.linspace(0, 2 * np.pi, ENCLOSURE_RAYS, endpoint=False)
    dirs = np.cos(ang)[:, None] * u_slot + np.sin(ang)[:, None] * u_across
    rstep = inner[1] - inner[0] if len(inner) > 1 else 1.0
    j0 = np.clip(np.ceil((tlo - inner[0]) / rstep).astype(np.int64), 0, len(inner))
    j1 = np.clip(np.floor((thi - inner[0]) / rstep).astype(np.int64), -1, len(inner) - 1)
    owner, st = _spans(j0, j1)
    hits = np.full((len(inner), ENCLOSURE_RAYS), np.inf)
    for r in range(ENCLOSURE_RAYS):
        o = e + inner[st, None] * d
        t = ray_triangle(o, np.broadcast_to(dirs[r], o.shape), tri[owner])
        col = np.full(len(inner), np.inf)
        np.minimum.at(col, st, t)
        hits[:, r] = col
    enclosed = np.isfinite(hits).all(axis=1)
    slot = None
    if enclosed.any():
        # ang index 0 = +slot, ENCLOSURE_RAYS/2 = -slot, /4 and 3/4 = across
        q = ENCLOSURE_RAYS // 4
        along = hits[enclosed, 0] + hits[enclosed, 2 * q]
        across = hits[enclosed, q] + hits[enclosed, 3 * q]
        slot = float(np.min(along - across))
    profile = np.column_stack([ts, prof])
    return ChannelMeasure(e, d, (t0, t1), min_d, x[i], t_at, int(enclosed.sum()), len(inner), slot, obst,
                          profile)
