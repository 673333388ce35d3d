"""Safe mesh repairs, each counted and named: nothing is changed without a ``Fix`` saying so.

``repair(vertices, faces)`` applies, in order:

1. ``degenerate_faces_removed``: faces with a repeated vertex (they add no surface and removing them opens
   nothing); zero-area faces with three distinct corners close slits and are reported, not removed;
2. ``duplicate_faces_removed``: repeated vertex sets. Copies wound the same way keep one; a pair wound in
   opposite ways is a zero-thickness sliver and both go;
3. ``faces_reoriented``: faces flipped so each shell is consistently wound (the smaller group of each shell
   is flipped); a shell that cannot be oriented (one-sided, Möbius-like) is reported, not touched;
4. ``shells_inverted``: closed shells with negative volume are turned right side out;
5. ``holes_filled``: boundary loops of at most ``max_hole_edges`` edges are closed with a fan around a new
   vertex at the loop's centroid; larger holes are reported, not filled;
6. ``unused_vertices_removed``.

What is never touched (reported in ``not_fixed``): non-manifold edges and vertices, self-intersections, extra
shells, thin walls, the channel. Those need the designer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fabctl.mesh import topology as topo

DEFAULT_MAX_HOLE_EDGES = 32


@dataclass(frozen=True)
class Fix:
    name: str
    count: int
    detail: str


@dataclass
class RepairResult:
    """vertices (n, 3), faces (m, 3); fixes applied (count > 0 only); not_fixed: problems left for a person."""

    vertices: np.ndarray
    faces: np.ndarray
    fixes: list[Fix] = field(default_factory=list)
    not_fixed: list[Fix] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(f.count for f in self.fixes)


def _remove_degenerate(V: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Drop faces with a repeated vertex (removing one never opens the surface); count the zero-area faces
    with three distinct corners, which close slits between collinear edges and need re-triangulating."""
    repeated = (F[:, 0] == F[:, 1]) | (F[:, 1] == F[:, 2]) | (F[:, 0] == F[:, 2])
    flat = len(topo.degenerate_faces(topo.Geometry(V, F[~repeated])))
    return F[~repeated], int(repeated.sum()), flat


def _remove_duplicates(F: np.ndarray) -> tuple[np.ndarray, int]:
    if not len(F):
        return F, 0
    s = np.sort(F, axis=1)
    _, group, cnt = np.unique(s, axis=0, return_inverse=True, return_counts=True)
    group = group.reshape(-1)
    if (cnt == 1).all():
        return F, 0
    # orientation of each face relative to its sorted corners: even permutation -> +1
    rot = np.argmin(F, axis=1)
    r = np.take_along_axis(F, np.stack([rot, (rot + 1) % 3, (rot + 2) % 3], axis=1), axis=1)
    sign = np.where(r[:, 1] < r[:, 2], 1, -1)
    net = np.bincount(group, weights=sign)
    keep = np.zeros(len(F), dtype=bool)
    single = cnt[group] == 1
    keep[single] = True
    multi = np.flatnonzero(~single)
    # keep the first face of each repeated group whose winding matches the group's net winding
    want = np.sign(net[group[multi]])
    cand = multi[(want != 0) & (sign[multi] == want)]
    first = np.unique(group[cand], return_index=True)[1]
    keep[cand[first]] = True
    return F[keep], int(len(F) - keep.sum())


def _orient(F: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Flip faces so every shell is consistently wound: (faces, flipped, shells that cannot be oriented)."""
    m = len(F)
    if m == 0:
        return F, 0, 0
    et = topo.edge_table(F)
    a, b = et.pairs()
    fa, fb = a // 3, b // 3
    same_dir = et.src[a] == et.src[b]  # these two must end up with opposite flip states
    # doubled graph: node f = "f kept", node f + m = "f flipped"
    r = np.concatenate([np.where(same_dir, fa, fa), np.where(same_dir, fa + m, fa + m)])
    c = np.concatenate([np.where(same_dir, fb + m, fb), np.where(same_dir, fb, fb + m)])
    g = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(2 * m, 2 * m)).tocsr()
    _, comp = connected_components(g, directed=False)
    k, shell = topo.shells(F, et)
    bad_face = comp[:m] == comp[m:]
    bad_shell = np.zeros(k, dtype=bool)
    bad_shell[shell[bad_face]] = True
    first = np.full(k, m, dtype=np.int64)
    np.minimum.at(first, shell, np.arange(m))
    ref = first[shell]
    flip = comp[np.arange(m) + m] == comp[ref]
    # flip the smaller group of each shell
    nflip = np.bincount(shell, weights=flip, minlength=k)
    size = np.bincount(shell, minlength=k)
    swap = nflip > size / 2
    flip ^= swap[shell]
    flip &= ~bad_shell[shell]
    out = F.copy()
    out[flip] = out[flip][:, ::-1]
    return out, int(flip.sum()), int(bad_shell.sum())


def _invert_inside_out(V: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, int, int]:
    geo = topo.Geometry(V, F)
    k, labels = topo.shells(F, geo.edges)
    sh = topo.shell_summaries(geo, labels, k)
    bad = np.array([s["closed"] and s["volume_mm3"] < 0 for s in sh], dtype=bool)
    if not bad.any():
        return F, 0, 0
    sel = bad[labels]
    out = F.copy()
    out[sel] = out[sel][:, ::-1]
    return out, int(bad.sum()), int(sel.sum())


def _fill_holes(V: np.ndarray, F: np.ndarray, max_edges: int) -> tuple[np.ndarray, np.ndarray, int, int, list[int]]:
    """Close simple boundary loops of <= max_edges edges: (V, F, holes filled, faces added, sizes left)."""
    et = topo.edge_table(F)
    one = np.flatnonzero(et.counts == 1)
    if not len(one):
        return V, F, 0, 0, []
    h = et.order[et.first[one]]  # the boundary half-edges, as the faces run them
    src, dst = et.src[h], et.dst[h]
    verts, inv = np.unique(np.concatenate([src, dst]), return_inverse=True)
    s_i, d_i = inv[: len(h)], inv[len(h):]
    n = len(verts)
    g = coo_matrix((np.ones(len(h), dtype=np.int8), (s_i, d_i)), shape=(n, n)).tocsr()
    k, lab = connected_components(g, directed=False)
    loop = lab[s_i]
    edges = np.bincount(loop, minlength=k)
    outdeg = np.bincount(s_i, minlength=n)
    indeg = np.bincount(d_i, minlength=n)
    simple_v = (outdeg == 1) & (indeg == 1)
    simple = np.ones(k, dtype=bool)
    simple[lab[~simple_v]] = False
    fill = simple & (edges <= max_edges) & (edges >= 3)
    left = sorted(int(e) for e in edges[~fill])
    if not fill.any():
        return V, F, 0, 0, left
    holes = np.flatnonzero(fill)
    new_id = np.full(k, -1, dtype=np.int64)
    new_id[holes] = len(V) + np.arange(len(holes))
    mid = 0.5 * (V[src] + V[dst])
    cen = np.stack([np.bincount(loop, weights=mid[:, i], minlength=k) for i in range(3)], axis=1)
    cen = cen[holes] / edges[holes, None]
    use = fill[loop]
    # each boundary half-edge a->b gets the face (b, a, centre): wound against the hole's rim
    add = np.column_stack([dst[use], src[use], new_id[loop[use]]])
    return np.vstack([V, cen]), np.vstack([F, add]), int(len(holes)), int(len(add)), left


def repair(vertices: np.ndarray, faces: np.ndarray, max_hole_edges: int = DEFAULT_MAX_HOLE_EDGES) -> RepairResult:
    """Apply the safe fixes of the module docstring to copies of (n, 3) vertices and (m, 3) faces."""
    V = np.array(vertices, dtype=np.float64)
    F = np.array(faces, dtype=np.int64)
    fixes: list[Fix] = []
    F, n, flat = _remove_degenerate(V, F)
    fixes.append(Fix("degenerate_faces_removed", n, f"{n} faces with a repeated corner removed"))
    F, n = _remove_duplicates(F)
    fixes.append(Fix("duplicate_faces_removed", n, f"{n} repeated faces removed (opposite pairs: both)"))
    F, n, bad_shells = _orient(F)
    fixes.append(Fix("faces_reoriented", n, f"{n} faces flipped to match their neighbours"))
    V, F, holes, added, left = _fill_holes(V, F, max_hole_edges)
    fixes.append(Fix("holes_filled", holes, f"{holes} holes of at most {max_hole_edges} edges closed with "
                                            f"{added} faces"))
    F, inv_shells, inv_faces = _invert_inside_out(V, F)
    fixes.append(Fix("shells_inverted", inv_shells, f"{inv_shells} inside-out shells ({inv_faces} faces) turned "
                                                    f"right side out"))
    used = np.zeros(len(V), dtype=bool)
    used[F.reshape(-1)] = True
    n = int((~used).sum())
    if n:
        remap = np.cumsum(used) - 1
        V, F = V[used], remap[F]
    fixes.append(Fix("unused_vertices_removed", n, f"{n} vertices no face uses removed"))
    # what is left for a person
    geo = topo.Geometry(V, F)
    et = geo.edges
    not_fixed = []
    if flat:
        not_fixed.append(Fix("degenerate_faces", flat, f"{flat} zero-area faces with three distinct corners "
                                                       f"(removing them would open slits)"))
    nme = int((et.counts > 2).sum())
    if nme:
        not_fixed.append(Fix("non_manifold_edges", nme, f"{nme} edges shared by three or more faces"))
    nmv = len(topo.non_manifold_vertices(F, et))
    if nmv:
        not_fixed.append(Fix("non_manifold_vertices", nmv, f"{nmv} vertices where separate fans touch"))
    if left:
        not_fixed.append(Fix("holes_not_filled", len(left),
                             f"{len(left)} holes too large or not simple (edges: {', '.join(map(str, left[:8]))})"))
    if bad_shells:
        not_fixed.append(Fix("unorientable_shells", bad_shells, f"{bad_shells} shells cannot be wound consistently"))
    k, _ = topo.shells(F, et)
    if k > 1:
        not_fixed.append(Fix("shell_count", k, f"{k} shells: extra shells need the designer"))
    return RepairResult(V, F, [f for f in fixes if f.count], not_fixed)
