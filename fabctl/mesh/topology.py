"""Topology checks over (n, 3) vertices and (m, 3) faces: closed, oriented, manifold, clean, one shell.

Everything is derived from one sort of the 3m half-edges (``EdgeTable``) and one pass of per-face geometry
(``Geometry``), so the checks cost about as much as reading the file. Nothing here changes the mesh. The
sort, the per-face pass and the connected components are compiled when ``fabctl/mesh/_topology.c`` is built
(a counting sort, one loop, union-find), with the same results as the numpy paths (tests).

Definitions (exact and index-based; vertices are expected merged by position, as intake does):

- an *edge* is an unordered vertex pair; its *use count* is how many faces have it;
- watertight: every edge is used by exactly two faces;
- winding consistent: every two-face edge is traversed in opposite directions by its two faces;
- non-manifold edge: used by three or more faces; non-manifold vertex: its faces form more than one fan
  (group of faces joined across two-face edges around the vertex), e.g. two cones touching at the tips;
- degenerate face: a repeated vertex index, or an area that is zero relative to the face's longest edge
  (``2 area / longest² < DEGENERATE_REL``) or to the part (``area < DEGENERATE_ABS_REL * diagonal²``);
- duplicate face: the same vertex set as an earlier face (either winding); the count is the extra copies;
- shell: faces joined across two-face edges. Two bodies that only touch at a non-manifold edge or vertex are
  two shells, and a debris sliver glued to a body by a non-manifold edge is a shell of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from fabctl.mesh.kernels import load

_topology = load("_topology")  # the whole-mesh passes, compiled (None: the numpy paths below)


def compiled() -> bool:
    """Whether the face geometry, the edge table and the components run the compiled passes (``_topology``)."""
    return _topology is not None

DEGENERATE_REL = 1e-9
DEGENERATE_ABS_REL = 1e-14


@dataclass(frozen=True, eq=False)
class EdgeTable:
    """The half-edges of a mesh grouped by undirected edge.

    Half-edge ``h = 3 f + k`` runs from ``faces[f, k]`` to ``faces[f, (k + 1) % 3]``.

    src, dst : (3m,) int64 the half-edges' end vertices
    edge_of_half : (3m,) int64 undirected edge id of each half-edge
    edges : (e, 2) int64 undirected edges, smaller index first
    counts : (e,) int64 how many half-edges (faces) use each edge
    first : (e,) int64 position in ``order`` of each edge's first half-edge
    order : (3m,) int64 half-edge indices sorted by edge id
    """

    src: np.ndarray
    dst: np.ndarray
    edge_of_half: np.ndarray
    edges: np.ndarray
    counts: np.ndarray
    first: np.ndarray
    order: np.ndarray
    cache: dict = field(default_factory=dict, repr=False)

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """The two half-edges of every two-face edge: ((k,), (k,)) half-edge indices."""
        if "pairs" not in self.cache:
            two = self.counts == 2
            self.cache["pairs"] = (self.order[self.first[two]], self.order[self.first[two] + 1])
        return self.cache["pairs"]


def edge_table(faces: np.ndarray) -> EdgeTable:
    """Group the half-edges of ``faces`` (m, 3) by undirected edge: the half-edges in (edge key, index) order.

    Compiled: a counting sort on each edge's lower vertex (``_topology.half_edges``), when the vertex indices
    are not far more than the half-edges (a bucket per index below the largest). Numpy: the edge key
    ``lo * n + hi`` and the half-edge index are packed into one int64 when they fit, so a plain ``np.sort`` (no
    argsort, no second gather) gives both the sorted keys and the order. The two give the same table.
    """
    faces = np.ascontiguousarray(faces, dtype=np.int64)
    src = faces.reshape(-1)
    dst = faces[:, [1, 2, 0]].reshape(-1)
    n = int(faces.max()) + 1 if len(src) else 1
    if _topology is not None and n <= 4 * len(src) + 1024:  # (it counts over every vertex index below n)
        order, edge_of_half, first, counts = np.empty((4, len(src)), dtype=np.int64)
        edges = np.empty((len(src), 2), dtype=np.int64)
        e = _topology.half_edges(faces, n, order, edge_of_half, first, counts, edges)
        return EdgeTable(src, dst, edge_of_half, edges[:e], counts[:e], first[:e], order)
    lo = np.minimum(src, dst)
    hi = np.maximum(src, dst)
    key = lo * n + hi
    hbits = max(int(len(key)).bit_length(), 1)
    if n * n < 2 ** (62 - hbits):
        packed = np.sort((key << hbits) | np.arange(len(key), dtype=np.int64))
        order = packed & ((1 << hbits) - 1)
        skey = packed >> hbits
    else:
        order = np.argsort(key, kind="stable")
        skey = key[order]
    start = np.ones(len(skey), dtype=bool)
    start[1:] = skey[1:] != skey[:-1]
    first = np.flatnonzero(start)
    edge_of_half = np.empty(len(key), dtype=np.int64)
    edge_of_half[order] = np.cumsum(start) - 1
    counts = np.diff(np.append(first, len(skey)))
    ek = skey[first]
    edges = np.column_stack([ek // n, ek % n])
    return EdgeTable(src, dst, edge_of_half, edges, counts, first, order)


@dataclass
class Geometry:
    """Per-face geometry computed once and shared by every check.

    vertices : (n, 3) float64; faces : (m, 3) int64
    triangles : (m, 3, 3) corners; cross : (m, 3) (b - a) x (c - a) = 2 * area * unit normal
    area : (m,); cumulative_area : (m,) its running total; normal : (m, 3) unit normals (zero exactly where
    the area is zero); centroid : (m, 3); longest2 : (m,) longest squared edge. With ``_topology`` built, the
    first of triangles, cross, area and longest2 asked for computes all four in one pass.
    """

    vertices: np.ndarray
    faces: np.ndarray

    def _compiled(self) -> bool:
        """With the compiled pass, fill triangles, cross, area and longest2 at once (one pass over the faces)."""
        if _topology is None:
            return False
        m = len(self.faces)
        out = {"triangles": np.empty((m, 3, 3)), "cross": np.empty((m, 3)), "area": np.empty(m),
               "longest2": np.empty(m)}
        _topology.face_geometry(np.ascontiguousarray(self.vertices, dtype=np.float64),
                                np.ascontiguousarray(self.faces, dtype=np.int64), *out.values())
        self.__dict__.update(out)  # the cached properties' slots
        return True

    @cached_property
    def triangles(self) -> np.ndarray:
        if self._compiled():
            return self.__dict__["triangles"]
        return np.take(self.vertices, self.faces, axis=0)  # (3x faster than fancy indexing at this size)

    @cached_property
    def cross(self) -> np.ndarray:
        if "triangles" not in self.__dict__ and self._compiled():
            return self.__dict__["cross"]
        t = self.triangles
        u = t[:, 1] - t[:, 0]
        w = t[:, 2] - t[:, 0]
        out = np.empty_like(u)
        out[:, 0] = u[:, 1] * w[:, 2] - u[:, 2] * w[:, 1]
        out[:, 1] = u[:, 2] * w[:, 0] - u[:, 0] * w[:, 2]
        out[:, 2] = u[:, 0] * w[:, 1] - u[:, 1] * w[:, 0]
        return out

    @cached_property
    def area(self) -> np.ndarray:
        cross = self.cross
        if "area" in self.__dict__:  # the compiled pass made it with the cross products
            return self.__dict__["area"]
        return 0.5 * np.sqrt(np.einsum("ij,ij->i", cross, cross))

    @cached_property
    def longest2(self) -> np.ndarray:
        """(m,) each face's longest squared edge length."""
        t = self.triangles
        if "longest2" in self.__dict__:  # the compiled pass made it with the triangles
            return self.__dict__["longest2"]
        longest2 = None
        for a, b in ((1, 0), (2, 1), (0, 2)):
            l2 = None
            for ax in range(3):
                d = t[:, a, ax] - t[:, b, ax]
                d *= d
                l2 = d if l2 is None else np.add(l2, d, out=l2)
            longest2 = l2 if longest2 is None else np.maximum(longest2, l2, out=longest2)
        return longest2

    @cached_property
    def cumulative_area(self) -> np.ndarray:
        """(m,) running total of the faces' areas (area-proportional sampling at every level)."""
        return np.cumsum(self.area)

    @cached_property
    def normal(self) -> np.ndarray:
        a2 = 2.0 * self.area
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a2[:, None] > 0, self.cross / np.maximum(a2, 1e-300)[:, None], 0.0)

    @cached_property
    def centroid(self) -> np.ndarray:
        t = self.triangles
        return (t[:, 0] + t[:, 1] + t[:, 2]) / 3.0

    @cached_property
    def edges(self) -> EdgeTable:
        return edge_table(self.faces)

    @cached_property
    def bounds(self) -> np.ndarray:
        """(2, 3) lowest and highest vertex coordinates (column by column: a reduction over the long axis of
        an (n, 3) array is several times slower)."""
        v = self.vertices
        if len(v) == 0:
            return np.zeros((2, 3))
        return np.array([[v[:, k].min() for k in range(3)], [v[:, k].max() for k in range(3)]])

    @cached_property
    def diagonal(self) -> float:
        if len(self.vertices) == 0:
            return 0.0
        return float(np.linalg.norm(self.bounds[1] - self.bounds[0]))


def boundary_edges(et: EdgeTable) -> np.ndarray:
    """(k, 2) edges used by one face only (the rims of holes)."""
    return et.edges[et.counts == 1]


def non_manifold_edges(et: EdgeTable) -> np.ndarray:
    """(k, 2) edges used by three or more faces."""
    return et.edges[et.counts > 2]


def inconsistent_edges(et: EdgeTable) -> np.ndarray:
    """(k, 2) two-face edges whose two faces traverse them in the same direction (a flipped neighbour)."""
    a, b = et.pairs()
    same = np.flatnonzero(et.src[a] == et.src[b])
    return et.edges[np.flatnonzero(et.counts == 2)[same]]


def _next_half(h: np.ndarray) -> np.ndarray:
    """(k,) the next half-edge of each half-edge h (k,) around its face: 3 f + (k + 1) % 3."""
    return np.where(h % 3 == 2, h - 2, h + 1)


def twins(et: EdgeTable) -> np.ndarray | None:
    """(3m,) the other half-edge of each half-edge, or None unless every edge is a consistent two-face edge
    (then the corner rotation below is a permutation and needs no general graph)."""
    if "twins" in et.cache:
        return et.cache["twins"]
    tw = None
    if len(et.counts) and (et.counts == 2).all():
        a, b = et.pairs()
        if not (et.src[a] == et.src[b]).any():
            tw = np.empty(len(et.src), dtype=np.int64)
            tw[a] = b
            tw[b] = a
    et.cache["twins"] = tw
    return tw


def _components(n: int, nbr: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of a graph given as a fixed number of neighbours per node: nbr (n, d).

    The graphs here are symmetric (face neighbours across twin half-edges) or a permutation (the corner
    rotation, whose components are cycles), so strong components are the connected components; scipy finds
    them without building the transposed graph that weak components need. Float data and int32 indices are
    what scipy works on, so nothing is converted. Compiled (``_topology.components``): union-find over the same
    edges, labels in the order of each component's lowest node (scipy numbers them otherwise; no caller
    depends on the numbering).
    """
    d = nbr.shape[1] if nbr.ndim == 2 else 1
    if _topology is not None:
        labels = np.empty(n, dtype=np.int64)
        return _topology.components(np.ascontiguousarray(nbr, dtype=np.int64), d, labels), labels
    itype = np.int32 if n * d < 2**31 - 1 else np.int64
    g = csr_matrix((np.ones(n * d), nbr.reshape(-1).astype(itype), np.arange(0, n * d + 1, d, dtype=itype)),
                   shape=(n, n))
    return connected_components(g, directed=True, connection="strong")


def non_manifold_vertices(faces: np.ndarray, et: EdgeTable) -> np.ndarray:
    """(k,) vertex indices whose incident faces form more than one fan.

    Corner ``3 f + k`` is face f at vertex ``faces[f, k]`` (the start of half-edge ``3 f + k``). The corners of
    the two faces of every two-face edge are joined at both ends; every connected group of corners lies at one
    vertex, so a vertex's fan count is the number of groups there. On a closed, consistently wound mesh the
    joins form the rotation ``corner -> next(twin(corner))`` and its cycles are the fans.
    """
    m = len(faces)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    n = 3 * m
    tw = twins(et)
    if tw is not None:
        k, label = _components(n, _next_half(tw))
    else:
        a, b = et.pairs()
        rows, cols = [], []
        for x in (et.src[a], et.dst[a]):
            rows.append(np.where(et.src[a] == x, a, _next_half(a)))
            cols.append(np.where(et.src[b] == x, b, _next_half(b)))
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        g = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n)).tocsr()
        k, label = connected_components(g, directed=False)
    group_vertex = np.empty(k, dtype=np.int64)
    group_vertex[label] = np.asarray(faces, dtype=np.int64).reshape(-1)
    fans = np.bincount(group_vertex)
    return np.flatnonzero(fans > 1)


def degenerate_faces(geo: Geometry) -> np.ndarray:
    """(k,) indices of faces with a repeated vertex or a (relatively) zero area."""
    f = geo.faces
    if len(f) == 0:
        return np.zeros(0, dtype=np.int64)
    longest2 = geo.longest2
    area2 = 2.0 * geo.area
    repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    flat = area2 <= DEGENERATE_REL * longest2
    tiny = geo.area <= DEGENERATE_ABS_REL * geo.diagonal**2
    return np.flatnonzero(repeated | flat | tiny)


def duplicate_faces(faces: np.ndarray, et: EdgeTable | None = None) -> np.ndarray:
    """(k,) indices of faces whose vertex set already appeared in an earlier face (either winding).

    With every edge a consistent two-face edge, two faces on the same corners can only be a two-face sliver
    shell of their own, so only faces whose three edges all lead to one same other face are looked at.
    """
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) == 0:
        return np.zeros(0, dtype=np.int64)
    tw = twins(et) if et is not None else None
    if tw is not None:
        other = (tw // 3).reshape(-1, 3)
        cand = np.flatnonzero((other[:, 0] == other[:, 1]) & (other[:, 1] == other[:, 2]))
        if not len(cand):
            return np.zeros(0, dtype=np.int64)
        dup = cand[cand > other[cand, 0]]
        same = (np.sort(faces[dup], axis=1) == np.sort(faces[other[dup, 0]], axis=1)).all(axis=1)
        return dup[same]
    s = np.sort(faces, axis=1)
    n = int(s[:, 2].max()) + 1
    if n < 2**21:
        key = (s[:, 0] * n + s[:, 1]) * n + s[:, 2]
        order = np.argsort(key, kind="stable")
        sk = key[order]
        rep = np.zeros(len(sk), dtype=bool)
        rep[1:] = sk[1:] == sk[:-1]
        return np.sort(order[rep])
    _, first = np.unique(s, axis=0, return_index=True)
    dup = np.ones(len(faces), dtype=bool)
    dup[first] = False
    return np.flatnonzero(dup)


def shells(faces: np.ndarray, et: EdgeTable) -> tuple[int, np.ndarray]:
    """Faces joined across two-face edges: (count, (m,) shell label of each face).

    Labels are renumbered by descending face count (ties: lowest face index first), so shell 0 is the largest.
    """
    m = len(faces)
    if m == 0:
        return 0, np.zeros(0, dtype=np.int64)
    tw = twins(et)
    if tw is not None:
        k, label = _components(m, (tw // 3).reshape(m, 3))
    else:
        a, b = et.pairs()
        g = coo_matrix((np.ones(len(a), dtype=np.int8), (a // 3, b // 3)), shape=(m, m)).tocsr()
        k, label = connected_components(g, directed=False)
    if k == 1:
        return k, np.zeros(m, dtype=np.int64)
    cnt = np.bincount(label, minlength=k)
    first_face = np.full(k, m, dtype=np.int64)
    np.minimum.at(first_face, label, np.arange(m))
    rank = np.empty(k, dtype=np.int64)
    rank[np.lexsort((first_face, -cnt))] = np.arange(k)
    return k, rank[label]


def shell_summaries(geo: Geometry, labels: np.ndarray, k: int) -> list[dict]:
    """Per shell: triangles, signed volume (divergence theorem; negative = inside out), area,
    area-weighted centroid, and whether it is closed (every edge of its faces is a two-face edge)."""
    if k == 0:
        return []
    centre = 0.5 * (geo.bounds[0] + geo.bounds[1])
    t = geo.triangles
    # 6 * signed volume of the cone from the centre over each face; any corner of the face gives the same dot
    # with the face's cross product
    c0 = t[:, 0] - centre
    v6 = c0[:, 0] * geo.cross[:, 0] + c0[:, 1] * geo.cross[:, 1] + c0[:, 2] * geo.cross[:, 2]
    w = np.where(geo.area > 0, geo.area, 1e-300)
    if k == 1:  # one shell (the usual case): plain sums, the weighted centroid as three dot products
        tri = np.array([len(labels)])
        area = np.array([geo.area.sum()])
        vol = np.array([v6.sum() / 6.0])
        wsum = np.array([w.sum()])
        centroid = (w @ t.reshape(len(t), 9)).reshape(3, 3).sum(axis=0)[None, :] / 3.0
    else:
        tri = np.bincount(labels, minlength=k)
        area = np.bincount(labels, weights=geo.area, minlength=k)
        vol = np.bincount(labels, weights=v6, minlength=k) / 6.0
        wsum = np.bincount(labels, weights=w, minlength=k)
        cent = geo.centroid
        centroid = np.stack([np.bincount(labels, weights=w * cent[:, i], minlength=k) for i in range(3)], axis=1)
    centroid = centroid / wsum[:, None]
    et = geo.edges
    if (et.counts == 2).all():  # closed: no face has an open or shared edge (a check over the edges only)
        open_shell = np.zeros(k, dtype=bool)
    else:
        bad = np.flatnonzero(et.counts[et.edge_of_half] != 2) // 3
        open_shell = np.bincount(labels[bad], minlength=k) > 0
    return [
        {"index": i, "triangles": int(tri[i]), "volume_mm3": float(vol[i]), "area_mm2": float(area[i]),
         "centroid_mm": [float(x) for x in centroid[i]], "closed": bool(not open_shell[i])}
        for i in range(k)
    ]
