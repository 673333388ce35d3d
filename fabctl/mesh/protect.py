"""Protected surfaces of a guide: the needle channel's bore, the skin-contact surface, the plan's regions.

A support scar on the contact surface spoils the fit; one inside the channel deflects the needle. This module
finds those faces from the plan, as a boolean mask over the mesh's faces with a reason bit per face:

* channel (bit 1): faces of the bore wall: within channel radius + margin of the planned axis, swept along
  the runway slot (``slot_length_mm`` centred on the axis along ``slot_direction``), and facing across the
  axis (normal at least 45° from it). Faces that face along the axis are the boss's end or the plate around
  the opening: they are kept clean by the contact margin, not by the mask, so that the mask (and with it
  orientation feasibility) does not change with tessellation.
* skin (bit 2): with a skin mesh, faces whose centroid lies within ``skin_contact_distance_mm`` of it and
  that face it (|n · n_skin| >= 0.5); without one, faces that face the patient (n · direction >= 0.3) and
  are the first surface seen from the patient's side (a z-buffer looking back along the trajectory).
* region (bit 4): faces with any point within a ``protected_regions`` sphere.

``KeepOut`` answers "how far is this point from the protected faces, at least" for the generator, from a
dense sample cloud of the protected faces; the proof measures exact point-triangle distances on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from fabctl.mesh.render_supports import zbuffer
from fabctl.mesh.types import frozen_array
from fabctl.plan import Plan
from fabctl.process import ProtectSettings

CHANNEL, SKIN, REGION = 1, 2, 4
REASONS = {"channel": CHANNEL, "skin": SKIN, "region": REGION}


@dataclass(frozen=True, slots=True)
class Channel:
    """The planned bore: the strip entry + t*axis + s*slot, |s| <= half_slot, widened by ``radius``.

    entry, axis, slot : (3,) float64, axis and slot unit vectors
    t_range : (2,) float64, extent of the bore faces along the axis (mm from the entry point)
    """

    entry: np.ndarray
    axis: np.ndarray
    slot: np.ndarray
    half_slot_mm: float
    radius_mm: float
    t_range: tuple[float, float]

    def transformed(self, transform: np.ndarray) -> Channel:
        """The channel in the frame reached by the 4x4 rigid ``transform``."""
        r, t = transform[:3, :3], transform[:3, 3]
        return Channel(r @ self.entry + t, r @ self.axis, r @ self.slot, self.half_slot_mm, self.radius_mm,
                       self.t_range)

    def distance(self, points: np.ndarray, clip_t: bool = False) -> np.ndarray:
        """(k,) distance of (k, 3) points from the channel's centre strip (infinite along the axis unless
        ``clip_t``, then limited to ``t_range``)."""
        w = np.asarray(points, dtype=np.float64) - self.entry
        t = w @ self.axis
        if clip_t:
            t = np.clip(t, *self.t_range)
        s = np.clip(w @ self.slot, -self.half_slot_mm, self.half_slot_mm)
        res = w - t[:, None] * self.axis - s[:, None] * self.slot
        return np.linalg.norm(res, axis=1)


@dataclass(frozen=True, slots=True)
class Protection:
    """Protected faces of one mesh.

    mask    : (m,) bool, protected faces
    reasons : (m,) uint8, CHANNEL | SKIN | REGION bits
    areas_mm2 : protected area by reason name
    channel : the planned bore in the mesh's frame
    regions : (r, 4) float64, the plan's protected spheres (centre x, y, z, radius) in the mesh's frame;
        a region protects the surface inside its sphere, so distances to it are measured to the sphere
        (exact at any tessellation), while REGION marks every face that reaches into one
    """

    mask: np.ndarray
    reasons: np.ndarray
    areas_mm2: dict[str, float]
    channel: Channel
    skin_source: str
    regions: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))

    @property
    def hard(self) -> np.ndarray:
        """(m,) bool: faces protected as a whole (bore, skin); regions are protected by their spheres."""
        return (self.reasons & (CHANNEL | SKIN)) > 0

    def summary(self) -> dict:
        return {"faces": int(self.mask.sum()), "skin_source": self.skin_source,
                "areas_mm2": {k: round(v, 3) for k, v in self.areas_mm2.items()}}


def _normals_areas(tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cr = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    dbl = np.linalg.norm(cr, axis=1)
    return cr / np.maximum(dbl, 1e-300)[:, None], dbl / 2.0


def plan_channel(plan: Plan, tri: np.ndarray | None = None, margin_mm: float = 0.0) -> Channel:
    """The plan's bore; with the mesh's (m, 3, 3) triangles, its axial extent is that of the bore faces."""
    ch = Channel(np.array(plan.entry_point_mm, float), np.array(plan.direction, float),
                 np.array(plan.slot_direction, float), plan.slot_length_mm / 2.0,
                 plan.channel_diameter_mm / 2.0, (-1e9, 1e9))
    if tri is None:
        return ch
    mask = _channel_faces(tri, ch, margin_mm)
    if not mask.any():
        return Channel(ch.entry, ch.axis, ch.slot, ch.half_slot_mm, ch.radius_mm, (0.0, 0.0))
    t = (tri[mask].reshape(-1, 3) - ch.entry) @ ch.axis
    return Channel(ch.entry, ch.axis, ch.slot, ch.half_slot_mm, ch.radius_mm, (float(t.min()), float(t.max())))


def _channel_faces(tri: np.ndarray, ch: Channel, margin_mm: float) -> np.ndarray:
    n, _ = _normals_areas(tri)
    limit = ch.radius_mm + margin_mm
    near = ch.distance(tri.mean(axis=1)) <= limit
    for k in range(3):
        near &= ch.distance(tri[:, k]) <= limit + 1e-9
    across = np.abs(n @ ch.axis) <= np.cos(np.radians(45.0))
    return near & across


def _skin_faces_from_mesh(tri: np.ndarray, skin_tri: np.ndarray, dist_mm: float) -> np.ndarray:
    import trimesh

    n, _ = _normals_areas(tri)
    sn, _ = _normals_areas(skin_tri)
    cent = tri.mean(axis=1)
    sc = skin_tri.mean(axis=1)
    reach = dist_mm + float(np.linalg.norm(skin_tri - sc[:, None], axis=2).max())
    pairs = cKDTree(sc).query_ball_point(cent, reach)
    counts = np.fromiter((len(p) for p in pairs), dtype=np.int64, count=len(pairs))
    fi = np.repeat(np.arange(len(tri)), counts)
    si = np.fromiter((j for p in pairs for j in p), dtype=np.int64, count=int(counts.sum()))
    out = np.zeros(len(tri), dtype=bool)
    if not len(fi):
        return out
    cp = trimesh.triangles.closest_point(skin_tri[si], cent[fi])
    d = np.linalg.norm(cp - cent[fi], axis=1)
    facing = np.abs(np.einsum("ij,ij->i", n[fi], sn[si])) >= 0.5
    ok = (d <= dist_mm) & facing
    out[fi[ok]] = True
    return out


def _skin_faces_from_direction(tri: np.ndarray, direction: np.ndarray, pixel_mm: float = 0.2) -> np.ndarray:
    """Faces seen first from the patient's side (looking back along ``direction``) that face the patient."""
    n, _ = _normals_areas(tri)
    d = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(d, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(d, e1)
    uv = np.stack([tri @ e1, tri @ e2], axis=-1)
    lo = uv.reshape(-1, 2).min(axis=0) - 2 * pixel_mm
    px = (uv - lo) / pixel_mm
    shape = (int(np.ceil(px[..., 1].max())) + 2, int(np.ceil(px[..., 0].max())) + 2)
    depth = tri @ d  # deeper into the patient = nearer the viewer standing in the patient
    zb, _ = zbuffer(px, depth, shape)
    c = tri.mean(axis=1)
    cp = ((np.stack([c @ e1, c @ e2], axis=1) - lo) / pixel_mm).astype(np.int64)
    cp[:, 0] = np.clip(cp[:, 0], 0, shape[1] - 1)
    cp[:, 1] = np.clip(cp[:, 1], 0, shape[0] - 1)
    cos = n @ d
    slope = np.sqrt(np.clip(1.0 - cos ** 2, 0.0, 1.0)) / np.maximum(cos, 0.05)
    tol = 0.3 + pixel_mm * slope
    seen = (c @ d) >= zb[cp[:, 1], cp[:, 0]] - tol
    return seen & (cos >= 0.3)


def _region_faces(tri: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    import trimesh

    c = tri.mean(axis=1)
    reach = np.linalg.norm(tri - c[:, None], axis=2).max(axis=1)
    cand = np.linalg.norm(c - centre, axis=1) <= radius + reach
    out = np.zeros(len(tri), dtype=bool)
    if cand.any():
        idx = np.nonzero(cand)[0]
        cp = trimesh.triangles.closest_point(tri[idx], np.tile(centre, (len(idx), 1)))
        out[idx[np.linalg.norm(cp - centre, axis=1) <= radius]] = True
    return out


def protected_faces(vertices: np.ndarray, faces: np.ndarray, plan: Plan, settings: ProtectSettings,
                    skin: tuple[np.ndarray, np.ndarray] | None = None) -> Protection:
    """Protected faces of the guide ``(vertices (n, 3), faces (m, 3))`` in the plan's frame.

    skin : optional (vertices, faces) of the skin surface (the plan's ``skin_surface``)
    """
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    _, area = _normals_areas(tri)
    ch = plan_channel(plan, tri, settings.channel_margin_mm)
    reasons = np.zeros(len(tri), dtype=np.uint8)
    reasons[_channel_faces(tri, ch, settings.channel_margin_mm)] |= CHANNEL
    if skin is not None and len(skin[1]):
        skin_tri = np.asarray(skin[0], dtype=np.float64)[np.asarray(skin[1])]
        skin_mask, source = _skin_faces_from_mesh(tri, skin_tri, settings.skin_contact_distance_mm), "mesh"
    else:
        skin_mask, source = _skin_faces_from_direction(tri, np.array(plan.direction, float)), "direction"
    reasons[skin_mask & (reasons & CHANNEL == 0)] |= SKIN
    for region in plan.protected_regions:
        reasons[_region_faces(tri, np.array(region.center_mm, float), region.radius_mm)] |= REGION
    areas = {name: float(area[(reasons & bit) > 0].sum()) for name, bit in REASONS.items()}
    spheres = np.array([[*r.center_mm, r.radius_mm] for r in plan.protected_regions], dtype=float).reshape(-1, 4)
    return Protection(frozen_array(reasons > 0, bool), frozen_array(reasons, np.uint8), areas, ch, source,
                      frozen_array(spheres, np.float64))


def transform_spheres(spheres: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """(r, 4) spheres (centre, radius) moved by a 4x4 rigid transform."""
    s = np.asarray(spheres, dtype=np.float64).reshape(-1, 4)
    return np.column_stack([s[:, :3] @ transform[:3, :3].T + transform[:3, 3], s[:, 3]])


def sphere_distance(points: np.ndarray, spheres: np.ndarray) -> np.ndarray:
    """(k,) distance from (k, 3) points to the nearest of (r, 4) solid spheres (0 inside; inf if none)."""
    s = np.asarray(spheres, dtype=np.float64).reshape(-1, 4)
    if not len(s):
        return np.full(len(points), np.inf)
    d = np.linalg.norm(np.asarray(points)[:, None, :] - s[None, :, :3], axis=2) - s[None, :, 3]
    return np.maximum(d.min(axis=1), 0.0)


class KeepOut:
    """Lower bounds on the distance from points to the protected surface: faces protected as a whole (from
    a dense sample cloud: every point of a triangle lies within ``spacing`` of a sample, so the bound never
    overstates) and the plan's region spheres (exact)."""

    def __init__(self, tri: np.ndarray, spacing_mm: float = 0.2, spheres: np.ndarray | None = None) -> None:
        self.spacing = float(spacing_mm)
        self.tri = np.asarray(tri, dtype=np.float64)
        pts = sample_triangles(tri, spacing_mm)
        self.tree = cKDTree(pts) if len(pts) else None
        self.spheres = np.zeros((0, 4)) if spheres is None else np.asarray(spheres, dtype=np.float64)
        self._centres: cKDTree | None = None

    def exact(self, points: np.ndarray) -> np.ndarray:
        """(k,) exact distance of (k, 3) points to the protected surface (faces and spheres): the same at
        any tessellation of the same geometry. Slower than ``distance``: for a few points."""
        import trimesh

        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        out = sphere_distance(pts, self.spheres)
        if not len(self.tri) or not len(pts):
            return out
        c = self.tri.mean(axis=1)
        if self._centres is None:
            self._centres = cKDTree(c)
            self._reach = float(np.linalg.norm(self.tri - c[:, None], axis=2).max())
        d0, _ = self._centres.query(pts)
        lists = self._centres.query_ball_point(pts, d0 + self._reach + 1e-9)
        cnt = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(pts))
        pi = np.repeat(np.arange(len(pts)), cnt)
        ti = np.fromiter((j for x in lists for j in x), dtype=np.int64, count=int(cnt.sum()))
        d = np.linalg.norm(trimesh.triangles.closest_point(self.tri[ti], pts[pi]) - pts[pi], axis=1)
        best = np.full(len(pts), np.inf)
        np.minimum.at(best, pi, d)
        return np.minimum(out, best)

    def distance(self, points: np.ndarray) -> np.ndarray:
        """(k,) lower bounds of the distance of (k, 3) points to the protected surface (inf if none)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        out = sphere_distance(pts, self.spheres)
        if self.tree is not None and len(pts):
            d, _ = self.tree.query(pts)
            out = np.minimum(out, np.maximum(d - self.spacing, 0.0))
        return out


def sample_triangles(tri: np.ndarray, spacing_mm: float) -> np.ndarray:
    """(k, 3) points on (m, 3, 3) triangles, every triangle point within ``spacing_mm`` of one of them.

    Rows parallel to each triangle's longest edge, ``spacing_mm / 2`` apart, each row sampled every
    ``spacing_mm / 2`` or closer (so any point is within ``spacing_mm / sqrt(2)``); the count grows with the
    area, not with the square of the longest edge.
    """
    if len(tri) == 0:
        return np.zeros((0, 3))
    edge = np.linalg.norm(tri[:, [1, 2, 0]] - tri, axis=2)  # edge k runs from corner k to corner k+1
    k0 = np.argmax(edge, axis=1)
    idx = (k0[:, None] + np.arange(3)[None]) % 3
    t = np.take_along_axis(tri, idx[..., None], axis=1)  # longest edge is now corner 0 -> corner 1
    base = np.linalg.norm(t[:, 1] - t[:, 0], axis=1)
    cr = np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)
    height = cr / np.maximum(base, 1e-300)
    half = spacing_mm / 2.0
    rows = np.ceil(height / half).astype(np.int64) + 1
    ti = np.repeat(np.arange(len(t)), rows)
    j = np.arange(int(rows.sum())) - np.repeat(np.cumsum(rows) - rows, rows)
    b = j / np.maximum(rows[ti] - 1, 1)
    per = np.ceil((1.0 - b) * base[ti] / half).astype(np.int64) + 1
    ri = np.repeat(np.arange(len(ti)), per)
    i = np.arange(int(per.sum())) - np.repeat(np.cumsum(per) - per, per)
    a = i / np.maximum(per[ri] - 1, 1)
    tr, br = ti[ri], b[ri]
    start = (1.0 - br)[:, None] * t[tr, 0] + br[:, None] * t[tr, 2]
    end = (1.0 - br)[:, None] * t[tr, 1] + br[:, None] * t[tr, 2]
    return start + a[:, None] * (end - start)


def ball_area(tri: np.ndarray, spheres: np.ndarray) -> np.ndarray:
    """(m,) area of each (m, 3, 3) triangle inside the (r, 4) spheres, summed over the spheres (an area in
    two overlapping spheres counts twice). Exact (the triangle cut by the disc the sphere makes in its
    plane), so it adds up the same over any subdivision of the triangle."""
    s = np.asarray(spheres, dtype=np.float64).reshape(-1, 4)
    n, _ = _normals_areas(tri)
    out = np.zeros(len(tri))
    if not len(s) or not len(tri):
        return out
    c = tri.mean(axis=1)
    reach = np.linalg.norm(tri - c[:, None], axis=2).max(axis=1)
    fi, si = np.nonzero(np.linalg.norm(c[:, None] - s[None, :, :3], axis=2) < reach[:, None] + s[None, :, 3])
    t, ctr, r, nn = tri[fi], s[si, :3], s[si, 3], n[fi]
    d = np.einsum("ij,ij->i", ctr - t[:, 0], nn)
    rho2 = r * r - d * d
    foot = ctr - d[:, None] * nn
    e1 = t[:, 1] - t[:, 0]
    e1 /= np.maximum(np.linalg.norm(e1, axis=1, keepdims=True), 1e-300)
    e2 = np.cross(nn, e1)
    rel = t - foot[:, None]
    p = np.stack([np.einsum("ikj,ij->ik", rel, e1), np.einsum("ikj,ij->ik", rel, e2)], axis=-1)  # (q, 3, 2)
    total = sum(_disc_edge(p[:, k], p[:, (k + 1) % 3], np.maximum(rho2, 0.0)) for k in range(3))
    np.add.at(out, fi, np.where(rho2 > 0, np.abs(total), 0.0))
    return out


def _disc_edge(a: np.ndarray, b: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Signed area of the disc (origin, radius² r2) cut by the triangle (origin, a, b); (q, 2) each."""
    d = b - a
    qa = np.einsum("ij,ij->i", d, d)
    qb = 2.0 * np.einsum("ij,ij->i", a, d)
    qc = np.einsum("ij,ij->i", a, a) - r2
    disc = qb * qb - 4.0 * qa * qc
    root = np.sqrt(np.maximum(disc, 0.0))
    safe = np.maximum(qa, 1e-300)
    t1 = np.where(disc > 0, np.clip((-qb - root) / (2.0 * safe), 0.0, 1.0), 0.0)
    t2 = np.where(disc > 0, np.clip((-qb + root) / (2.0 * safe), 0.0, 1.0), 0.0)
    p1, p2 = a + t1[:, None] * d, a + t2[:, None] * d

    def cross(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]

    def sector(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 0.5 * r2 * np.arctan2(cross(x, y), np.einsum("ij,ij->i", x, y))

    return sector(a, p1) + 0.5 * cross(p1, p2) + sector(p2, b)
