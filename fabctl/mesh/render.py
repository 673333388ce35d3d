"""Pictures of a validated guide: a PNG coloured by wall thickness (three views, a colour bar in mm, thin
patches and the narrowest channel point marked) and a vertex-coloured PLY for any mesh viewer.

The PNG comes from a small orthographic z-buffer rasteriser in numpy (no matplotlib): every triangle's pixel
box is enumerated in one vectorised batch, pixels inside the triangle keep the nearest depth, and faces are
flat-shaded (Lambert plus ambient) in their thickness colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PANEL = 560
MARGIN = 24
BAR_W = 150
TITLE_H = 64
BG = (250, 250, 250)
UNMEASURED = (170, 170, 175)

# under the limit: reds only (dark = thinner); at the limit the scale jumps to orange, then yellow, green,
# blue for comfortably thick walls
_STOPS = np.array([0.0, 0.999, 1.0, 1.5, 2.5, 4.0])
_COLORS = np.array([
    [110, 0, 20], [235, 30, 30], [253, 150, 70], [235, 225, 110], [102, 189, 99], [49, 104, 189],
], dtype=np.float64)


def colormap(t: np.ndarray, limit: float) -> np.ndarray:
    """(k,) thickness mm -> (k, 3) uint8 RGB; the colour scale is in multiples of ``limit``; NaN is grey."""
    x = np.asarray(t, dtype=np.float64) / max(limit, 1e-9)
    out = np.empty((len(x), 3))
    for c in range(3):
        out[:, c] = np.interp(x, _STOPS, _COLORS[:, c])
    out[np.isnan(x)] = UNMEASURED
    return np.clip(out, 0, 255).astype(np.uint8)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def view_rotations(vertices: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Three (name, (3, 3) rotation) views from the part's principal axes: rows are screen x, screen y, depth.

    The first looks at the part's broad face from the side away from the thin axis' mean bulge (the top of a
    plate, where a boss stands), the second from the opposite side, the third from an oblique angle.
    """
    c = vertices - vertices.mean(axis=0)
    _, vecs = np.linalg.eigh(c.T @ c)
    e1, e2, n = vecs[:, 2], vecs[:, 1], vecs[:, 0]
    # look from the side the part bulges towards (the boss side of a plate)
    if float(((c @ n) ** 3).sum()) < 0:
        n = -n
    e2 = np.cross(n, e1)
    top = np.array([e1, e2, -n])
    bottom = np.array([e1, -e2, n])
    a, b = np.radians(40), np.radians(30)
    ra = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rb = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    oblique = rb @ ra @ top
    return [("top", top), ("underside", bottom), ("oblique", oblique)]


def rasterize(tri2: np.ndarray, depth: np.ndarray, w: int, h: int) -> np.ndarray:
    """Visible face per pixel: tri2 (m, 3, 2) pixel coordinates, depth (m, 3) (smaller is nearer).

    Returns (h, w) int64 face index, -1 for background.
    """
    lo = np.floor(tri2.min(axis=1)).astype(np.int64)
    hi = np.ceil(tri2.max(axis=1)).astype(np.int64)
    lo = np.clip(lo, 0, [w - 1, h - 1])
    hi = np.clip(hi, 0, [w - 1, h - 1])
    span = hi - lo + 1
    n = span[:, 0] * span[:, 1]
    out = np.full(h * w, -1, dtype=np.int64)
    best = np.full(h * w, np.inf)
    step = 4_000_000
    starts = np.concatenate([[0], np.cumsum(n)])
    f0 = 0
    while f0 < len(n):
        f1 = int(np.searchsorted(starts, starts[f0] + step, side="right")) - 1
        f1 = max(f1, f0 + 1)
        cnt = n[f0:f1]
        face = np.repeat(np.arange(f0, f1), cnt)
        k = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        sx = span[face, 0]
        px = lo[face, 0] + k % sx
        py = lo[face, 1] + k // sx
        a, b, c = tri2[face, 0], tri2[face, 1], tri2[face, 2]
        cx, cy = px + 0.5, py + 0.5
        den = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
        ok = np.abs(den) > 1e-12
        den = np.where(ok, den, 1.0)
        l1 = ((b[:, 1] - c[:, 1]) * (cx - c[:, 0]) + (c[:, 0] - b[:, 0]) * (cy - c[:, 1])) / den
        l2 = ((c[:, 1] - a[:, 1]) * (cx - c[:, 0]) + (a[:, 0] - c[:, 0]) * (cy - c[:, 1])) / den
        l3 = 1.0 - l1 - l2
        inside = ok & (l1 >= -1e-9) & (l2 >= -1e-9) & (l3 >= -1e-9)
        z = l1 * depth[face, 0] + l2 * depth[face, 1] + l3 * depth[face, 2]
        pix = (py * w + px)[inside]
        z, face = z[inside], face[inside]
        order = np.lexsort((z, pix))
        pix, z, face = pix[order], z[order], face[order]
        first = np.ones(len(pix), dtype=bool)
        first[1:] = pix[1:] != pix[:-1]
        pix, z, face = pix[first], z[first], face[first]
        nearer = z < best[pix]
        best[pix[nearer]] = z[nearer]
        out[pix[nearer]] = face[nearer]
        f0 = f1
    return out.reshape(h, w)


def _panel(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, colors: np.ndarray, rot: np.ndarray,
           scale: float, centre: np.ndarray, markers: list[tuple[np.ndarray, str, tuple]]) -> Image.Image:
    v = (vertices - centre) @ rot.T
    px = np.column_stack([PANEL / 2 + v[:, 0] * scale, PANEL / 2 - v[:, 1] * scale])
    fidx = rasterize(px[faces], v[faces][:, :, 2], PANEL, PANEL)
    light = np.array([-0.35, 0.45, -0.82])
    light /= np.linalg.norm(light)
    nv = normals @ rot.T
    lam = np.abs(nv @ light)  # two-sided, so inside-out parts still read
    shade = 0.35 + 0.65 * lam
    rgb = np.clip(colors * shade[:, None], 0, 255).astype(np.uint8)
    img = np.empty((PANEL, PANEL, 3), dtype=np.uint8)
    img[:] = BG
    hit = fidx >= 0
    img[hit] = rgb[fidx[hit]]
    # silhouette and crease outline: where the face index changes and one side is background
    edge = np.zeros_like(hit)
    edge[:-1] |= hit[:-1] != hit[1:]
    edge[:, :-1] |= hit[:, :-1] != hit[:, 1:]
    img[edge] = (60, 60, 60)
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    font = _font(13)
    for p, label, col in markers:
        q = (p - centre) @ rot.T
        x, y = PANEL / 2 + q[0] * scale, PANEL / 2 - q[1] * scale
        r = 11
        d.ellipse([x - r, y - r, x + r, y + r], outline=col, width=3)
        d.line([x - r - 5, y, x - r + 3, y], fill=col, width=2)
        d.line([x + r - 3, y, x + r + 5, y], fill=col, width=2)
        if label:  # right of the marker, or left of it when it would run off the panel
            w = d.textlength(label, font=font)
            lx = x + r + 6 if x + r + 6 + w <= PANEL - 4 else x - r - 6 - w
            d.text((lx, y - 8), label, fill=col, font=font, stroke_width=2, stroke_fill=(255, 255, 255))
    return im


def _colorbar(limit: float, cap: float, height: int) -> Image.Image:
    im = Image.new("RGB", (BAR_W, height), BG)
    d = ImageDraw.Draw(im)
    font = _font(13)
    top, bottom = 40, height - 30
    tmax = min(cap, 4.0 * limit)
    ys = np.arange(top, bottom)
    t = tmax * (bottom - ys) / (bottom - top)
    cols = colormap(t, limit)
    for y, c in zip(ys, cols, strict=True):
        d.line([(14, int(y)), (44, int(y))], fill=tuple(int(x) for x in c))
    d.rectangle([14, top, 44, bottom], outline=(60, 60, 60))
    d.text((8, 8), "wall mm", fill=(20, 20, 20), font=_font(15))
    ticks = sorted({0.0, limit / 2, limit, 1.5 * limit, 2 * limit, 3 * limit, tmax})
    for tk in ticks:
        y = bottom - (tk / tmax) * (bottom - top)
        d.line([(44, y), (52, y)], fill=(40, 40, 40), width=2 if tk == limit else 1)
        label = f"{tk:.2f}" + ("  limit" if tk == limit else "") + ("+" if tk == tmax else "")
        d.text((56, y - 7), label, fill=(200, 0, 0) if tk == limit else (30, 30, 30), font=font)
    return im


def render_png(path: Path, vertices: np.ndarray, faces: np.ndarray, face_thickness: np.ndarray, limit: float,
               cap: float, title: str, thin_points: list[tuple[np.ndarray, float]],
               narrowest: tuple[np.ndarray, float] | None,
               thinnest: tuple[np.ndarray, float] | None = None) -> None:
    """Write the three-view PNG. face_thickness (m,) mm (NaN: not measured); thin_points: (point, mm) of the
    thin patches to mark; narrowest: (point, diameter mm) of the channel's narrowest point."""
    V = np.asarray(vertices, dtype=np.float64)
    F = np.asarray(faces, dtype=np.int64)
    t = V[F]
    cr = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    nrm = cr / np.maximum(np.linalg.norm(cr, axis=1), 1e-300)[:, None]
    colors = colormap(face_thickness, limit).astype(np.float64)
    centre = 0.5 * (V.min(axis=0) + V.max(axis=0))
    radius = float(np.linalg.norm(V - centre, axis=1).max()) or 1.0
    scale = (PANEL / 2 - MARGIN) / radius
    markers = [(p, f"{mm:.2f} mm", (200, 0, 0)) for p, mm in thin_points[:8]]
    if thinnest is not None and not thin_points:
        markers.append((thinnest[0], f"thinnest {thinnest[1]:.2f} mm", (20, 20, 20)))
    if narrowest is not None:
        markers.append((narrowest[0], f"bore {narrowest[1]:.2f} mm", (90, 0, 160)))
    views = view_rotations(V)
    width = 3 * PANEL + BAR_W
    out = Image.new("RGB", (width, TITLE_H + PANEL), BG)
    d = ImageDraw.Draw(out)
    d.text((MARGIN, 10), title, fill=(10, 10, 10), font=_font(18))
    for i, (name, rot) in enumerate(views):
        panel = _panel(V, F, nrm, colors, rot, scale, centre, markers)
        out.paste(panel, (i * PANEL, TITLE_H))
        d.text((i * PANEL + MARGIN, TITLE_H + 4), name, fill=(60, 60, 60), font=_font(15))
    out.paste(_colorbar(limit, cap, PANEL), (3 * PANEL, TITLE_H))
    out.save(path, optimize=True)


def export_ply(path: Path, vertices: np.ndarray, faces: np.ndarray, vertex_thickness: np.ndarray,
               limit: float) -> None:
    """Binary PLY with per-vertex RGBA coloured by thickness (same colour scale as the PNG)."""
    import trimesh

    rgb = colormap(vertex_thickness, limit)
    rgba = np.column_stack([rgb, np.full(len(rgb), 255, dtype=np.uint8)])
    m = trimesh.Trimesh(vertices=np.asarray(vertices), faces=np.asarray(faces), vertex_colors=rgba,
                        process=False, validate=False)
    Path(path).write_bytes(m.export(file_type="ply"))


def render_validation(out_dir: Path, report, details, stem: str = "validation") -> list[Path]:
    """The PNG and PLY of a ``ValidationReport`` and its ``Details`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    geo = details.geometry
    th = details.thickness
    limit = report.settings.min_wall_mm
    cap = report.settings.thickness_cap_mm
    if th is not None and len(th.value):
        face_t = th.at_points(geo.centroid)
        vert_t = th.at_points(geo.vertices)
    else:
        face_t = np.full(len(geo.faces), np.nan)
        vert_t = np.full(len(geo.vertices), np.nan)
    thin = [(np.array(p.thinnest_at_mm), p.min_thickness_mm) for p in report.thin_patches]
    narrow = None
    ch = report.channel
    if ch is not None and ch.narrowest_at_mm is not None:
        narrow = (np.array(ch.narrowest_at_mm), ch.measured_min_diameter_mm)
    status = "PASS" if report.ok else "FAIL: " + ", ".join(c.name for c in report.failed)
    mw = "not measured" if report.min_wall_thickness_mm is None else f"{report.min_wall_thickness_mm:.2f} mm"
    title = (f"{status}   |   thinnest wall {mw} (limit {limit:g} mm, {report.settings.resin})   |   "
             f"{report.mesh.triangles} triangles")
    png = out_dir / f"{stem}.png"
    ply = out_dir / f"{stem}-thickness.ply"
    least = None
    if th is not None and len(th.value):
        least = (th.samples.points[th.argmin], th.minimum)
    render_png(png, geo.vertices, geo.faces, face_t, limit, cap, title, thin, narrow, least)
    export_ply(ply, geo.vertices, geo.faces, vert_t, limit)
    return [png, ply]
