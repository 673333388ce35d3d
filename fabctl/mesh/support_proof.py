"""Proof that supports keep protected surfaces clean, computed independently of the generator.

Nothing here uses the support generator's code or its bookkeeping (pillar lists, head directions, route
checks): the proof takes the oriented part, its protected-face mask, the planned channel, the contact points
and the support *geometry*, and checks, each with its own method:

1. every contact lies on the part (within ``on_surface_mm``) and at least ``contact_margin_mm`` from every
   protected face (bore, skin): exact point-triangle distances (trimesh's closest point) over triangles
   pre-filtered with a k-d tree; and from every protected region sphere of the plan (exact; this bounds the
   distance to the surface inside it at any tessellation); every contact carries support geometry within
   a head's reach;
2. no support body enters the part except at its contact heads: points sampled on the support surface
   (longest-edge bisection down to ``sample_spacing_mm``), minus those within a head zone of a contact, must
   lie outside the part, tested against the proof's own slices (eroded by one pixel);
3. nothing enters the channel bore: support samples and vertices keep out of a cylinder of the channel's
   radius around the planned axis (swept along the runway slot) over the bore's length;
4. every island and local minimum of the part has a support under it: the part is sliced layer by layer
   (triangle-plane segments, scanline parity fill at ``pixel_mm``), connected components are labelled
   (8-connectivity after a one-pixel closing, scipy.ndimage, so that sub-pixel slivers are not split into
   false islands); a component with no overlap with the layer below grown by its
   self-supporting cone (one pixel plus layer / tan(critical angle)) is an island and needs a contact within
   ``island_reach_mm`` of its footprint and no more than ``island_window_mm`` below it.

Any violation makes ``require`` raise ``CheckFailed`` (exit 3). Resolution: intrusions shallower than one
pixel (0.1 mm by default) and islands smaller than a pixel are below what this check can see.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from fabctl.errors import CheckFailed
from fabctl.mesh.protect import Channel
from fabctl.process import ProcessProfile

log = logging.getLogger(__name__)
ON_SURFACE_MM = 0.05
FOUR = ndimage.generate_binary_structure(2, 1)
EIGHT = ndimage.generate_binary_structure(2, 2)


@dataclass
class ProofReport:
    contacts: int = 0
    protected_contacts: int = 0
    min_protected_distance_mm: float | None = None
    contacts_off_surface: int = 0
    contacts_without_head: int = 0
    support_samples: int = 0
    part_intrusions: int = 0
    channel_intrusions: int = 0
    layers: int = 0
    islands: int = 0
    unsupported_islands: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.protected_contacts or self.contacts_off_surface or self.contacts_without_head
                    or self.part_intrusions or self.channel_intrusions or self.unsupported_islands)

    def as_dict(self) -> dict:
        return {"ok": self.ok, **asdict(self), "problems": self.problems[:10]}


def point_triangle_distance(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """(k,) exact distance from each of (k, 3) points to the nearest of (m, 3, 3) triangles (inf if none).

    Candidates come from a k-d tree over triangle centroids, searched to the distance of the nearest
    centroid plus the largest centroid-to-corner radius (which always contains the nearest triangle).
    """
    import trimesh

    out = np.full(len(points), np.inf)
    if not len(tri) or not len(points):
        return out
    c = tri.mean(axis=1)
    rad = float(np.linalg.norm(tri - c[:, None], axis=2).max())
    tree = cKDTree(c)
    d0, _ = tree.query(points)
    lists = tree.query_ball_point(points, d0 + rad + 1e-9)
    cnt = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(points))
    pi = np.repeat(np.arange(len(points)), cnt)
    ti = np.fromiter((j for x in lists for j in x), dtype=np.int64, count=int(cnt.sum()))
    for a in range(0, len(pi), 500_000):
        s = slice(a, a + 500_000)
        cp = trimesh.triangles.closest_point(tri[ti[s]], points[pi[s]])
        np.minimum.at(out, pi[s], np.linalg.norm(cp - points[pi[s]], axis=1))
    return out


def surface_samples(vertices: np.ndarray, faces: np.ndarray, spacing: float) -> np.ndarray:
    """(k, 3) points: corners and centroids of the faces bisected along their longest edge until every
    edge is at most ``spacing``."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    done = [tri.reshape(-1, 3)]
    while len(tri):
        e = np.linalg.norm(tri[:, [1, 2, 0]] - tri, axis=2)
        long = e.max(axis=1) > spacing
        done.append(tri[~long].mean(axis=1))
        tri, e = tri[long], e[long]
        k = np.argmax(e, axis=1)
        idx = (k[:, None] + np.arange(3)[None]) % 3
        t = np.take_along_axis(tri, idx[..., None], axis=1)  # longest edge: corner 0 -> corner 1
        m = (t[:, 0] + t[:, 1]) / 2.0
        tri = np.concatenate([np.stack([t[:, 0], m, t[:, 2]], axis=1), np.stack([m, t[:, 1], t[:, 2]], axis=1)])
    return np.concatenate(done)


def _contacts(rep: ProofReport, part_tri: np.ndarray, protected: np.ndarray, regions: np.ndarray,
              contacts: np.ndarray, near_sample: np.ndarray, process: ProcessProfile) -> None:
    """Contacts: on the part, clear of protected faces, each with support geometry within a head's reach.

    near_sample : (k,) distance from each contact to the nearest support-surface sample
    """
    margin = process.protect.contact_margin_mm
    d_prot = point_triangle_distance(contacts, part_tri[protected])
    if len(regions) and len(contacts):
        to_sphere = np.linalg.norm(contacts[:, None] - regions[None, :, :3], axis=2) - regions[None, :, 3]
        d_prot = np.minimum(d_prot, np.maximum(to_sphere.min(axis=1), 0.0))
    bad = np.nonzero(d_prot < margin)[0]
    rep.protected_contacts = int(len(bad))
    rep.min_protected_distance_mm = None if not np.isfinite(d_prot).any() else round(float(d_prot.min()), 4)
    rep.problems += [f"contact {i} at {np.round(contacts[i], 2).tolist()} is {d_prot[i]:.3f} mm from a "
                     f"protected face (limit {margin} mm)" for i in bad[:5]]
    d_part = point_triangle_distance(contacts, part_tri)
    off = np.nonzero(d_part > ON_SURFACE_MM)[0]
    rep.contacts_off_surface = int(len(off))
    rep.problems += [f"contact {i} is {d_part[i]:.3f} mm off the part's surface" for i in off[:5]]
    s = process.support
    reach = s.head_front_diameter_mm / 2.0 + s.head_penetration_mm + process.proof.sample_spacing_mm
    lonely = np.nonzero(near_sample > reach)[0]
    rep.contacts_without_head = int(len(lonely))
    rep.problems += [f"contact {i} has no support geometry within {reach:.2f} mm" for i in lonely[:5]]


def _channel(rep: ProofReport, channel: Channel | None, pts: np.ndarray) -> None:
    if channel is None or channel.t_range[0] == channel.t_range[1] or not len(pts):
        return
    d = channel.distance(pts, clip_t=True)
    bad = np.nonzero(d < channel.radius_mm)[0]
    rep.channel_intrusions = int(len(bad))
    if len(bad):
        rep.problems.append(f"{len(bad)} support points inside the channel bore, e.g. "
                            f"{np.round(pts[bad[0]], 2).tolist()} at {d[bad[0]]:.3f} mm from its axis "
                            f"(radius {channel.radius_mm} mm)")


# --------------------------------------------------------------------------------------- slicing


class _Slicer:
    """Layer-by-layer rasters of a closed mesh: segments of every (triangle, layer) pair, parity fill."""

    def __init__(self, tri: np.ndarray, layer: float, pixel: float) -> None:
        self.layer, self.px = layer, pixel
        zmin, zmax = tri[..., 2].min(axis=1), tri[..., 2].max(axis=1)
        self.z0 = float(zmin.min())
        self.n = max(int(np.ceil((float(zmax.max()) - self.z0) / layer)), 1)
        self.origin = tri[..., :2].reshape(-1, 2).min(axis=0) - 3 * pixel
        span = tri[..., :2].reshape(-1, 2).max(axis=0) + 3 * pixel - self.origin
        self.shape = (int(np.ceil(span[1] / pixel)) + 1, int(np.ceil(span[0] / pixel)) + 1)
        # layer k is sampled at z0 + (k + 0.5) * layer, nudged off exact vertex heights
        k0 = np.ceil((zmin - self.z0) / layer - 0.5).astype(np.int64)
        k1 = np.ceil((zmax - self.z0) / layer - 0.5).astype(np.int64) - 1
        cnt = np.maximum(k1 - k0 + 1, 0)
        ti = np.repeat(np.arange(len(tri)), cnt)
        lk = np.repeat(k0, cnt) + np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        self.seg = self._segments(tri[ti], self.z_of(lk))
        order = np.argsort(lk, kind="stable")
        self.seg, lk = self.seg[order], lk[order]
        self.ptr = np.searchsorted(lk, np.arange(self.n + 1))

    def z_of(self, k: np.ndarray | int) -> np.ndarray:
        return self.z0 + (np.asarray(k) + 0.5) * self.layer + 1.37e-7

    @staticmethod
    def _segments(t: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(p, 2, 2) XY end points where the plane z cuts each triangle t (p, 3, 3)."""
        d = t[..., 2] - z[:, None]
        a, b = np.array([0, 1, 2]), np.array([1, 2, 0])
        da, db = d[:, a], d[:, b]
        cross = (da > 0) != (db > 0)
        w = da / np.where(cross, da - db, 1.0)
        pts = t[:, a, :2] + w[..., None] * (t[:, b, :2] - t[:, a, :2])
        pick = np.argsort(~cross, axis=1, kind="stable")[:, :2]
        return np.take_along_axis(pts, pick[..., None], axis=1)

    def raster(self, k: int) -> tuple[np.ndarray, tuple[slice, slice]]:
        """(mask over the layer's bounding box, the box as slices of the full frame)."""
        s = (self.seg[self.ptr[k]:self.ptr[k + 1]] - self.origin) / self.px
        if not len(s):
            return np.zeros((0, 0), dtype=bool), (slice(0, 0), slice(0, 0))
        r0 = max(int(np.floor(s[..., 1].min())) - 1, 0)
        c0 = max(int(np.floor(s[..., 0].min())) - 1, 0)
        r1 = min(int(np.ceil(s[..., 1].max())) + 2, self.shape[0])
        c1 = min(int(np.ceil(s[..., 0].max())) + 2, self.shape[1])
        y0, y1 = s[:, 0, 1], s[:, 1, 1]
        lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
        ra = np.ceil(lo - 0.5).astype(np.int64)  # rows whose centre y (r + 0.5) is in [lo, hi)
        rb = np.ceil(hi - 0.5).astype(np.int64) - 1
        n = np.maximum(rb - ra + 1, 0)
        si = np.repeat(np.arange(len(s)), n)
        rows = np.repeat(ra, n) + np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        ya, yb, xa, xb = y0[si], y1[si], s[si, 0, 0], s[si, 1, 0]
        x = xa + (rows + 0.5 - ya) * (xb - xa) / (yb - ya)
        order = np.lexsort((x, rows))  # crossings of each row, left to right: inside between pairs
        rows, x = rows[order][0::2], np.stack([x[order][0::2], x[order][1::2]], axis=1)
        w = c1 - c0
        b = np.clip(np.ceil(x - 0.5).astype(np.int64), c0, c1) - c0  # pixel centres in [x_in, x_out)
        n = np.maximum(b[:, 1] - b[:, 0], 0)
        start = (rows - r0) * w + b[:, 0]
        flat = np.repeat(start - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
        mask = np.zeros((r1 - r0) * w, dtype=bool)
        mask[flat] = True
        return mask.reshape(r1 - r0, w), (slice(r0, r1), slice(c0, c1))


def _islands_and_intrusions(rep: ProofReport, part_tri: np.ndarray, contacts: np.ndarray,
                            samples: np.ndarray, process: ProcessProfile) -> None:
    pf = process.proof
    sl = _Slicer(part_tri, pf.layer_mm, pf.pixel_mm)
    rep.layers = sl.n
    sk = np.floor((samples[:, 2] - sl.z0) / sl.layer).astype(np.int64)
    keep = (sk >= 0) & (sk < sl.n)
    samples, sk = samples[keep], sk[keep]
    order = np.argsort(sk, kind="stable")
    samples, sk = samples[order], sk[order]
    sptr = np.searchsorted(sk, np.arange(sl.n + 1))
    spx = np.floor((samples[:, :2] - sl.origin) / sl.px).astype(np.int64)
    cpx = np.floor((contacts[:, :2] - sl.origin) / sl.px).astype(np.int64)
    reach = int(np.ceil(pf.island_reach_mm / sl.px))
    off = np.stack(np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1)), -1).reshape(-1, 2)
    off = off[(off ** 2).sum(axis=1) <= reach * reach]
    # what grows out of the layer below within the self-supporting cone (one pixel plus layer / tan(critical),
    # reached by dilating the previous layer's one-pixel-grown mask again) is an overhang, not an island
    cone = 1 + int(np.ceil(sl.layer / np.tan(np.radians(process.support.critical_angle_deg)) / sl.px - 1e-9))
    prev = np.zeros(sl.shape, dtype=bool)  # previous layer grown by one pixel
    for k in range(sl.n):
        mask, box = sl.raster(k)
        if not mask.size:
            prev[:] = False
            continue
        g = (slice(max(box[0].start - cone, 0), min(box[0].stop + cone, sl.shape[0])),
             slice(max(box[1].start - cone, 0), min(box[1].stop + cone, sl.shape[1])))
        cur = np.zeros((g[0].stop - g[0].start, g[1].stop - g[1].start), dtype=bool)
        cur[box[0].start - g[0].start:box[0].stop - g[0].start,
            box[1].start - g[1].start:box[1].stop - g[1].start] = mask
        _intrusions(rep, cur, (g[0].start, g[1].start), spx[sptr[k]:sptr[k + 1]], samples[sptr[k]:sptr[k + 1]],
                    float(sl.z_of(k)))
        grown = _grow(cur, 1)
        below = _grow(prev[g], cone - 1)
        _islands(rep, cur, grown, below, (g[0].start, g[1].start), k, sl, contacts, cpx, off,
                 pf.island_window_mm)
        prev[:] = False
        prev[g] = grown


def _grow(mask: np.ndarray, r: int) -> np.ndarray:
    """``mask`` dilated ``r`` times by the 3 x 3 square (separable shifted ORs)."""
    out = mask.copy()
    for _ in range(r):
        out[1:] |= out[:-1].copy()
        out[:-1] |= out[1:].copy()
        out[:, 1:] |= out[:, :-1].copy()
        out[:, :-1] |= out[:, 1:].copy()
    return out


def _intrusions(rep: ProofReport, cur: np.ndarray, corner: tuple[int, int], px: np.ndarray, pts: np.ndarray,
                z: float) -> None:
    """Samples on pixels that are inside the part together with their 4 neighbours (one-pixel erosion)."""
    if not len(px):
        return
    r = px[:, 1] - corner[0]
    c = px[:, 0] - corner[1]
    inb = (r >= 1) & (r < cur.shape[0] - 1) & (c >= 1) & (c < cur.shape[1] - 1)
    r, c = r[inb], c[inb]
    core = cur[r, c] & cur[r - 1, c] & cur[r + 1, c] & cur[r, c - 1] & cur[r, c + 1]
    bad = np.nonzero(inb)[0][core]
    if len(bad):
        rep.part_intrusions += int(len(bad))
        if len(rep.problems) < 20:
            rep.problems.append(f"support surface inside the part at {np.round(pts[bad[0]], 2).tolist()} "
                                f"(layer at z {z:.2f} mm, {len(bad)} samples)")


def _islands(rep: ProofReport, cur: np.ndarray, grown: np.ndarray, below: np.ndarray, corner: tuple[int, int],
             k: int, sl: _Slicer, contacts: np.ndarray, cpx: np.ndarray, off: np.ndarray, window: float) -> None:
    """Components of the layer grown by one pixel (a sliver thinner than a pixel rasterises as broken or
    diagonal pixels that are one piece of material) that touch nothing below are islands."""
    r0, c0 = corner
    if not (cur & ~below).any():  # every pixel grows out of the layer below: no island here
        return
    lab, n = ndimage.label(grown, structure=EIGHT)
    if not n:
        return
    lab = np.where(cur, lab, 0)
    held = np.bincount(lab[below & (lab > 0)], minlength=n + 1)
    islands = np.nonzero(held[1:] == 0)[0] + 1
    if not len(islands):
        return
    rep.islands += int(len(islands))
    z = float(sl.z_of(k))
    near = np.nonzero((contacts[:, 2] >= z - window) & (contacts[:, 2] <= z + sl.layer))[0]
    pts = (cpx[near][:, None, :] + off[None]).reshape(-1, 2) - [c0, r0]
    inb = (pts[:, 0] >= 0) & (pts[:, 0] < lab.shape[1]) & (pts[:, 1] >= 0) & (pts[:, 1] < lab.shape[0])
    supported = np.zeros(n + 1, dtype=bool)
    supported[lab[pts[inb, 1], pts[inb, 0]]] = True
    lost = islands[~supported[islands]]
    rep.unsupported_islands += int(len(lost))
    for i in lost[: max(0, 5 - len(rep.problems))]:
        rr, cc = np.nonzero(lab == i)
        xy = sl.origin + (np.array([cc.mean(), rr.mean()]) + [c0, r0] + 0.5) * sl.px
        rep.problems.append(f"island of {len(rr)} px at x {xy[0]:.2f}, y {xy[1]:.2f}, z {z:.2f} mm "
                            f"has no support under it")


# ------------------------------------------------------------------------------------------ entry


def prove(part_vertices: np.ndarray, part_faces: np.ndarray, protected: np.ndarray, channel: Channel | None,
          contacts: np.ndarray, support_vertices: np.ndarray, support_faces: np.ndarray,
          process: ProcessProfile, regions: np.ndarray | None = None) -> ProofReport:
    """Check a supported part (printer frame, +Z up). Returns the report; ``require`` enforces it.

    protected : (m,) bool, faces protected as a whole (bore, skin)
    regions   : (r, 4) protected spheres (centre, radius) of the plan, printer frame
    """
    regions = np.zeros((0, 4)) if regions is None else np.asarray(regions, dtype=np.float64).reshape(-1, 4)
    part_tri = np.asarray(part_vertices, dtype=np.float64)[np.asarray(part_faces)]
    protected = np.asarray(protected, dtype=bool)
    contacts = np.asarray(contacts, dtype=np.float64).reshape(-1, 3)
    rep = ProofReport(contacts=len(contacts))
    sv, sf = np.asarray(support_vertices, dtype=np.float64), np.asarray(support_faces, dtype=np.int64)
    # support faces wholly outside the part's box (grown by more than a head's reach) can neither enter the
    # part nor the bore (bounded by the part's faces) nor serve as a contact's head
    lo, hi = part_tri.reshape(-1, 3).min(axis=0) - 2.0, part_tri.reshape(-1, 3).max(axis=0) + 2.0
    if len(sf):
        ft = sv[sf]
        sf = sf[np.all((ft.max(axis=1) >= lo) & (ft.min(axis=1) <= hi), axis=1)]
    samples = surface_samples(sv, sf, process.proof.sample_spacing_mm) if len(sf) else np.zeros((0, 3))
    rep.support_samples = int(len(samples))
    samples = samples[np.all((samples >= lo) & (samples <= hi), axis=1)]
    s = process.support
    zone = s.head_penetration_mm + s.head_front_diameter_mm / 2.0 + 0.75
    near_sample = np.full(len(contacts), np.inf)
    if len(contacts) and len(samples):
        d, i = cKDTree(contacts).query(samples)
        np.minimum.at(near_sample, i, d)
        samples_out = samples[d > zone]  # outside every contact's head zone
    else:
        samples_out = samples
    _contacts(rep, part_tri, protected, regions, contacts, near_sample, process)
    _channel(rep, channel, samples)
    _islands_and_intrusions(rep, part_tri, contacts, samples_out, process)
    log.debug("proof: %s", rep.as_dict())
    return rep


def require(rep: ProofReport) -> ProofReport:
    """Raise ``CheckFailed`` (exit 3) naming the first violation when the proof does not hold."""
    if rep.ok:
        return rep
    counts = (f"protected_contacts {rep.protected_contacts}, part_intrusions {rep.part_intrusions}, "
              f"channel_intrusions {rep.channel_intrusions}, unsupported_islands {rep.unsupported_islands}, "
              f"contacts_off_surface {rep.contacts_off_surface}, contacts_without_head "
              f"{rep.contacts_without_head}")
    first = rep.problems[0] if rep.problems else "see the report"
    raise CheckFailed(f"support proof failed: {first} ({counts}; every limit is 0)",
                      hint="the supports would mark a protected surface or leave an island; nothing was "
                           "written for printing")
