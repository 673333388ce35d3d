"""Watertight support bodies built in batches from templates: frustums, spheres, convex prisms; their union.

Every builder returns ``(vertices (n, 3), faces (m, 3), body (m,))`` for a batch of bodies, each body closed
and outward-facing, built by broadcasting one template over all instances (no loop over bodies).
``unite`` merges bodies (and optionally the part) with manifold3d when it is installed.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

Mesh = tuple[np.ndarray, np.ndarray, np.ndarray]


def _basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two (k, 3) unit vectors perpendicular to (k, 3) unit ``axis`` and to each other."""
    helper = np.where(np.abs(axis[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    return e1, np.cross(axis, e1)


def frustums(a: np.ndarray, b: np.ndarray, ra: np.ndarray, rb: np.ndarray, seg: int) -> Mesh:
    """Closed truncated cones from (k, 3) ``a`` (radius ``ra``) to ``b`` (radius ``rb``), ``seg`` sides."""
    k = len(a)
    if k == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
    d = b - a
    axis = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    e1, e2 = _basis(axis)
    th = 2.0 * np.pi * np.arange(seg) / seg
    ring = np.cos(th)[None, :, None] * e1[:, None] + np.sin(th)[None, :, None] * e2[:, None]  # (k, seg, 3)
    v = np.concatenate([a[:, None] + ring * np.asarray(ra)[:, None, None],
                        b[:, None] + ring * np.asarray(rb)[:, None, None], a[:, None], b[:, None]], axis=1)
    i = np.arange(seg)
    j = (i + 1) % seg
    top, ca, cb = seg + i, 2 * seg, 2 * seg + 1
    side1 = np.column_stack([i, j, seg + j])
    side2 = np.column_stack([i, seg + j, top])
    cap_a = np.column_stack([np.full(seg, ca), j, i])
    cap_b = np.column_stack([np.full(seg, cb), top, seg + j])
    tpl = np.concatenate([side1, side2, cap_a, cap_b])
    return _instances(v, tpl)


def spheres(c: np.ndarray, r: np.ndarray) -> Mesh:
    """Closed spheres (an 80-face icosphere) at (k, 3) centres with (k,) radii."""
    import trimesh

    ico = trimesh.creation.icosphere(subdivisions=1)
    v = c[:, None] + np.asarray(r)[:, None, None] * np.asarray(ico.vertices)[None]
    return _instances(v, np.asarray(ico.faces, dtype=np.int64))


def _instances(v: np.ndarray, tpl: np.ndarray) -> Mesh:
    """Stack (k, n, 3) instance vertices with one (m, 3) face template."""
    k, n = v.shape[:2]
    faces = (tpl[None] + (np.arange(k) * n)[:, None, None]).reshape(-1, 3)
    return v.reshape(-1, 3), faces, np.repeat(np.arange(k), len(tpl))


def prism(poly: np.ndarray, z0: float, z1: float) -> Mesh:
    """A closed vertical prism over a convex counter-clockwise (p, 2) polygon, from z0 to z1."""
    p = len(poly)
    c = poly.mean(axis=0)
    v = np.concatenate([np.column_stack([poly, np.full(p, z0)]), np.column_stack([poly, np.full(p, z1)]),
                        [[c[0], c[1], z0], [c[0], c[1], z1]]])
    i = np.arange(p)
    j = (i + 1) % p
    f = np.concatenate([np.column_stack([i, j, p + j]), np.column_stack([i, p + j, p + i]),
                        np.column_stack([np.full(p, 2 * p), j, i]),
                        np.column_stack([np.full(p, 2 * p + 1), p + i, p + j])])
    return v, f, np.zeros(len(f), dtype=np.int64)


def concat(parts: list[Mesh]) -> Mesh:
    """One mesh from several batches; body indices stay distinct."""
    vs, fs, bs = [], [], []
    nv = nb = 0
    for v, f, b in parts:
        if not len(f):
            continue
        vs.append(v)
        fs.append(f + nv)
        bs.append(b + nb)
        nv += len(v)
        nb += int(b.max()) + 1
    if not fs:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
    return np.concatenate(vs), np.concatenate(fs), np.concatenate(bs)


def unite(mesh: Mesh, part: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The union of every body of ``mesh`` (and ``part``), or None when manifold3d is not installed."""
    try:
        from manifold3d import Manifold, Mesh64, OpType
    except ImportError:
        log.info("manifold3d not installed: support bodies stay separate")
        return None
    v, f, b = mesh
    order = np.argsort(b, kind="stable")
    cuts = np.searchsorted(b[order], np.arange(int(b.max()) + 2)) if len(b) else np.zeros(1, np.int64)
    items = []
    for s, e in zip(cuts[:-1], cuts[1:], strict=True):
        ff = f[order[s:e]]
        used, inv = np.unique(ff, return_inverse=True)
        items.append(Manifold(Mesh64(vert_properties=np.ascontiguousarray(v[used], np.float64),
                                     tri_verts=inv.reshape(-1, 3).astype(np.uint64))))
    if part is not None:
        items.append(Manifold(Mesh64(vert_properties=np.array(part[0], np.float64, order="C"),
                                     tri_verts=np.array(part[1], np.uint64, order="C"))))
    out = Manifold.batch_boolean(items, OpType.Add).to_mesh64()
    return np.asarray(out.vert_properties)[:, :3].astype(np.float64), np.asarray(out.tri_verts).astype(np.int64)
