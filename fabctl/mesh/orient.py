"""Deterministic orientation of a guide for SLA printing, with protected surfaces as a hard constraint.

Candidates are "up" directions ``u`` in the design frame (the one that becomes the printer's +Z): a fixed
Fibonacci sphere, then a pattern search around the best seeds with halving steps; no randomness.

Hard constraints (a candidate that breaks one is never chosen):
* no skin-contact face needs support: n·(−u) <= cos(critical + margin); nor any bore face, unless the bore's
  width across the build direction (runway included) is at most ``bridgeable_bore_mm`` (holes up to 5 mm
  print unsupported in SLA, clinical-traceability.md §5). Plan regions (marking line, channel mouth) are
  spheres that may cut through the whole plate and face every way: their overhang is a weighted term, and
  like every protected surface they stay hard keep-outs for contacts and minima;
* no local minimum (strict, or a flat/edge cluster) lies wholly within the contact margin of the protected
  surface, since its support would have to touch there;
* part, supports and pad fit the build volume for some rotation about Z.

Score (minimised, weights from the process profile; D = the design's bounding-box diagonal): supported
area / total area; support-count estimate / (total area / area per point); peak layer cross-section /
(π D² / 4) (peel force); height / D (print time); ((channel angle − preferred) / 45°)²; 100 × region area
needing support / total area.

Resolution independence: face terms are area-weighted sums over normals grouped by (quantised normal,
protection) — a midpoint subdivision has the same groups and areas; the peak cross-section comes from a fixed
grid of interior points (vertical ray parity); height and fit from convex-hull extremes; strict minima
survive subdivision; regions are measured as spheres. Totals are rounded to 9 significant digits and ties
go to the earlier candidate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import ConvexHull

from fabctl.errors import CheckFailed
from fabctl.mesh.protect import CHANNEL, SKIN, Channel, KeepOut, Protection, ball_area, transform_spheres
from fabctl.mesh.ray_columns import volume_samples
from fabctl.mesh.types import frozen_array
from fabctl.process import ProcessProfile

log = logging.getLogger(__name__)

YAW_STEP_DEG = 1.0
HULL_SNAP_MM = 0.5
LEVEL_SLOPE = 1e-9  # a neighbour this little lower per mm of edge counts as level
MAX_FULL = 600  # stage-1 candidates given their minima (best first) while looking for feasible seeds
FULL_BATCH = 100
GOLDEN = np.pi * (3.0 - np.sqrt(5.0))


# ----------------------------------------------------------------------------------------- rotations


def fibonacci_sphere(n: int) -> np.ndarray:
    """(n, 3) unit vectors, a fixed near-uniform spiral over the sphere."""
    i = np.arange(n, dtype=np.float64)
    z = 1.0 - (2.0 * i + 1.0) / n
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, 1.0))
    phi = i * GOLDEN
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def align_to_z(u: np.ndarray) -> np.ndarray:
    """(c, 3, 3) rotations taking each (c, 3) unit vector ``u`` to +Z (the shortest arc)."""
    u = np.atleast_2d(u)
    c = u[:, 2]
    v = np.column_stack([u[:, 1], -u[:, 0], np.zeros(len(u))])  # u x z
    vx = np.zeros((len(u), 3, 3))
    vx[:, 0, 1], vx[:, 0, 2], vx[:, 1, 0] = -v[:, 2], v[:, 1], v[:, 2]
    vx[:, 1, 2], vx[:, 2, 0], vx[:, 2, 1] = -v[:, 0], -v[:, 1], v[:, 0]
    flip = c < -1.0 + 1e-12
    k = 1.0 / np.where(flip, 1.0, 1.0 + c)
    r = np.eye(3)[None] + vx + (vx @ vx) * k[:, None, None]
    r[flip] = np.diag([1.0, -1.0, -1.0])
    return r


def yaw(deg: float) -> np.ndarray:
    """(3, 3) rotation about +Z by ``deg`` degrees."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# ------------------------------------------------------------------------------------------- scoring


@dataclass(frozen=True, slots=True)
class ScoreTerms:
    """Raw terms, their weighted contributions and the total of one orientation."""

    supported_area_mm2: float
    support_count_est: float
    local_minima: int
    peak_layer_area_mm2: float
    height_mm: float
    print_height_mm: float
    channel_angle_deg: float
    protected_overhang_mm2: float
    region_overhang_mm2: float
    bore_span_mm: float
    protected_minima: int
    fits: bool
    yaw_deg: float
    footprint_mm: tuple[float, float]
    weighted: dict[str, float] = field(default_factory=dict)
    total: float = 0.0

    @property
    def feasible(self) -> bool:
        return self.fits and self.protected_overhang_mm2 == 0.0 and self.protected_minima == 0

    def as_dict(self) -> dict:
        """JSON-ready terms, rounded to 0.1 µm / 1e-9 (the artifact and the trace store these)."""
        out = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in
               ((f, getattr(self, f)) for f in self.__slots__ if f not in ("fits", "weighted", "footprint_mm"))}
        return {**out, "protected_overhang_mm2": round(self.protected_overhang_mm2, 6), "fits_build_volume":
                self.fits, "footprint_mm": [round(x, 3) for x in self.footprint_mm], "total": round(self.total, 9),
                "weighted": {k: round(v, 6) for k, v in self.weighted.items()}}


@dataclass(frozen=True, slots=True)
class OrientedPart:
    """A part turned and placed for printing.

    transform : (4, 4) float64, design frame -> printer frame (rotation, then translation)
    vertices  : (n, 3) float64, printer frame: the lowest point at ``pad + elevation``, XY centred on the bed
    faces     : (m, 3) int64
    protected, reasons : (m,) bool / uint8, as ``Protection``
    channel   : the planned bore in the printer frame
    up_design : (3,) float64, the design-frame direction that points up
    regions   : (r, 4) float64, the plan's protected spheres in the printer frame
    """

    transform: np.ndarray
    vertices: np.ndarray
    faces: np.ndarray
    protected: np.ndarray
    reasons: np.ndarray
    channel: Channel
    up_design: np.ndarray
    scores: ScoreTerms
    candidates_evaluated: int
    feasible_candidates: int
    build_volume_mm: tuple[float, float, float]
    regions: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))

    @property
    def hard(self) -> np.ndarray:
        """(m,) bool: faces protected as a whole (bore, skin)."""
        return (self.reasons & (CHANNEL | SKIN)) > 0

    @property
    def triangles(self) -> np.ndarray:
        return self.vertices[self.faces]


class _Model:
    """What the score needs, precomputed once per part in the design frame."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, protection: Protection,
                 process: ProcessProfile, build_volume_mm: tuple[float, float, float]) -> None:
        used, inv = np.unique(np.asarray(faces, dtype=np.int64), return_inverse=True)
        self.v = np.asarray(vertices, dtype=np.float64)[used]  # referenced vertices only
        self.f = inv.reshape(-1, 3)
        tri = self.v[self.f]
        cr = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        area = np.linalg.norm(cr, axis=1) / 2.0
        self.fn = cr / np.maximum(2.0 * area, 1e-300)[:, None]
        self.total_area = float(area.sum())
        self.diag = float(np.linalg.norm(np.ptp(self.v, axis=0)))
        self.s, self.o, self.prot = process.support, process.orient, process.protect
        self.bed = build_volume_mm
        self.axis = protection.channel.axis
        reasons = np.asarray(protection.reasons)
        # region overhang: each face's exact area inside the region spheres (additive under subdivision)
        self._region_area = ball_area(tri, protection.regions)
        self.chan = protection.channel
        self._groups(self.fn, area, (reasons & SKIN) > 0, (reasons & CHANNEL) > 0,
                     (reasons & (CHANNEL | SKIN)) == 0)
        hull = self.v[ConvexHull(self.v).vertices]
        # hull points snapped to a 0.5 mm grid (fit margin + 0.5 mm): fewer points, same at any tessellation
        self.hull = np.unique(np.round(hull / HULL_SNAP_MM), axis=0) * HULL_SNAP_MM
        self.samples, self.pitch = volume_samples(tri, self.o.volume_samples)
        self.coarse, self.coarse_pitch = volume_samples(tri, max(self.o.volume_samples // 8, 1000))
        self._graph()
        self.keep = KeepOut(tri[protection.hard], 0.4, protection.regions)
        self._near: dict[int, bool] = {}  # exact, filled lazily for minimum candidates
        s = self.s
        self.margin_xy = (s.head_length_mm * np.sin(np.radians(s.critical_angle_deg))
                          + s.base_diameter_mm / 2.0 + s.pad_brim_mm + HULL_SNAP_MM)
        self.below = s.object_elevation_mm + s.pad_thickness_mm

    def _groups(self, n: np.ndarray, area: np.ndarray, skin: np.ndarray, chan: np.ndarray,
                region: np.ndarray) -> None:
        """Faces grouped by (quantised normal, skin, channel): per group the area, the area inside region
        spheres (bore and skin faces excluded), the area-weighted mean normal and the flags."""
        key = np.column_stack([np.round(n * 1e3).astype(np.int64), skin, chan])
        _, inv = np.unique(key, axis=0, return_inverse=True)
        inv = inv.ravel()
        g = inv.max() + 1 if len(inv) else 0
        self.ga = np.bincount(inv, weights=area, minlength=g)
        self.gr = np.bincount(inv, weights=np.where(region, self._region_area, 0.0), minlength=g)
        gn = np.stack([np.bincount(inv, weights=area * n[:, k], minlength=g) for k in range(3)], axis=1)
        self.gn = gn / np.maximum(np.linalg.norm(gn, axis=1, keepdims=True), 1e-300)
        self.gp = np.bincount(inv, weights=skin.astype(float), minlength=g) > 0
        self.gc = np.bincount(inv, weights=chan.astype(float), minlength=g) > 0

    def _graph(self) -> None:
        e = np.sort(np.concatenate([self.f[:, [0, 1]], self.f[:, [1, 2]], self.f[:, [2, 0]]]), axis=1)
        self.edges = np.unique(e, axis=0)
        both = np.concatenate([self.edges, self.edges[:, ::-1]])
        order = np.lexsort((both[:, 1], both[:, 0]))
        self.nbr = both[order, 1]
        self.src = both[order, 0]
        self.nbr_len = np.linalg.norm(self.v[self.nbr] - self.v[self.src], axis=1)
        self.nbr_ptr = np.searchsorted(self.src, np.arange(len(self.v)))
        vf_v = self.f.ravel()
        order = np.argsort(vf_v, kind="stable")
        self.vf = order // 3
        self.vf_ptr = np.searchsorted(vf_v[order], np.arange(len(self.v)))

    # -- terms vectorised over candidates ---------------------------------------------------------------
    def cheap(self, u: np.ndarray, coarse: bool = False) -> dict[str, np.ndarray]:
        """Every term but the local minima, for (c, 3) up directions; ``coarse`` ranks with a sparser
        sample grid and yaw step (stage 1 only: seeds are re-scored in full)."""
        out: dict[str, list] = {k: [] for k in ("sup", "prot", "chan", "soft", "height", "peak", "fits", "yaw",
                                                 "fx", "fy")}
        c_sup = np.cos(np.radians(self.s.critical_angle_deg))
        c_prot = np.cos(np.radians(self.s.critical_angle_deg + self.prot.protected_angle_margin_deg))
        for a in range(0, len(u), 64):
            uc = u[a:a + 64]
            dn = -(self.gn @ uc.T)
            free = ~(self.gp | self.gc)
            out["sup"].append(((dn > c_sup) & free[:, None]).T @ np.maximum(self.ga - self.gr, 0.0))
            out["prot"].append(((dn > c_prot) & self.gp[:, None]).T @ self.ga)
            out["chan"].append(((dn > c_prot) & self.gc[:, None]).T @ self.ga)
            out["soft"].append(((dn > c_prot) & free[:, None]).T @ self.gr)
            out["height"].append(np.ptp(self.hull @ uc.T, axis=0))
            out["peak"].append(self._peak(uc, coarse))
            fits, yw, fx, fy = self._fit(uc, 3.0 if coarse else YAW_STEP_DEG)
            for k, val in (("fits", fits), ("yaw", yw), ("fx", fx), ("fy", fy)):
                out[k].append(val)
        res = {k: np.concatenate(v) for k, v in out.items()}
        res["fits"] &= res["height"] + HULL_SNAP_MM + self.below <= self.bed[2]
        res["span"] = self.bore_span(u)
        res["prot"] = res["prot"] + np.where(res["span"] > self.prot.bridgeable_bore_mm, res["chan"], 0.0)
        res["angle"] = np.degrees(np.arccos(np.clip(np.abs(u @ self.axis), 0.0, 1.0)))
        return res

    def bore_span(self, u: np.ndarray) -> np.ndarray:
        """(c,) width of the bore's cross-section across the build direction: what its ceiling must bridge
        (the diameter, plus the runway's length as far as it lies across)."""
        a, slot = self.chan.axis, self.chan.slot
        h = np.cross(u, a)
        hn = np.linalg.norm(h, axis=1)
        h = h / np.maximum(hn, 1e-12)[:, None]
        span = 2.0 * self.chan.radius_mm + 2.0 * self.chan.half_slot_mm * np.abs(h @ slot)
        return np.where(hn > 1e-9, span, 2.0 * self.chan.radius_mm)

    def _peak(self, u: np.ndarray, coarse: bool) -> np.ndarray:
        pts, pitch = (self.coarse, self.coarse_pitch) if coarse else (self.samples, self.pitch)
        b = self.o.layer_bin_mm
        h = pts @ u.T
        h -= h.min(axis=0)
        h *= 1.0 / b
        idx = h.astype(np.intp)  # floor: h >= 0
        nb = int(idx.max()) + 1
        idx += np.arange(len(u), dtype=np.intp)[None, :] * nb
        counts = np.bincount(idx.ravel(), minlength=nb * len(u)).reshape(len(u), nb)
        return counts.max(axis=1) * pitch ** 3 / b

    def _fit(self, u: np.ndarray, step_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Whether some rotation about Z fits the bed, that yaw (the smallest fitting footprint, else the
        smallest footprint) and the footprint, for (c, 3) up directions.

        Per candidate: the 2-D hull of the projected hull points, then its width w(θ) for every yaw step;
        a footprint at yaw ψ is w(ψ) by w(ψ + 90°)."""
        ang = np.radians(np.arange(0.0, 180.0, step_deg))
        dirs = np.stack([np.cos(ang), -np.sin(ang)])  # x' after yawing by +ψ
        quarter = int(round(90.0 / step_deg))
        m2 = 2.0 * self.margin_xy
        out = np.zeros((len(u), 4))
        for i, r in enumerate(align_to_z(u)):
            p = self.hull @ r[:2].T
            q = p[ConvexHull(p).vertices] @ dirs
            w = q.max(axis=0) - q.min(axis=0)
            ex, ey = w, np.roll(w, -quarter)
            ok = (ex + m2 <= self.bed[0]) & (ey + m2 <= self.bed[1])
            j = int(np.argmin(np.where(ok, ex * ey, 1e30 + ex * ey)))
            out[i] = ok[j], j * step_deg, ex[j], ey[j]
        return out[:, 0] > 0, out[:, 1], out[:, 2], out[:, 3]

    def minima(self, u: np.ndarray) -> tuple[int, int]:
        """(local minima, protected minima) for one up direction. Minima are clusters of vertices with no
        lower neighbour and a down-facing face, joined along level edges; a cluster is protected when all
        its vertices lie within the contact margin of a protected face."""
        z = self.v @ u
        # level within a slope of 1e-9 (not an absolute height): the same at any subdivision of an edge
        rise = z[self.nbr] - z[self.src] + LEVEL_SLOPE * self.nbr_len
        down = np.maximum.reduceat((self.fn @ u < -1e-9)[self.vf], self.vf_ptr)
        cand = (np.minimum.reduceat(rise, self.nbr_ptr) >= 0.0) & down
        idx = np.nonzero(cand)[0]
        if not len(idx):
            return 0, 0
        e = self.edges[cand[self.edges[:, 0]] & cand[self.edges[:, 1]]]
        dz = np.abs(z[e[:, 0]] - z[e[:, 1]])
        e = e[dz <= LEVEL_SLOPE * np.linalg.norm(self.v[e[:, 0]] - self.v[e[:, 1]], axis=1)]
        pos = np.full(len(self.v), -1)
        pos[idx] = np.arange(len(idx))
        g = csr_matrix((np.ones(len(e)), (pos[e[:, 0]], pos[e[:, 1]])), shape=(len(idx), len(idx)))
        ncomp, lab = connected_components(g, directed=False)
        free = np.bincount(lab, weights=(~self.near(idx)).astype(float), minlength=ncomp)
        return int(ncomp), int((free == 0).sum())

    def near(self, idx: np.ndarray) -> np.ndarray:
        """(k,) bool: vertices closer than the contact margin to the protected surface (exact, cached)."""
        new = np.array([i for i in idx.tolist() if i not in self._near], dtype=np.int64)
        if len(new):
            d = self.keep.exact(self.v[new])
            self._near.update(zip(new.tolist(), (d < self.prot.contact_margin_mm).tolist(), strict=True))
        return np.array([self._near[i] for i in idx.tolist()], dtype=bool)

    def total(self, t: dict[str, np.ndarray], minima: np.ndarray | float) -> tuple[np.ndarray, dict]:
        w = self.o.weights
        per = self.s.area_per_point_mm2
        d = max(self.diag, 1e-9)
        count = t["sup"] / per + minima
        terms = {
            "supported_area": w.supported_area * t["sup"] / self.total_area,
            "support_count": w.support_count * count / max(self.total_area / per, 1e-9),
            "peak_layer_area": w.peak_layer_area * t["peak"] / (np.pi * d * d / 4.0),
            "height": w.height * t["height"] / d,
            "channel_angle": w.channel_angle * ((t["angle"] - self.o.channel_preferred_deg) / 45.0) ** 2,
            "region_overhang": w.region_overhang * 100.0 * t["soft"] / max(self.total_area, 1e-9),
        }
        tot = sum(terms.values())
        return np.array([float(f"{x:.9g}") for x in np.atleast_1d(tot)]), terms


@dataclass
class _Best:
    u: np.ndarray
    viol: float
    total: float
    order: int
    terms: dict
    cheap: dict
    minima: tuple[int, int]

    @property
    def key(self) -> tuple[float, float, int]:
        return (self.viol, self.total, self.order)


def _violation(t: dict, protected_minima: np.ndarray | int) -> np.ndarray:
    """How far candidates are from feasible: protected overhang (mm²) + 100 per protected minimum +
    1e6 when they do not fit; 0 means feasible."""
    return (np.round(np.asarray(t["prot"], dtype=float), 9) + 100.0 * np.asarray(protected_minima)
            + 1e6 * ~np.asarray(t["fits"], dtype=bool))


class _Search:
    """Stage 1 over the Fibonacci sphere, then a pattern search around the best seeds that lowers the
    violation first and the score second, so that near-feasible seeds walk into the feasible region."""

    def __init__(self, model: _Model) -> None:
        self.m = model
        self.evaluated = 0
        self.feasible = 0
        self.order = 0

    def full(self, u: np.ndarray, t: dict | None = None) -> list[_Best]:
        """Score (c, 3) directions with every term (``t``: their cheap terms when already known)."""
        if t is None:
            t = self.m.cheap(u)
            self.evaluated += len(u)
        mins = [self.m.minima(x) for x in u]
        viol = _violation(t, np.array([m[1] for m in mins]))
        tot, terms = self.m.total(t, np.array([m[0] for m in mins], dtype=float))
        out = []
        for i in range(len(u)):
            self.order += 1
            self.feasible += int(viol[i] == 0.0)
            out.append(_Best(u[i], float(viol[i]), float(tot[i]), self.order,
                             {k: float(v[i]) for k, v in terms.items()}, {k: v[i] for k, v in t.items()},
                             mins[i]))
        return out

    def seeds(self) -> tuple[list[_Best], dict, np.ndarray]:
        """Add the minima to up to MAX_FULL stage-1 candidates that pass the cheap constraints, best first;
        seeds are the best feasible ones, else the least violating, one per neighbourhood."""
        u = fibonacci_sphere(self.m.o.candidates)
        t = self.m.cheap(u, coarse=True)
        self.evaluated += len(u)
        tot, _ = self.m.total(t, 0.0)
        viol = _violation(t, 0)
        order = np.lexsort((np.arange(len(u)), tot, viol))
        order = order[viol[order] < 1e6][:MAX_FULL]
        spacing = np.sqrt(4.0 * np.pi / len(u))
        full: list[_Best] = []
        for a in range(0, len(order), FULL_BATCH):  # best first, until enough feasible seeds are known
            batch = order[a:a + FULL_BATCH]
            full += self.full(u[batch], {k: v[batch] for k, v in t.items()})
            if len(_distinct([b for b in full if b.viol == 0.0], spacing, self.m.o.refine_seeds)) \
                    >= self.m.o.refine_seeds:
                break
        full.sort(key=lambda b: b.key)
        return _distinct(full, spacing, self.m.o.refine_seeds), t, u

    def refine(self, seed: _Best, step0: float) -> _Best:
        best, step = self.full(seed.u[None])[0], step0  # re-scored with the fine samples and yaw steps
        for _ in range(self.m.o.refine_rounds + 1):
            for _move in range(8):
                cand = min(self.full(_neighbours(best.u, step)), key=lambda b: b.key)
                if cand.key[:2] >= best.key[:2]:
                    break
                best = cand
            step /= 2.0
        return best


def _distinct(ranked: list[_Best], spacing: float, n: int) -> list[_Best]:
    """Up to ``n`` of ``ranked`` (best first), no two within two grid spacings of each other."""
    out: list[_Best] = []
    for b in sorted(ranked, key=lambda b: b.key):
        if len(out) >= n:
            break
        if all(float(b.u @ o.u) <= np.cos(2.0 * spacing) for o in out):
            out.append(b)
    return out


def _neighbours(u: np.ndarray, step: float) -> np.ndarray:
    helper = np.array([1.0, 0.0, 0.0]) if abs(u[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(u, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(u, e1)
    phi = np.radians(np.arange(0.0, 360.0, 45.0))
    d = np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2
    nb = np.cos(step) * u + np.sin(step) * d
    return nb / np.linalg.norm(nb, axis=1, keepdims=True)


def _refusal(best: _Best | None, t: dict, evaluated: int) -> CheckFailed:
    if best is None or not t["fits"].any():
        return CheckFailed("no orientation fits the part with supports and pad in the build volume",
                           hint="choose a printer with a larger build volume")
    return CheckFailed(
        f"no orientation keeps the protected surfaces free of supports: the closest needs support on "
        f"{float(best.cheap['prot']):.2f} mm² of protected surface and has {best.minima[1]} local minima "
        f"within the contact margin of a protected face (limits 0 mm², 0 minima; {evaluated} directions "
        f"scored)",
        hint="check the plan's channel, skin surface and protected regions, or the process profile's "
             "critical_angle_deg and contact_margin_mm",
    )


def orient_part(vertices: np.ndarray, faces: np.ndarray, protection: Protection, process: ProcessProfile,
                build_volume_mm: tuple[float, float, float]) -> OrientedPart:
    """Choose the orientation of ``(vertices (n, 3), faces (m, 3))`` and place it on the platform.

    Raises ``CheckFailed`` when no orientation meets the hard constraints.
    """
    model = _Model(vertices, faces, protection, process, build_volume_mm)
    search = _Search(model)
    seeds, t1, u1 = search.seeds()
    step0 = np.sqrt(4.0 * np.pi / len(u1))
    results = [search.refine(s, step0) for s in seeds]
    best = min(results, key=lambda b: b.key) if results else None
    if best is None or best.viol > 0.0:
        raise _refusal(best, t1, search.evaluated)
    log.debug("orient: %d evaluated, %d feasible, total %.6f", search.evaluated, search.feasible, best.total)
    return _place(vertices, faces, protection, process, build_volume_mm, best, search)


def _place(vertices: np.ndarray, faces: np.ndarray, protection: Protection, process: ProcessProfile,
           bed: tuple[float, float, float], best: _Best, search: _Search) -> OrientedPart:
    t = best.cheap
    rot = yaw(float(t["yaw"])) @ align_to_z(best.u)[0]
    used = np.unique(np.asarray(faces))
    p = np.asarray(vertices, dtype=np.float64) @ rot.T
    lo, hi = p[used].min(axis=0), p[used].max(axis=0)
    s = process.support
    shift = np.array([bed[0] / 2.0 - (lo[0] + hi[0]) / 2.0, bed[1] / 2.0 - (lo[1] + hi[1]) / 2.0,
                      s.pad_thickness_mm + s.object_elevation_mm - lo[2]])
    tf = np.eye(4)
    tf[:3, :3], tf[:3, 3] = rot, shift
    score = ScoreTerms(
        supported_area_mm2=float(t["sup"]), support_count_est=float(t["sup"] / s.area_per_point_mm2
                                                                   + best.minima[0]),
        local_minima=best.minima[0], peak_layer_area_mm2=float(t["peak"]), height_mm=float(t["height"]),
        print_height_mm=float(t["height"] + s.pad_thickness_mm + s.object_elevation_mm),
        channel_angle_deg=float(t["angle"]), protected_overhang_mm2=float(t["prot"]),
        region_overhang_mm2=float(t["soft"]), bore_span_mm=float(t["span"]),
        protected_minima=best.minima[1], fits=bool(t["fits"]), yaw_deg=float(t["yaw"]),
        footprint_mm=(float(t["fx"]), float(t["fy"])), weighted=best.terms, total=best.total,
    )
    return OrientedPart(
        transform=frozen_array(tf, np.float64), vertices=frozen_array(p + shift, np.float64),
        faces=frozen_array(faces, np.int64), protected=frozen_array(protection.mask, bool),
        reasons=frozen_array(protection.reasons, np.uint8), channel=protection.channel.transformed(tf),
        up_design=frozen_array(best.u, np.float64), scores=score, candidates_evaluated=search.evaluated,
        feasible_candidates=search.feasible, build_volume_mm=tuple(float(x) for x in bed),
        regions=frozen_array(transform_spheres(protection.regions, tf), np.float64),
    )
