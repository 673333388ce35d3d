"""Layer checks on a ``SliceStack``: islands, resin traps, suction cups; resin volume and print time.

Worked on the exact polygons (not on pixels), layer pair by layer pair:

* **Island** (as UVtools's, with zero tolerance): a region of layer ``i`` (an outer loop less its holes) whose
  area overlaps nothing of layer ``i - 1``. Layer 0 sits on the platform and has no islands. Fast path: a
  few vertices of the region's outer loop strictly inside layer ``i - 1``'s solid prove support. Otherwise
  the exact test runs: every vertex both ways and every edge pair for a proper crossing.
* **Air**: every hole loop is a pocket of free space in its layer. Pockets of consecutive layers that
  overlap are joined (union-find); a pocket that overlaps the exterior of the layer above (or is in the last
  layer: the vat) is *open upwards*, one that overlaps the exterior of the layer below is *open downwards*;
  layer 0 is closed below by the platform. Overlap is decided from the pocket's vertices (a vertex that is
  free in the other layer tells which pocket or exterior it lies in), both ways.
* **Resin trap**: a group of joined pockets open neither way (an enclosed volume of liquid resin).
  **Suction cup**: a group open only upwards, i.e. closed towards the platform and open towards the vat
  (UVtools's definition), at least ``cup_min_height_mm`` tall and ``cup_min_area_mm2`` in area.

Print time (an estimate, documented, not PrusaSlicer's): LCD/DLP: per layer its exposure (``first`` for
layer 0, a linear fade over ``faded_layers``, then ``exposure_s``) plus a tilt (fast when the layer's area
is at most ``area_fill`` of the screen, else slow). Laser: per layer the scan length (contours + hatch lines
at ``hatch_spacing_mm``) over the scan speed, plus a fixed Z/peel time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fabctl.slicestack import SliceStack

_SAMPLES = 16


@dataclass(frozen=True)
class Finding:
    """One island, trap or cup: the layers it spans, where (platform mm) and how big."""

    kind: str
    layer: int
    top_layer: int
    x_mm: float
    y_mm: float
    area_mm2: float
    volume_mm3: float = 0.0

    def as_dict(self) -> dict:
        return {"kind": self.kind, "layer": self.layer, "top_layer": self.top_layer,
                "x_mm": round(self.x_mm, 3), "y_mm": round(self.y_mm, 3), "area_mm2": round(self.area_mm2, 4),
                "volume_mm3": round(self.volume_mm3, 4)}


@dataclass(frozen=True)
class LayerReport:
    islands: list[Finding]
    resin_traps: list[Finding]
    suction_cups: list[Finding]

    @property
    def counts(self) -> dict[str, int]:
        return {"islands": len(self.islands), "resin_traps": len(self.resin_traps),
                "suction_cups": len(self.suction_cups)}


def winding(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(q,) int64 winding number of each point (q, 2) against the edges ``a -> b`` (each (e, 2))."""
    if len(points) == 0 or len(a) == 0:
        return np.zeros(len(points), dtype=np.int64)
    px, py = points[:, 0:1], points[:, 1:2]
    ax, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    side = (bx - ax) * (py - ay) - (px - ax) * (by - ay)            # (q, e) > 0: point left of edge
    up = (ay <= py) & (by > py) & (side > 0)
    down = (by <= py) & (ay > py) & (side < 0)
    return up.sum(axis=1) - down.sum(axis=1)


def _sample(p: np.ndarray, k: int = _SAMPLES) -> np.ndarray:
    return p if len(p) <= k else p[np.linspace(0, len(p) - 1, k).astype(np.int64)]


@dataclass(frozen=True)
class _Index:
    """Every layer's edges bucketed by (layer, y bin), for vectorised point location across all layers."""

    a: np.ndarray
    b: np.ndarray
    owner: np.ndarray
    keys: np.ndarray
    entry: np.ndarray
    area: np.ndarray
    bin_mm: float
    n_bins: int
    base_mm: float


def _build_index(stack: SliceStack, bin_mm: float = 0.05) -> _Index:
    a, b = stack.edges()
    owner = stack.point_loop
    layer = stack.loop_layer[owner]
    base = float(a[:, 1].min()) if len(a) else 0.0
    y0 = np.floor((np.minimum(a[:, 1], b[:, 1]) - base) / bin_mm).astype(np.int64)
    y1 = np.floor((np.maximum(a[:, 1], b[:, 1]) - base) / bin_mm).astype(np.int64)
    n_bins = int(y1.max()) + 2 if len(y1) else 1
    n = y1 - y0 + 1
    e = np.repeat(np.arange(len(a)), n)
    k = np.arange(len(e)) - np.repeat(np.cumsum(n) - n, n)
    keys = layer[e] * n_bins + y0[e] + k
    order = np.argsort(keys, kind="stable")
    return _Index(a, b, owner, keys[order], e[order], stack.loop_area_mm2, bin_mm, n_bins, base)


def _locate(ix: _Index, q: np.ndarray, layer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Winding number (k,) and innermost containing loop (k,) (``-1``: none) of points q (k, 2) in layers."""
    key = layer * ix.n_bins + np.clip(np.floor((q[:, 1] - ix.base_mm) / ix.bin_mm).astype(np.int64), 0, ix.n_bins - 1)
    lo, hi = np.searchsorted(ix.keys, key, "left"), np.searchsorted(ix.keys, key, "right")
    n = hi - lo
    pt = np.repeat(np.arange(len(q)), n)
    e = ix.entry[np.repeat(lo - np.cumsum(n) + n, n) + np.arange(len(pt))]
    ea, eb, qq = ix.a[e], ix.b[e], q[pt]
    side = (eb[:, 0] - ea[:, 0]) * (qq[:, 1] - ea[:, 1]) - (qq[:, 0] - ea[:, 0]) * (eb[:, 1] - ea[:, 1])
    up = (ea[:, 1] <= qq[:, 1]) & (eb[:, 1] > qq[:, 1])
    down = (eb[:, 1] <= qq[:, 1]) & (ea[:, 1] > qq[:, 1])
    wind = np.bincount(pt, weights=(up & (side > 0)).astype(float) - (down & (side < 0)), minlength=len(q))
    # crossing parity per (point, loop): rays to +x cross edges straddling y with the point on their left/right
    right = np.where(up, side > 0, side < 0) & (up | down)
    pair = pt.astype(np.int64) * (len(ix.area) + 1) + ix.owner[e]
    uniq, cnt = np.unique(pair[right], return_counts=True)
    odd = uniq[cnt % 2 == 1]
    p_odd, l_odd = odd // (len(ix.area) + 1), odd % (len(ix.area) + 1)
    inner = np.full(len(q), -1, dtype=np.int64)
    if len(odd):
        size = np.abs(ix.area[l_odd])
        order = np.lexsort((-size, p_odd))          # per point, largest first; the last write wins
        inner[p_odd[order]] = l_odd[order]
    return np.rint(wind).astype(np.int64), inner


def _samples(stack: SliceStack, loops: np.ndarray, k: int = _SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``k`` evenly spread vertices of each loop: points (q, 2) and their loop (q,)."""
    lo = stack.loop_offsets
    size = lo[loops + 1] - lo[loops]
    m = np.minimum(size, k)
    owner = np.repeat(loops, m)
    j = np.arange(len(owner)) - np.repeat(np.cumsum(m) - m, m)
    idx = lo[owner] + (j * np.repeat(size, m)) // np.repeat(m, m)
    return stack.points_mm[idx], owner


def _proper_crossing(a1, b1, a2, b2) -> bool:
    """Any edge of set 1 properly crossing any edge of set 2 (interiors cross at one point)."""
    def orient(p, q, r):
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])
    for s in range(0, len(a1), 512):
        p, q = a1[s:s + 512, None, :], b1[s:s + 512, None, :]
        r, t = a2[None, :, :], b2[None, :, :]
        d1, d2 = orient(p, q, r), orient(p, q, t)
        d3, d4 = orient(r, t, p), orient(r, t, q)
        if np.any((d1 * d2 < 0) & (d3 * d4 < 0)):
            return True
    return False


def _region_edges(stack: SliceStack, outer: int, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``a -> b`` of loop ``outer`` and its holes (the region's boundary)."""
    lo = stack.loop_offsets
    loops = [outer, *np.flatnonzero(parent == outer).tolist()]
    ra = np.concatenate([stack.points_mm[lo[k]:lo[k + 1]] for k in loops])
    rb = np.concatenate([np.roll(stack.points_mm[lo[k]:lo[k + 1]], -1, axis=0) for k in loops])
    return ra, rb


def _region_overlaps(stack: SliceStack, outer: int, i_below: int, parent: np.ndarray) -> bool:
    """Does the region of loop ``outer`` (less its holes) overlap layer ``i_below``'s solid?

    Sampled vertices first (either way), then the exact test: every vertex both ways and every edge pair.
    """
    lo = stack.loop_offsets
    ra, rb = _region_edges(stack, outer, parent)
    a, b = stack.layer_edges(i_below)
    if not len(a):
        return False
    outer_pts = stack.points_mm[lo[outer]:lo[outer + 1]]
    if np.any(winding(_sample(outer_pts), a, b) != 0) or np.any(winding(_sample(a, 64), ra, rb) != 0):
        return True
    if np.any(winding(outer_pts, a, b) != 0):
        return True
    if np.any(winding(a, ra, rb) != 0):
        return True
    return _proper_crossing(ra, rb, a, b)


def islands(stack: SliceStack, ix: _Index | None = None) -> list[Finding]:
    """Regions that overlap nothing in the layer below (module docs)."""
    ix = ix or _build_index(stack)
    area, parent, layer = stack.loop_area_mm2, stack.loop_parent, stack.loop_layer
    outers = np.flatnonzero((parent < 0) & (area > 0) & (layer >= 1))
    supported = np.zeros(stack.n_loops, dtype=bool)
    q, owner = _samples(stack, outers)
    wind, _ = _locate(ix, q, layer[owner] - 1)
    supported[owner[wind != 0]] = True
    below = np.flatnonzero(layer < stack.n_layers - 1)
    q, owner = _samples(stack, below, 4 * _SAMPLES)
    wind, inner = _locate(ix, q, layer[owner] + 1)
    hit = inner[(wind != 0) & (inner >= 0)]
    supported[hit] = True
    out = []
    lo = stack.loop_offsets
    for k in outers[~supported[outers]]:
        if _region_overlaps(stack, int(k), int(layer[k]) - 1, parent):
            continue
        c = stack.points_mm[lo[k]:lo[k + 1]].mean(axis=0)
        out.append(Finding("island", int(layer[k]), int(layer[k]), float(c[0]), float(c[1]), float(area[k])))
    return out


class _Union:
    def __init__(self, n: int) -> None:
        self.p = list(range(n))

    def find(self, x: int) -> int:
        while self.p[x] != x:
            self.p[x] = self.p[self.p[x]]
            x = self.p[x]
        return x

    def join(self, x: int, y: int) -> None:
        self.p[self.find(x)] = self.find(y)


def air_pockets(stack: SliceStack, cup_min_height_mm: float = 0.5, cup_min_area_mm2: float = 0.25,
                ix: _Index | None = None) -> tuple[list[Finding], list[Finding]]:
    """Resin traps and suction cups (module docs)."""
    area = stack.loop_area_mm2
    holes = np.flatnonzero(area < 0)
    if not len(holes):
        return [], []
    ix = ix or _build_index(stack)
    layer = stack.loop_layer
    index = np.full(stack.n_loops, -1, dtype=np.int64)
    index[holes] = np.arange(len(holes))
    uf = _Union(len(holes))
    up = layer[holes] == stack.n_layers - 1                       # the last layer opens onto the vat
    down = np.zeros(len(holes), dtype=bool)
    q, owner = _samples(stack, holes)
    for step, flag in ((1, up), (-1, down)):
        other = layer[owner] + step
        ok = (other >= 0) & (other < stack.n_layers)
        wind, inner = _locate(ix, q[ok], other[ok])
        src = index[owner[ok]]
        free = wind == 0
        np.logical_or.at(flag, src[free & (inner < 0)], True)
        pairs = np.unique(np.column_stack([src, inner])[free & (inner >= 0)], axis=0)
        for s_, t_ in pairs:
            if index[t_] >= 0:
                uf.join(int(s_), int(index[t_]))
    # pockets whose neighbour pocket's vertices fall inside them are joined from the other side as well
    return _classify(stack, holes, uf, up, down, cup_min_height_mm, cup_min_area_mm2)


def _classify(stack, holes, uf, up, down, min_h, min_a):
    roots = np.array([uf.find(n) for n in range(len(holes))])
    area = -stack.loop_area_mm2[holes]
    layer = stack.loop_layer[holes]
    traps, cups = [], []
    for r in np.unique(roots):
        m = roots == r
        g_up, g_down = bool(up[m].any()), bool(down[m].any())
        if g_down:
            continue
        lo_l, hi_l = int(layer[m].min()), int(layer[m].max())
        vol = float((area[m] * stack.layer_thickness_mm[layer[m]]).sum())
        k = holes[m][np.argmax(area[m])]
        c = stack.points_mm[stack.loop_offsets[k]:stack.loop_offsets[k + 1]].mean(axis=0)
        f = Finding("", lo_l, hi_l, float(c[0]), float(c[1]), float(area[m].max()), vol)
        height = float(stack.layer_tops_mm[hi_l] - stack.layer_tops_mm[lo_l] + stack.layer_thickness_mm[lo_l])
        if not g_up:
            traps.append(Finding("resin_trap", *_fields(f)))
        elif height >= min_h and f.area_mm2 >= min_a:
            cups.append(Finding("suction_cup", *_fields(f)))
    return traps, cups


def _fields(f: Finding) -> tuple:
    return (f.layer, f.top_layer, f.x_mm, f.y_mm, f.area_mm2, f.volume_mm3)


def check_layers(stack: SliceStack) -> LayerReport:
    """Islands, resin traps and suction cups of a stack (module docs)."""
    ix = _build_index(stack)
    traps, cups = air_pockets(stack, ix=ix)
    return LayerReport(islands(stack, ix), traps, cups)


# ------------------------------------------------------------------------------- volume and print time
def resin_ml(stack: SliceStack) -> float:
    """Cured volume in millilitres (layer area x thickness)."""
    return stack.volume_mm3 / 1000.0


def lcd_time_s(stack: SliceStack, exposure_s: float, first_exposure_s: float, faded_layers: int,
               screen_area_mm2: float, area_fill: float = 0.45, fast_tilt_s: float = 2.5,
               slow_tilt_s: float = 5.0) -> tuple[float, int, int]:
    """(seconds, fast layers, slow layers) for a masked-LCD/DLP print (module docs)."""
    n = stack.n_layers
    i = np.arange(n, dtype=np.float64)
    fade = np.clip(i / (faded_layers + 1), 0.0, 1.0)
    exp = first_exposure_s + (exposure_s - first_exposure_s) * fade
    slow = stack.layer_area_mm2 > area_fill * screen_area_mm2
    total = float(exp.sum() + np.where(slow, slow_tilt_s, fast_tilt_s).sum())
    return total, int(n - slow.sum()), int(slow.sum())


def laser_time_s(stack: SliceStack, speed_mm_s: float, hatch_spacing_mm: float,
                 layer_overhead_s: float = 6.0, first_exposure_factor: float = 1.0) -> float:
    """Estimated seconds for a laser print: scan length / speed + a Z/peel overhead per layer."""
    a, b = stack.edges()
    perimeter = float(np.linalg.norm(b - a, axis=1).sum())
    hatch = float(np.abs(stack.layer_area_mm2).sum()) / hatch_spacing_mm
    return (perimeter + hatch) / speed_mm_s * first_exposure_factor + layer_overhead_s * stack.n_layers
