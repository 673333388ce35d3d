"""Support points, heads, pillars, braces and pad for an oriented part, never touching protected faces.

Points (printer frame, +Z up):
* every local minimum of the part (a vertex with no lower neighbour and a down-facing face; flat or edge
  minima are clusters of such vertices joined along level edges, covered every ``sqrt(area per point)``);
* every overhanging bottom crease (an edge flatter than the critical angle with both faces rising away
  from it, the line analogue of a minimum: a keel prints as a new sliver every layer), every
  ``sqrt(area per point)`` along it;
* overhangs: a hexagonal XY grid with one node per ``area_per_point_mm2`` of projected area; a node whose
  vertical line first meets the part (from below) on a face that needs support becomes a point there;
* one point for any connected overhang region the grid missed.
Points are only ever taken on unprotected faces at least ``contact_margin_mm`` from every protected face
(``KeepOut``), and grid points keep ``min_point_distance_mm`` from the minima.

Each point gets a head (a cone from the contact, along the surface normal clamped to the critical angle, or
the first of a fixed set of other directions whose head, junction and pillar are clear of the part and the
channel), a junction sphere and a vertical pillar with a base cone down to the pad. A point with no clear
route is dropped and reported; a local minimum with no clear route makes the part unsupportable
(``CheckFailed``): refusing beats printing an island in mid-air. (A crease or overhang point without a
route is an edge of material already attached: dropped and counted; the proof decides about islands.) Pillars taller than ``brace_min_height_mm``
are joined to their neighbours (a minimum spanning forest within ``brace_max_link_mm``) by 45° zig-zag braces
that keep clear of the part. The pad is the convex hull of the bases plus the brim.

Bodies are built as watertight meshes (``support_bodies``) and united with manifold3d when it is installed;
without it they stay separate watertight bodies that may overlap (slice them with a non-zero rule).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial import cKDTree

from fabctl.errors import CheckFailed
from fabctl.mesh import support_bodies as bodies
from fabctl.mesh.orient import LEVEL_SLOPE, OrientedPart
from fabctl.mesh.protect import KeepOut, sample_triangles
from fabctl.mesh.ray_columns import vertical_hits
from fabctl.mesh.types import frozen_array
from fabctl.process import ProcessProfile

log = logging.getLogger(__name__)

OVERHANG, MINIMUM, CREASE = 0, 1, 2
CLEAR_SPACING_MM = 0.5  # sample spacing of the part for clearance bounds (distances are reduced by it)
KEEPOUT_SPACING_MM = 0.4
KIND_NAMES = {OVERHANG: "overhang", MINIMUM: "minimum", CREASE: "crease"}


@dataclass(frozen=True, slots=True)
class SupportedPart:
    """An oriented part with its supports (printer frame, mm).

    contacts  : (k, 3) float64, where each head touches the part
    head_dirs : (k, 3) float64, unit vector from the contact along the head
    kinds     : (k,) uint8, OVERHANG / MINIMUM / CREASE
    junctions : (k, 3) float64, head back end = pillar top
    support_vertices, support_faces : the support geometry (heads, pillars, bases, braces, pad)
    support_body : (m_s,) int32, body index of each support face; ``body_kinds`` names each body
    print_vertices, print_faces : part united with the supports (None without manifold3d)
    """

    part: OrientedPart
    contacts: np.ndarray
    head_dirs: np.ndarray
    kinds: np.ndarray
    junctions: np.ndarray
    support_vertices: np.ndarray
    support_faces: np.ndarray
    support_body: np.ndarray
    body_kinds: tuple[str, ...]
    print_vertices: np.ndarray | None
    print_faces: np.ndarray | None
    stats: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- geometry


def face_normals(tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, 3) unit normals and (m,) areas of (m, 3, 3) triangles."""
    cr = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    dbl = np.linalg.norm(cr, axis=1)
    return cr / np.maximum(dbl, 1e-300)[:, None], dbl / 2.0


def segment_hits(tri: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(k,) bool: whether segments a -> b ((k, 3) each) cross any of the (m, 3, 3) triangles.

    Candidate pairs come from k-d trees over triangle centroids, one per size class (so one long
    triangle does not widen every search).
    """
    out = np.zeros(len(a), dtype=bool)
    if not len(a) or not len(tri):
        return out
    c = tri.mean(axis=1)
    rad = np.linalg.norm(tri - c[:, None], axis=2).max(axis=1)
    mid, half = (a + b) / 2.0, np.linalg.norm(b - a, axis=1) / 2.0
    cls = np.minimum(np.ceil(np.log2(np.maximum(rad, 0.5) / 0.5)).astype(np.int64), 12)
    for k in np.unique(cls):
        idx = np.nonzero(cls == k)[0]
        lists = cKDTree(c[idx]).query_ball_point(mid, half + float(rad[idx].max()))
        cnt = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(a))
        si = np.repeat(np.arange(len(a)), cnt)
        ti = idx[np.fromiter((j for x in lists for j in x), dtype=np.int64, count=int(cnt.sum()))]
        hit = _moller_trumbore(tri[ti], a[si], b[si] - a[si])
        out[si[hit]] = True
    return out


def _moller_trumbore(tri: np.ndarray, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """(p,) bool: segment o + t d, t in [0, 1], meets triangle (pairwise)."""
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    pv = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, pv)
    ok = np.abs(det) > 1e-14
    inv = 1.0 / np.where(ok, det, 1.0)
    tv = o - tri[:, 0]
    u = np.einsum("ij,ij->i", tv, pv) * inv
    qv = np.cross(tv, e1)
    v = np.einsum("ij,ij->i", d, qv) * inv
    t = np.einsum("ij,ij->i", e2, qv) * inv
    return ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t >= 0) & (t <= 1)


# ------------------------------------------------------------------------------------------ creases


@dataclass(frozen=True, slots=True)
class EdgeFaces:
    """Manifold edges with their two faces and the faces' opposite corners.

    edges (e, 2), faces (e, 2), opposite (e, 2): vertex / face / vertex indices
    """

    edges: np.ndarray
    faces: np.ndarray
    opposite: np.ndarray


def edge_faces(faces: np.ndarray) -> EdgeFaces:
    """Edges shared by exactly two faces (m, 3), each with both faces and their opposite corners."""
    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    opp = np.concatenate([f[:, 2], f[:, 0], f[:, 1]])
    owner = np.tile(np.arange(len(f)), 3)
    key = np.sort(e, axis=1)
    order = np.lexsort((key[:, 1], key[:, 0]))
    key, opp, owner = key[order], opp[order], owner[order]
    start = np.ones(len(key), dtype=bool)
    start[1:] = np.any(key[1:] != key[:-1], axis=1)
    first = np.nonzero(start)[0]
    count = np.diff(np.append(first, len(key)))
    pair = first[count == 2]
    return EdgeFaces(key[pair], np.column_stack([owner[pair], owner[pair + 1]]),
                     np.column_stack([opp[pair], opp[pair + 1]]))


def crease_edges(vertices: np.ndarray, ef: EdgeFaces, fn: np.ndarray, up: np.ndarray,
                 critical_deg: float) -> np.ndarray:
    """(e,) bool: overhanging bottom creases along ``up``: edges flatter than the critical angle whose two
    faces both rise away from them and whose normals point down on average (a keel, the line analogue of
    a local minimum)."""
    a, b = vertices[ef.edges[:, 0]], vertices[ef.edges[:, 1]]
    t = b - a
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-300)
    flat = np.abs(t @ up) < np.cos(np.radians(critical_deg))
    down = (fn[ef.faces[:, 0]] + fn[ef.faces[:, 1]]) @ up < -1e-9
    rise = np.ones(len(t), dtype=bool)
    for k in range(2):
        w = vertices[ef.opposite[:, k]] - a
        w -= np.einsum("ij,ij->i", w, t)[:, None] * t
        rise &= w @ up > 1e-9 * np.maximum(np.linalg.norm(w, axis=1), 1e-300)
    return flat & down & rise


# ---------------------------------------------------------------------------------------------- points


def minima_clusters(vertices: np.ndarray, faces: np.ndarray,
                    fn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local minima of a mesh along +Z: (vertex indices (q,), cluster label (q,)).

    A candidate has no neighbour lower than itself and at least one down-facing face; candidates joined by
    a level edge form one cluster (a flat or edge minimum).
    """
    z = vertices[:, 2]
    e = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1),
                  axis=0)
    tol = LEVEL_SLOPE * np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1)  # slope, not height
    low = np.full(len(vertices), np.inf)
    np.minimum.at(low, e[:, 0], z[e[:, 1]] - z[e[:, 0]] + tol)
    np.minimum.at(low, e[:, 1], z[e[:, 0]] - z[e[:, 1]] + tol)
    down = np.zeros(len(vertices), dtype=bool)
    down[faces[fn[:, 2] < -1e-9].ravel()] = True
    cand = (low >= 0.0) & down
    idx = np.nonzero(cand)[0]
    keep = cand[e[:, 0]] & cand[e[:, 1]]
    level = e[keep & (np.abs(z[e[:, 0]] - z[e[:, 1]]) <= tol)]
    pos = np.full(len(vertices), -1)
    pos[idx] = np.arange(len(idx))
    g = coo_matrix((np.ones(len(level)), (pos[level[:, 0]], pos[level[:, 1]])), shape=(len(idx), len(idx)))
    _, lab = connected_components(g, directed=False)
    return idx, lab


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray, fn: np.ndarray, area: np.ndarray) -> np.ndarray:
    vn = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn * area[:, None])
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-300)


def _minimum_points(part: OrientedPart, fn: np.ndarray, area: np.ndarray, keep: KeepOut, margin: float,
                    spacing: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Points (q, 3) and normals (q, 3) on the local minima; problems for minima that cannot be held."""
    v, f = part.vertices, part.faces
    idx, lab = minima_clusters(v, f, fn)
    if not len(idx):
        return np.zeros((0, 3)), np.zeros((0, 3)), []
    vn = _vertex_normals(v, f, fn, area)
    free = keep.exact(v[idx]) >= margin  # exact, like the optimiser's check
    order = np.lexsort((idx, lab))
    idx, lab, free = idx[order], lab[order], free[order]
    bad = np.bincount(lab, weights=free.astype(float)) == 0
    problems = [f"local minimum at {np.round(v[idx[lab == c][0]], 2).tolist()} lies within the contact "
                f"margin of a protected face" for c in np.nonzero(bad)[0]]
    idx, lab = idx[free], lab[free]
    # thin each cluster: keep a vertex when no kept vertex of its cluster is within `spacing`
    keep_mask = np.zeros(len(idx), dtype=bool)
    first = np.ones(len(idx), dtype=bool)
    first[1:] = lab[1:] != lab[:-1]
    keep_mask[first] = True
    multi = np.nonzero(~first)[0]
    if len(multi):
        kept = cKDTree(v[idx[first]])
        far = kept.query(v[idx[multi]])[0] >= spacing
        keep_mask[multi[far]] = True
    idx = idx[keep_mask]
    return v[idx], vn[idx], problems


def _crease_points(part: OrientedPart, fn: np.ndarray, keep: KeepOut, margin: float, spacing: float,
                   critical_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``spacing`` along overhanging bottom creases, with the creases' mean normals."""
    v = part.vertices
    ef = edge_faces(part.faces)
    sel = crease_edges(v, ef, fn, np.array([0.0, 0.0, 1.0]), critical_deg)
    a, b = v[ef.edges[sel, 0]], v[ef.edges[sel, 1]]
    nrm = fn[ef.faces[sel, 0]] + fn[ef.faces[sel, 1]]
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-300)
    n = np.maximum(np.ceil(np.linalg.norm(b - a, axis=1) / spacing).astype(np.int64), 1)
    e = np.repeat(np.arange(len(a)), n)
    t = (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + 0.5) / n[e]
    pts = a[e] + t[:, None] * (b[e] - a[e])
    free = keep.distance(pts) >= margin
    return pts[free], nrm[e][free]


def thin(points: np.ndarray, radius: float, fixed: np.ndarray | None = None) -> np.ndarray:
    """(k,) bool: points kept greedily in order, none within ``radius`` of a kept one or of ``fixed``."""
    keep = np.ones(len(points), dtype=bool)
    if not len(points):
        return keep
    if fixed is not None and len(fixed):
        keep &= cKDTree(fixed).query(points)[0] >= radius
    near = cKDTree(points).query_ball_point(points, radius)
    for i, nb in enumerate(near):  # over candidate support points (hundreds), never over triangles
        if keep[i]:
            keep[[j for j in nb if j > i]] = False
    return keep


def _hex_grid(lo: np.ndarray, hi: np.ndarray, area_per_point: float) -> np.ndarray:
    s = np.sqrt(2.0 * area_per_point / np.sqrt(3.0))
    ys = np.arange(lo[1] + s * 0.25, hi[1], s * np.sqrt(3.0) / 2.0)
    xs = np.arange(lo[0] + s * 0.25, hi[0] + s, s)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    gx = gx + (np.arange(len(ys)) % 2)[:, None] * s / 2.0
    return np.column_stack([gx.ravel(), gy.ravel()])


def _lowest_hits(tri: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each XY, the first face met coming up from below: (query indices, z, face)."""
    qi, z, fi = vertical_hits(tri, xy)
    first = np.ones(len(qi), dtype=bool)
    first[1:] = qi[1:] != qi[:-1]
    return qi[first], z[first], fi[first]


def _overhang_points(part: OrientedPart, need: np.ndarray, fn: np.ndarray, area: np.ndarray,
                     keep: KeepOut, margin: float, per_point: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Grid points on overhangs seen from below, plus one point per overhang region the grid missed."""
    tri = part.triangles
    lo, hi = part.vertices.min(axis=0), part.vertices.max(axis=0)
    xy = _hex_grid(lo[:2], hi[:2], per_point)
    qi, z, fi = _lowest_hits(tri, xy)
    ok = need[fi]
    pts = np.column_stack([xy[qi[ok]], z[ok]])
    nrm, faces_hit = fn[fi[ok]], fi[ok]
    free = keep.distance(pts) >= margin
    pts, nrm, faces_hit = pts[free], nrm[free], faces_hit[free]
    reg_pts, reg_nrm, info = _region_points(part, need, fn, area, faces_hit, keep, margin)
    return np.concatenate([pts, reg_pts]), np.concatenate([nrm, reg_nrm]), {
        "grid_points": int(len(pts)), **info}


def _region_points(part: OrientedPart, need: np.ndarray, fn: np.ndarray, area: np.ndarray,
                   covered_faces: np.ndarray, keep: KeepOut,
                   margin: float) -> tuple[np.ndarray, np.ndarray, dict]:
    f = part.faces
    nf = np.nonzero(need)[0]
    if not len(nf):
        return np.zeros((0, 3)), np.zeros((0, 3)), {"overhang_regions": 0, "uncovered_regions": 0}
    e = np.concatenate([f[nf][:, [0, 1]], f[nf][:, [1, 2]], f[nf][:, [2, 0]]])
    owner = np.tile(np.arange(len(nf)), 3)
    key = np.sort(e, axis=1)
    order = np.lexsort((key[:, 1], key[:, 0]))
    key, owner = key[order], owner[order]
    same = np.all(key[1:] == key[:-1], axis=1)
    g = coo_matrix((np.ones(int(same.sum())), (owner[:-1][same], owner[1:][same])), shape=(len(nf), len(nf)))
    nreg, lab = connected_components(g, directed=False)
    pos = np.full(len(f), -1)
    pos[nf] = np.arange(len(nf))
    covered = np.zeros(nreg, dtype=bool)
    covered[lab[pos[covered_faces]]] = True
    # in each uncovered region: its largest face whose centroid is seen from below and kept out of margin
    c = part.triangles[nf].mean(axis=1)
    qi, z, fi = _lowest_hits(part.triangles, c[:, :2])
    seen = np.zeros(len(nf), dtype=bool)
    seen[qi] = (fi == nf[qi]) | (np.abs(z - c[qi, 2]) < 1e-6)
    ok = seen & ~covered[lab] & (keep.distance(c) >= margin)
    cand = np.nonzero(ok)[0]
    best = cand[np.lexsort((cand, -area[nf[cand]], lab[cand]))]
    first = np.ones(len(best), dtype=bool)
    first[1:] = lab[best[1:]] != lab[best[:-1]]
    pick = best[first]
    return c[pick], fn[nf[pick]], {"overhang_regions": int(nreg),
                                   "uncovered_regions": int((~covered).sum() - len(pick))}


# ------------------------------------------------------------------------------------------- routing


def _head_options(n: np.ndarray, crit_deg: float) -> np.ndarray:
    """(k, o, 3) head directions per point: the clamped normal first, then a fixed fan ordered by angle
    to it (straight down, half and full critical tilt at 8 azimuths)."""
    down = np.array([0.0, 0.0, -1.0])
    c = np.radians(crit_deg)
    h = n.copy()
    h[:, 2] = 0.0
    hn = np.linalg.norm(h, axis=1, keepdims=True)
    h = np.where(hn > 1e-9, h / np.maximum(hn, 1e-12), 0.0)
    steep = (n @ down) >= np.cos(c)
    prim = np.where(steep[:, None], n, np.cos(c) * down + np.sin(c) * h)
    prim /= np.linalg.norm(prim, axis=1, keepdims=True)
    az = np.radians(np.arange(0.0, 360.0, 45.0))
    fan = [down] + [np.array([np.sin(t) * np.cos(a), np.sin(t) * np.sin(a), -np.cos(t)])
                    for t in (c / 2.0, c) for a in az]
    fan = np.array(fan)
    order = np.argsort(-(prim @ fan.T), axis=1, kind="stable")
    return np.concatenate([prim[:, None], fan[order]], axis=1)


class _Router:
    """Checks head + junction + pillar routes against the part and the channel."""

    def __init__(self, part: OrientedPart, process: ProcessProfile) -> None:
        self.s = process.support
        self.tri = part.triangles
        self.channel = part.channel
        self.pad_top = self.s.pad_thickness_mm
        self.samples = sample_triangles(self.tri, CLEAR_SPACING_MM)
        self.kd = cKDTree(self.samples)

    def clear(self, p: np.ndarray, n: np.ndarray, d: np.ndarray) -> np.ndarray:
        """(q,) bool for routes from contacts p along head directions d (surface normals n), all (q, 3)."""
        s = self.s
        rp = s.pillar_diameter_mm / 2.0
        b = p + s.head_length_mm * d
        ok = (np.einsum("ij,ij->i", d, n) >= 0.25) & (b[:, 2] - self.pad_top >= s.base_height_mm + rp)
        ok &= ~segment_hits(self.tri, p + d * (s.head_front_diameter_mm / 2.0 + 0.05), b)
        ok &= self.kd.query(b)[0] - CLEAR_SPACING_MM >= rp
        ok &= self._pillar_clear(b)
        ok &= self._channel_clear(p, b)
        return ok

    def _pillar_clear(self, b: np.ndarray) -> np.ndarray:
        s = self.s
        rp = s.pillar_diameter_mm / 2.0
        ang = np.radians(np.arange(0.0, 360.0, 60.0))
        ring = np.column_stack([np.cos(ang), np.sin(ang)]) * (rp + s.safety_distance_mm)
        xy = np.concatenate([b[:, None, :2], b[:, None, :2] + ring[None]], axis=1).reshape(-1, 2)
        qi, z, _ = vertical_hits(self.tri, xy)
        owner = qi // (len(ring) + 1)
        blocked = np.zeros(len(b), dtype=bool)
        blocked[owner[z < b[owner, 2] + rp]] = True
        return ~blocked

    def _channel_clear(self, p: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.channel.t_range[0] == self.channel.t_range[1]:
            return np.ones(len(p), dtype=bool)
        s = self.s
        need = self.channel.radius_mm + s.pillar_diameter_mm / 2.0 + s.safety_distance_mm
        t = np.linspace(0.0, 1.0, 9)
        head = p[:, None] + t[None, :, None] * (b - p)[:, None]
        zs = np.linspace(0.0, 1.0, 41)
        bottom = b.copy()
        bottom[:, 2] = self.pad_top
        pil = b[:, None] + zs[None, :, None] * (bottom - b)[:, None]
        pts = np.concatenate([head, pil], axis=1)
        dist = self.channel.distance(pts.reshape(-1, 3), clip_t=True).reshape(len(p), -1)
        return dist.min(axis=1) >= need

    def route(self, p: np.ndarray, n: np.ndarray) -> np.ndarray:
        """(k, 3) chosen head directions, NaN where no option is clear: the clamped normal when it is
        clear, else the first clear direction of the fan."""
        opts = _head_options(n, self.s.critical_angle_deg)
        d = opts[:, 0].copy()
        ok = self.clear(p, n, d)
        retry = np.nonzero(~ok)[0]
        if len(retry):
            o = opts.shape[1] - 1
            alt = opts[retry, 1:]
            good = self.clear(np.repeat(p[retry], o, axis=0), np.repeat(n[retry], o, axis=0),
                              alt.reshape(-1, 3)).reshape(len(retry), o)
            first = np.argmax(good, axis=1)
            d[retry] = alt[np.arange(len(retry)), first]
            d[retry[~good.any(axis=1)]] = np.nan
        return d


def _braces(top: np.ndarray, router: _Router) -> tuple[np.ndarray, np.ndarray, int]:
    """Zig-zag brace segments (a (q, 3), b (q, 3)) between tall pillars, and the unbraced tall count."""
    s = router.s
    z0 = router.pad_top + s.base_height_mm + 0.5
    tall = np.nonzero(top[:, 2] - router.pad_top >= s.brace_min_height_mm)[0]
    if len(tall) < 2:
        return np.zeros((0, 3)), np.zeros((0, 3)), int(len(tall))
    xy = top[tall, :2]
    dm = cKDTree(xy).sparse_distance_matrix(cKDTree(xy), s.brace_max_link_mm, output_type="coo_matrix")
    keep = dm.row < dm.col
    g = coo_matrix((dm.data[keep] + 1e-9, (dm.row[keep], dm.col[keep])), shape=(len(tall), len(tall)))
    mst = minimum_spanning_tree(g).tocoo()
    i, j, dist = tall[mst.row], tall[mst.col], mst.data
    z1 = np.minimum(top[i, 2], top[j, 2]) - s.pillar_diameter_mm
    n = np.maximum(np.floor((z1 - z0) / np.maximum(dist, 1e-9)).astype(np.int64), 0)
    e = np.repeat(np.arange(len(i)), n)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    lo, hi = z0 + k * dist[e], z0 + (k + 1) * dist[e]
    even = k % 2 == 0
    pa = np.where(even[:, None], top[i[e], :2], top[j[e], :2])
    pb = np.where(even[:, None], top[j[e], :2], top[i[e], :2])
    a, b = np.column_stack([pa, lo]), np.column_stack([pb, hi])
    ok = ~segment_hits(router.tri, a, b)
    mids = a[:, None] + np.linspace(0, 1, 9)[None, :, None] * (b - a)[:, None]
    ok &= (router.kd.query(mids.reshape(-1, 3))[0].reshape(len(a), -1).min(axis=1) - CLEAR_SPACING_MM
           >= s.brace_diameter_mm / 2.0 + s.safety_distance_mm / 2.0)
    braced = np.zeros(len(top), dtype=bool)
    braced[i[np.unique(e[ok])]] = True
    braced[j[np.unique(e[ok])]] = True
    return a[ok], b[ok], int((~braced[tall]).sum())


def _pad(bases: np.ndarray, s) -> bodies.Mesh:
    from scipy.spatial import ConvexHull

    r = s.base_diameter_mm / 2.0 + s.pad_brim_mm
    ang = np.radians(np.arange(0.0, 360.0, 15.0))
    ring = np.column_stack([np.cos(ang), np.sin(ang)]) * r
    pts = (bases[:, None, :2] + ring[None]).reshape(-1, 2)
    hull = ConvexHull(pts)
    return bodies.prism(pts[hull.vertices], 0.0, s.pad_thickness_mm)


# ------------------------------------------------------------------------------------------ assembly


def generate_supports(part: OrientedPart, process: ProcessProfile) -> SupportedPart:
    """Support points, routes and geometry for ``part``; ``CheckFailed`` when a local minimum cannot be
    held without touching a protected face or without a clear route to the pad."""
    s, prot = process.support, process.protect
    tri = part.triangles
    fn, area = face_normals(tri)
    need = (fn[:, 2] < -np.cos(np.radians(s.critical_angle_deg))) & ~part.protected
    keep = KeepOut(tri[part.hard], KEEPOUT_SPACING_MM, part.regions)
    spacing = np.sqrt(s.area_per_point_mm2)
    mp, mn, problems = _minimum_points(part, fn, area, keep, prot.contact_margin_mm, spacing)
    cp, cn = _crease_points(part, fn, keep, prot.contact_margin_mm, spacing, s.critical_angle_deg)
    k = thin(cp, spacing, mp) & thin(cp, s.min_point_distance_mm, mp)
    cp, cn = cp[k], cn[k]
    op, on, info = _overhang_points(part, need, fn, area, keep, prot.contact_margin_mm, s.area_per_point_mm2)
    k = thin(op, s.min_point_distance_mm, np.concatenate([mp, cp]))
    op, on = op[k], on[k]
    router = _Router(part, process)
    pts = np.concatenate([mp, cp, op])
    nrm = np.concatenate([mn, cn, on])
    kinds = np.concatenate([np.full(len(mp), MINIMUM), np.full(len(cp), CREASE),
                            np.full(len(op), OVERHANG)]).astype(np.uint8)
    d = router.route(pts, nrm) if len(pts) else np.zeros((0, 3))
    lost = np.isnan(d[:, 0])
    problems += [f"local minimum at {np.round(p, 2).tolist()} has no clear route to the pad"
                 for p in pts[lost & (kinds == MINIMUM)]]
    if problems:
        raise CheckFailed(f"unsupportable: {problems[0]}" + (f" (+{len(problems) - 1} more)"
                                                             if len(problems) > 1 else ""),
                          hint="the orientation leaves an island that cannot be held; "
                               "check the protected surfaces and the process profile")
    pts, d, kinds = pts[~lost], d[~lost], kinds[~lost]
    junction = pts + s.head_length_mm * d
    ba, bb, unbraced = _braces(junction, router)
    mesh, names = _build(pts, d, junction, ba, bb, s)
    merged = bodies.unite(mesh, (part.vertices, part.faces))
    stats = {"support_points": int(len(pts)), "minimum_points": int((kinds == MINIMUM).sum()),
             "crease_points": int((kinds == CREASE).sum()),
             "overhang_points": int((kinds == OVERHANG).sum()), "dropped_points": int(lost.sum()),
             "braces": int(len(ba)), "unbraced_tall_pillars": unbraced,
             "supported_area_mm2": round(float(area[need].sum()), 3), "merged": merged is not None, **info}
    return SupportedPart(
        part=part, contacts=frozen_array(pts, np.float64), head_dirs=frozen_array(d, np.float64),
        kinds=frozen_array(kinds, np.uint8), junctions=frozen_array(junction, np.float64),
        support_vertices=frozen_array(mesh[0], np.float64), support_faces=frozen_array(mesh[1], np.int64),
        support_body=frozen_array(mesh[2], np.int32), body_kinds=names,
        print_vertices=None if merged is None else frozen_array(merged[0], np.float64),
        print_faces=None if merged is None else frozen_array(merged[1], np.int64), stats=stats)


def _build(p: np.ndarray, d: np.ndarray, junction: np.ndarray, ba: np.ndarray, bb: np.ndarray,
           s) -> tuple[bodies.Mesh, tuple[str, ...]]:
    k = len(p)
    rf, rp, rb = s.head_front_diameter_mm / 2.0, s.pillar_diameter_mm / 2.0, s.base_diameter_mm / 2.0
    seg = s.segments
    heads = bodies.frustums(p - s.head_penetration_mm * d, junction, np.full(k, rf), np.full(k, rp), seg)
    joints = bodies.spheres(junction, np.full(k, rp))
    foot = junction.copy()
    foot[:, 2] = s.pad_thickness_mm + s.base_height_mm / 2.0
    pillars = bodies.frustums(foot, junction, np.full(k, rp), np.full(k, rp), seg)
    b0 = junction.copy()
    b0[:, 2] = s.pad_thickness_mm - 0.2
    b1 = junction.copy()
    b1[:, 2] = s.pad_thickness_mm + s.base_height_mm
    bases = bodies.frustums(b0, b1, np.full(k, rb), np.full(k, rp), seg)
    rbr = s.brace_diameter_mm / 2.0
    braces = bodies.frustums(ba, bb, np.full(len(ba), rbr), np.full(len(ba), rbr), max(seg // 2, 6))
    pad = _pad(junction, s) if k else bodies.concat([])
    parts = [heads, joints, pillars, bases, braces, pad]
    names = ("head",) * k + ("junction",) * k + ("pillar",) * k + ("base",) * k \
        + ("brace",) * len(ba) + (("pad",) if k else ())
    return bodies.concat(parts), names
