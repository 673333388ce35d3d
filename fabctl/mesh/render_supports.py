"""A numpy z-buffer rasteriser and the pictures of the orient and support stages (Pillow PNG).

``zbuffer`` rasterises triangles already projected to pixel coordinates: pixel ``(r, c)`` has its centre at
``(c + 0.5, r + 0.5)``; a larger depth is nearer the viewer. It is vectorised over (triangle, pixel) pairs in
chunks, with no Python loop over triangles or pixels. ``render_views`` draws orthographic, flat-shaded views
of coloured meshes; ``write_png`` saves them with a legend.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PAIRS_PER_CHUNK = 4_000_000
#: colours of the pictures, RGB
COLORS = {
    "part": (176, 176, 170),
    "channel": (214, 40, 140),
    "skin": (235, 120, 20),
    "region": (230, 200, 30),
    "support": (60, 110, 220),
    "pad": (40, 60, 120),
    "contact": (20, 200, 60),
}


def _pairs(tri2: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate (triangle, row, col) pairs from each triangle's pixel bounding box, clipped to ``shape``."""
    lo = np.floor(tri2.min(axis=1) - 0.5).astype(np.int64) + 1
    hi = np.floor(tri2.max(axis=1) - 0.5).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi[:, 0] = np.minimum(hi[:, 0], shape[1] - 1)
    hi[:, 1] = np.minimum(hi[:, 1], shape[0] - 1)
    w = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0)
    h = np.maximum(hi[:, 1] - lo[:, 1] + 1, 0)
    n = w * h
    ti = np.repeat(np.arange(len(tri2)), n)
    start = np.cumsum(n) - n
    k = np.arange(int(n.sum())) - np.repeat(start, n)
    wk = np.maximum(w[ti], 1)
    col = lo[ti, 0] + k % wk
    row = lo[ti, 1] + k // wk
    return ti, row, col


def _chunk_bounds(tri2: np.ndarray) -> list[tuple[int, int]]:
    ext = np.maximum(np.ceil(np.ptp(tri2, axis=1)) + 1, 1)
    cost = np.cumsum(ext[:, 0] * ext[:, 1])
    cuts = np.searchsorted(cost, np.arange(PAIRS_PER_CHUNK, cost[-1] + PAIRS_PER_CHUNK, PAIRS_PER_CHUNK))
    edges = np.unique(np.concatenate([[0], np.minimum(cuts + 1, len(tri2)), [len(tri2)]]))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def zbuffer(tri2: np.ndarray, depth: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise triangles; the nearest (largest depth) wins each pixel.

    tri2  : (m, 3, 2) float, corner x (column) and y (row) in pixel units
    depth : (m, 3) float, depth at each corner (larger = nearer)
    shape : (rows, cols)
    Returns ``depth_buf`` (rows, cols) float64 (-inf where empty) and ``face_buf`` (rows, cols) int64 (-1).
    """
    zb = np.full(shape[0] * shape[1], -np.inf)
    fb = np.full(shape[0] * shape[1], -1, dtype=np.int64)
    if len(tri2) == 0:
        return zb.reshape(shape), fb.reshape(shape)
    for a, b in _chunk_bounds(tri2):
        t, d = tri2[a:b], depth[a:b]
        ti, row, col = _pairs(t, shape)
        if len(ti) == 0:
            continue
        p = np.stack([col + 0.5, row + 0.5], axis=1)
        v0, v1, v2 = t[ti, 0], t[ti, 1], t[ti, 2]
        area = (v1[:, 0] - v0[:, 0]) * (v2[:, 1] - v0[:, 1]) - (v1[:, 1] - v0[:, 1]) * (v2[:, 0] - v0[:, 0])
        w0 = (v1[:, 0] - p[:, 0]) * (v2[:, 1] - p[:, 1]) - (v1[:, 1] - p[:, 1]) * (v2[:, 0] - p[:, 0])
        w1 = (v2[:, 0] - p[:, 0]) * (v0[:, 1] - p[:, 1]) - (v2[:, 1] - p[:, 1]) * (v0[:, 0] - p[:, 0])
        ok = np.abs(area) > 1e-12
        safe = np.where(ok, area, 1.0)
        b0, b1 = w0 / safe, w1 / safe
        b2 = 1.0 - b0 - b1
        inside = ok & (b0 >= -1e-9) & (b1 >= -1e-9) & (b2 >= -1e-9)
        z = b0 * d[ti, 0] + b1 * d[ti, 1] + b2 * d[ti, 2]
        pix = (row * shape[1] + col)[inside]
        z, f = z[inside], (ti + a)[inside]
        order = np.lexsort((z, pix))
        pix, z, f = pix[order], z[order], f[order]
        last = np.ones(len(pix), dtype=bool)
        last[:-1] = pix[1:] != pix[:-1]
        pix, z, f = pix[last], z[last], f[last]
        better = z > zb[pix]
        zb[pix[better]] = z[better]
        fb[pix[better]] = f[better]
    return zb.reshape(shape), fb.reshape(shape)


def view_rotation(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """(3, 3) rotation whose rows are the screen x, screen y (down) and depth (towards the viewer) axes."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    to_viewer = np.array([np.cos(el) * np.sin(az), -np.cos(el) * np.cos(az), np.sin(el)])
    right = np.array([np.cos(az), np.sin(az), 0.0])
    up = np.cross(to_viewer, right)
    return np.stack([right, -up, to_viewer])


def render_views(meshes: list[tuple[np.ndarray, np.ndarray, np.ndarray]], views: list[tuple[float, float]],
                 size: tuple[int, int] = (640, 560),
                 points: np.ndarray | None = None) -> np.ndarray:
    """Flat-shaded orthographic views side by side.

    meshes : list of (vertices (n, 3), faces (m, 3), colours (m, 3) uint8)
    views  : list of (azimuth, elevation) in degrees
    points : optional (k, 3) points drawn as dots in ``COLORS['contact']``
    Returns an (rows, cols * len(views), 3) uint8 image.
    """
    verts = [m[0] for m in meshes if len(m[1])]
    allv = np.concatenate(verts) if verts else np.zeros((1, 3))
    centre = (allv.min(axis=0) + allv.max(axis=0)) / 2.0
    radius = float(np.linalg.norm(allv - centre, axis=1).max()) or 1.0
    panels = [_render_one(meshes, v, size, centre, radius, points) for v in views]
    return np.concatenate(panels, axis=1)


def _render_one(meshes: list, view: tuple[float, float], size: tuple[int, int], centre: np.ndarray,
                radius: float, points: np.ndarray | None) -> np.ndarray:
    rot = view_rotation(*view)
    scale = 0.92 * min(size) / (2.0 * radius)
    tris, depths, cols, normals = [], [], [], []
    for v, f, c in meshes:
        if not len(f):
            continue
        p = (v - centre) @ rot.T
        t = p[f]
        tris.append(np.stack([t[..., 0] * scale + size[0] / 2, t[..., 1] * scale + size[1] / 2], axis=-1))
        depths.append(t[..., 2])
        n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
        normals.append(n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12))
        cols.append(np.asarray(c, dtype=np.float64))
    img = np.full((size[1], size[0], 3), 250, dtype=np.uint8)
    if not tris:
        return img
    tri2, depth = np.concatenate(tris), np.concatenate(depths)
    col, nrm = np.concatenate(cols), np.concatenate(normals)
    zb, fb = zbuffer(tri2, depth, (size[1], size[0]))
    light = np.array([-0.35, -0.45, 0.82])
    shade = 0.35 + 0.65 * np.abs(nrm @ (light / np.linalg.norm(light)))
    face_rgb = np.clip(col * shade[:, None], 0, 255).astype(np.uint8)
    hit = fb >= 0
    img[hit] = face_rgb[fb[hit]]
    if points is not None and len(points):
        p = (points - centre) @ rot.T
        xy = p[:, :2] * scale + np.array(size) / 2.0
        ij = np.clip(np.floor(xy).astype(np.int64), 0, [size[0] - 1, size[1] - 1])
        seen = p[:, 2] >= zb[ij[:, 1], ij[:, 0]] - 0.05 * radius  # only dots not hidden behind a surface
        _dots(img, xy[seen])
    return img


def _dots(img: np.ndarray, xy: np.ndarray, r: int = 2) -> None:
    off = np.stack(np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1)), axis=-1).reshape(-1, 2)
    off = off[(off ** 2).sum(axis=1) <= r * r]
    px = (np.floor(xy)[:, None, :] + off[None]).reshape(-1, 2).astype(np.int64)
    ok = (px[:, 0] >= 0) & (px[:, 0] < img.shape[1]) & (px[:, 1] >= 0) & (px[:, 1] < img.shape[0])
    img[px[ok, 1], px[ok, 0]] = COLORS["contact"]


def face_colors(reasons: np.ndarray) -> np.ndarray:
    """(m, 3) uint8 colours of a part's faces from protection reason bits (1 channel, 2 skin, 4 region)."""
    c = np.tile(np.array(COLORS["part"], dtype=np.uint8), (len(reasons), 1))
    c[(reasons & 4) > 0] = COLORS["region"]
    c[(reasons & 2) > 0] = COLORS["skin"]
    c[(reasons & 1) > 0] = COLORS["channel"]
    return c


def write_png(path: Path, image: np.ndarray, title: str, legend: list[tuple[str, str]]) -> Path:
    """Save ``image`` with a title line and a colour legend above it."""
    from PIL import Image, ImageDraw

    head = 22 + 16 * ((len(legend) + 3) // 4)
    canvas = Image.new("RGB", (image.shape[1], image.shape[0] + head), (255, 255, 255))
    canvas.paste(Image.fromarray(image), (0, head))
    draw = ImageDraw.Draw(canvas)
    draw.text((8, 4), title, fill=(0, 0, 0))
    for i, (name, key) in enumerate(legend):
        x, y = 8 + 200 * (i % 4), 22 + 16 * (i // 4)
        draw.rectangle([x, y + 2, x + 10, y + 12], fill=COLORS[key])
        draw.text((x + 16, y), name, fill=(0, 0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=False)
    log.debug("wrote %s", path)
    return path


def render_part_png(path: Path, part, supported=None, title: str = "") -> Path:
    """Two views of an oriented part (protected faces coloured by reason) with its supports and contact
    points when ``supported`` is given."""
    meshes = [(part.vertices, part.faces, face_colors(part.reasons))]
    points = None
    legend = [("part", "part"), ("channel bore (protected)", "channel"), ("skin contact (protected)", "skin"),
              ("plan region (protected)", "region")]
    if supported is not None and len(supported.support_faces):
        kinds = np.asarray(supported.body_kinds)[supported.support_body]
        c = np.where((kinds == "pad")[:, None], COLORS["pad"], COLORS["support"]).astype(np.uint8)
        meshes.append((supported.support_vertices, supported.support_faces, c))
        points = supported.contacts
        legend += [("supports", "support"), ("pad", "pad"), ("contact points", "contact")]
    img = render_views(meshes, [(35.0, 18.0), (215.0, 18.0)], points=points)
    return write_png(path, img, title, legend)
