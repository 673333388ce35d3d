"""Cross-sections of a watertight triangle mesh at every layer plane, as closed loops (``SliceStack``).

Vectorised over triangles and layers at once; Python loops run only over doubling rounds.

Method
------
1. Planes: layer ``i``'s cross-section is taken at its mid-height (``slicestack`` module docs).
2. Every (triangle, plane) pair that crosses is found with two ``searchsorted`` calls over the triangles'
   z ranges and expanded with ``np.repeat``. **Half-open rule**: a vertex with ``z >= plane`` counts as
   above the plane (symbolic perturbation: the plane is nudged infinitesimally down). So no vertex ever lies
   *on* a plane, every crossing triangle has exactly one vertex alone on its side and exactly two crossed
   edges, and an edge is crossed (or not) the same way for both triangles that share it. Vertices, edges and
   whole faces lying exactly in a plane need no special case.
3. Each crossing gives one directed segment from one crossed edge to the other, oriented from the
   triangle's winding so that the solid is on the left (outer loops counter-clockwise).
4. Segments are chained by integer keys ``(plane, edge)`` where ``edge`` is the sorted vertex-index pair:
   topology, not floating-point coordinates, decides what connects. The successor map is a permutation on a
   watertight mesh; its cycles are labelled and ranked by pointer doubling (``O(s log s)``).
5. Crossing points are computed from each edge's lower-index vertex to its higher one, so both triangles of
   an edge would compute bit-identical points.

An open or non-manifold mesh leaves chains that do not close; they are dropped and counted in
``SliceStack.open_chains`` (the validate stage should have refused such a mesh already).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from fabctl.errors import CheckFailed, InputError
from fabctl.slicestack import SliceStack

log = logging.getLogger(__name__)


def layer_planes(height_mm: float, layer_height_mm: float, first_layer_height_mm: float) -> np.ndarray:
    """(n,) float64 mid-height of every layer for a part ``height_mm`` tall standing on ``z = 0``.

    A layer exists when its mid-height plane lies below the part's top (what mid-plane sampling can print);
    layer 0 always exists. ``n = ceil((height - first) / layer + 1/2)`` (at least 1).
    """
    if layer_height_mm <= 0 or first_layer_height_mm <= 0:
        raise InputError(f"layer heights must be positive (got {layer_height_mm}, {first_layer_height_mm})")
    n = max(1, math.ceil((height_mm - first_layer_height_mm) / layer_height_mm + 0.5 - 1e-9))
    z = first_layer_height_mm + (np.arange(n) - 0.5) * layer_height_mm
    z[0] = 0.5 * first_layer_height_mm
    return z


# by the above-mask code (bit j set when vertex j is above): the lone vertex, and whether it is above
_LONE = np.array([0, 0, 1, 2, 2, 1, 0, 0], dtype=np.int64)
_LONE_ABOVE = np.array([False, True, True, False, True, False, False, False])


def crossing_segments(vertices: np.ndarray, faces: np.ndarray, planes: np.ndarray):
    """Every directed triangle–plane intersection segment, all planes at once.

    vertices : (v, 3) float64; faces : (m, 3) int64 (counter-clockwise seen from outside); planes : (n,)
    float64 ascending.
    Returns ``(plane, key_from, key_to, point_from)``: (s,) int64 plane index sorted ascending, (s,) int64
    chaining keys of the segment's start and end edge, and (s, 2) float64 start point.
    """
    vz = np.ascontiguousarray(vertices[:, 2])
    f0, f1, f2 = (np.ascontiguousarray(faces[:, j]) for j in range(3))
    z0, z1, z2 = vz[f0], vz[f1], vz[f2]
    k0 = np.searchsorted(planes, np.minimum(np.minimum(z0, z1), z2), side="right")
    k1 = np.searchsorted(planes, np.maximum(np.maximum(z0, z1), z2), side="right")
    counts = k1 - k0
    face = np.repeat(np.arange(len(faces)), counts)
    first = np.cumsum(counts) - counts
    plane = np.repeat(k0 - first, counts) + np.arange(len(face))
    if len(planes) < 65536:  # radix sort on 16-bit keys
        order = np.argsort(plane.astype(np.uint16), kind="stable")
    else:
        order = np.argsort(plane, kind="stable")
    face, plane = face[order], plane[order]
    zp = planes[plane]
    code = ((z0[face] >= zp).view(np.int8) + 2 * (z1[face] >= zp).view(np.int8)
            + 4 * (z2[face] >= zp).view(np.int8))
    lone, lone_above = _LONE[code], _LONE_ABOVE[code]
    g0, g1, g2 = f0[face], f1[face], f2[face]
    vj = np.where(lone == 0, g0, np.where(lone == 1, g1, g2))
    vn = np.where(lone == 0, g1, np.where(lone == 1, g2, g0))
    vp = np.where(lone == 0, g2, np.where(lone == 1, g0, g1))
    # solid on the left: lone vertex above -> from edge (j, j+1) to edge (j-1, j); below -> reversed
    a_other = np.where(lone_above, vn, vp)
    b_other = np.where(lone_above, vp, vn)
    key_from, lo_a, hi_a = _edge_keys(plane, vj, a_other, len(vertices), len(planes))
    key_to, _, _ = _edge_keys(plane, vj, b_other, len(vertices), len(planes))
    za, zb = vz[lo_a], vz[hi_a]
    t = (zp - za) / (zb - za)
    point = np.empty((len(t), 2))
    for c in range(2):
        col = np.ascontiguousarray(vertices[:, c])
        ca = col[lo_a]
        point[:, c] = ca + t * (col[hi_a] - ca)
    return plane, key_from, key_to, point


def _edge_keys(plane: np.ndarray, u: np.ndarray, w: np.ndarray, nv: int, n_planes: int):
    """(s,) int64 key of ``(plane, sorted edge)``, and the edge's low/high vertex indices."""
    lo, hi = np.minimum(u, w), np.maximum(u, w)
    if float(nv) * nv * max(n_planes, 1) >= 2.0**62:
        raise InputError(f"mesh too large to slice: {nv} vertices x {n_planes} layers overflows edge keys")
    return (plane * nv + lo) * nv + hi, lo, hi


def chain_cycles(key_from: np.ndarray, key_to: np.ndarray,
                 max_cycle: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chain segments into closed cycles by matching each end key to a start key.

    ``max_cycle`` bounds a cycle's length (the most segments on one plane); it sets the doubling rounds.
    Returns ``(keep, cycle, rank)``: (s,) bool, segment lies on a closed cycle; (s,) int64 cycle label (the
    smallest segment index on the cycle, ``-1`` when not kept); (s,) int64 position along the cycle
    starting at the label segment.
    """
    s = len(key_from)
    if s == 0:
        z = np.zeros(0, dtype=np.int64)
        return np.zeros(0, dtype=bool), z, z
    order = np.argsort(key_from)
    sk = key_from[order]
    order_to = np.argsort(key_to)
    if np.array_equal(sk, key_to[order_to]):         # every end meets exactly one start (watertight)
        succ = np.empty(s, dtype=np.int64)
        succ[order_to] = order
    else:
        pos = np.minimum(np.searchsorted(sk, key_to), s - 1)
        succ = np.where(sk[pos] == key_to, order[pos], -1)
    same = sk[1:] == sk[:-1]
    if same.any():                                    # a non-manifold edge: ambiguous, leave it open
        dup = np.zeros(s, dtype=bool)
        dup[order[1:][same]] = True
        dup[order[:-1][same]] = True
        succ[dup] = -1
    idx = np.arange(s, dtype=np.int32)
    dead = succ < 0
    nxt = np.where(dead, idx, succ).astype(np.int32)
    label = idx.copy()                                 # min index within the window [i, i + 2^k)
    offset = np.zeros(s, dtype=np.int32)               # steps from i to that min
    step = 1
    rounds = max(1, int(math.ceil(math.log2(max(2, max_cycle or s)))) + 1)
    any_dead = bool(dead.any())
    for _ in range(rounds):
        ln = label[nxt]
        better = ln < label
        offset = np.where(better, offset[nxt] + step, offset)
        label = np.where(better, ln, label)
        if any_dead:
            dead |= dead[nxt]
        nxt = nxt[nxt]
        step *= 2
    keep = ~dead
    length = np.bincount(label[keep], minlength=s)
    rank = np.where(keep, (length[label] - offset) % np.maximum(length[label], 1), 0)
    return keep, np.where(keep, label, -1).astype(np.int64), rank.astype(np.int64)


def slice_mesh(vertices: np.ndarray, faces: np.ndarray, layer_height_mm: float,
               first_layer_height_mm: float | None = None, placement_mm: np.ndarray | None = None,
               source_sha256: str = "") -> SliceStack:
    """Slice a mesh into a ``SliceStack``.

    vertices : (v, 3) float64 mm, mesh frame; faces : (m, 3) int64, counter-clockwise from outside.
    placement_mm : (3,) translation into the platform frame; by default the lowest point goes to ``z = 0``
    and x/y are kept. The part must stand on the platform (lowest point at ``z = 0`` after placement).
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if len(f) == 0 or len(v) < 3:
        raise InputError("cannot slice an empty mesh")
    h0 = float(first_layer_height_mm or layer_height_mm)
    if placement_mm is None:
        placement_mm = np.array([0.0, 0.0, -v[:, 2].min()])
    place = np.asarray(placement_mm, dtype=np.float64)
    v = v + place
    zmin, zmax = float(v[:, 2].min()), float(v[:, 2].max())
    if abs(zmin) > 1e-9:
        raise CheckFailed(f"part does not stand on the platform: lowest point at z = {zmin:.6g} mm",
                          hint="place the part so that its lowest point is at z = 0")
    planes = layer_planes(zmax, float(layer_height_mm), h0)
    plane, kf, kt, pt = crossing_segments(v, f, planes)
    per_plane = np.bincount(plane, minlength=len(planes))
    keep, label, rank = chain_cycles(kf, kt, int(per_plane.max()) if len(plane) else 1)
    open_segments = int((~keep).sum())
    if open_segments:
        log.warning("slice: %d segments on open chains dropped (mesh not watertight)", open_segments)
    pts, loop_offsets, loop_plane = _loops(plane, keep, label, rank, pt)
    layer_offsets = np.searchsorted(loop_plane, np.arange(len(planes) + 1)).astype(np.int64)
    parent = loop_parents(pts, loop_offsets, layer_offsets)
    return SliceStack(z_mm=planes, layer_height_mm=float(layer_height_mm), first_layer_height_mm=h0,
                      points_mm=pts, loop_offsets=loop_offsets, layer_offsets=layer_offsets, loop_parent=parent,
                      placement_mm=place, source_sha256=source_sha256, open_chains=open_segments)


def _loops(plane: np.ndarray, keep: np.ndarray, label: np.ndarray, rank: np.ndarray, pt: np.ndarray):
    """Scatter kept segments' start points into loop order.

    Loops are ordered by their label (= by plane, as segments are plane-sorted); loops of fewer than three
    points (zero-area slivers) are dropped. Returns points (p, 2), loop offsets (l + 1,), loop plane (l,).
    """
    s = len(label)
    roots = np.flatnonzero(keep & (label == np.arange(s)))
    size = np.bincount(label[keep], minlength=s)[roots]
    good = size >= 3
    roots, size = roots[good], size[good]
    loop_id = np.full(s, -1, dtype=np.int64)
    loop_id[roots] = np.arange(len(roots))
    lid = loop_id[np.where(keep, label, 0)]
    sel = keep & (lid >= 0)
    offsets = np.zeros(len(roots) + 1, dtype=np.int64)
    np.cumsum(size, out=offsets[1:])
    out = np.empty((int(offsets[-1]), 2), dtype=np.float64)
    out[offsets[lid[sel]] + rank[sel]] = pt[sel]
    return out, offsets, plane[roots]


def loop_parents(points: np.ndarray, loop_offsets: np.ndarray, layer_offsets: np.ndarray) -> np.ndarray:
    """(l,) int64 for each hole (clockwise loop) the innermost outer loop of its layer around it, else -1.

    points : (p, 2); loop_offsets : (l + 1,); layer_offsets : (n + 1,). A hole's first vertex is tested
    against every outer loop of its layer (crossing number, vectorised over holes x edges).
    """
    n_loops = len(loop_offsets) - 1
    parent = np.full(n_loops, -1, dtype=np.int64)
    if n_loops == 0:
        return parent
    pl = np.repeat(np.arange(n_loops), np.diff(loop_offsets))
    nxt = np.arange(1, len(points) + 1)
    nxt[loop_offsets[1:] - 1] = loop_offsets[:-1]
    a, b = points, points[nxt]
    area = 0.5 * np.bincount(pl, weights=a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0], minlength=n_loops)
    holes = np.flatnonzero(area < 0)
    if not len(holes):
        return parent
    loop_layer = np.repeat(np.arange(len(layer_offsets) - 1), np.diff(layer_offsets))
    outer_edge = area[pl] > 0
    for h in holes:  # holes are few (channels, pockets); each test is vectorised over its layer's edges
        q = points[loop_offsets[h]]
        lo_e, hi_e = loop_offsets[layer_offsets[loop_layer[h]]], loop_offsets[layer_offsets[loop_layer[h] + 1]]
        sel = np.arange(lo_e, hi_e)
        sel = sel[outer_edge[sel]]
        inside = _crossings(q, a[sel], b[sel], pl[sel], n_loops)
        cand = np.flatnonzero(inside)
        if len(cand):
            parent[h] = cand[np.argmin(area[cand])]
    return parent


def _crossings(q: np.ndarray, a: np.ndarray, b: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """(n,) bool: point ``q`` (2,) is inside loop k by the crossing-number rule over edges ``a -> b``."""
    ya, yb = a[:, 1], b[:, 1]
    straddle = (ya > q[1]) != (yb > q[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        x = a[:, 0] + (q[1] - ya) * (b[:, 0] - a[:, 0]) / (yb - ya)
    hit = straddle & (x > q[0])
    return (np.bincount(owner[hit], minlength=n) % 2).astype(bool)
