"""Preview images: a contact sheet of selected layers with the planned channel marked, and SL1 thumbnails.

Both take plain arrays (layer masks already rasterised by the caller), so this module needs no geometry.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (24, 26, 30)
SOLID = (205, 210, 218)
CHANNEL = (235, 64, 52)
TEXT = (240, 240, 240)


def pick_layers(n_layers: int, count: int = 12) -> list[int]:
    """``count`` layer indices spread evenly from the first to the last layer."""
    if n_layers <= count:
        return list(range(n_layers))
    return sorted({int(round(x)) for x in np.linspace(0, n_layers - 1, count)})


def contact_sheet(masks: list[np.ndarray], titles: list[str], marks: list[tuple[float, float] | None],
                  mark_radius_px: float, columns: int = 4, cell_px: int = 300) -> np.ndarray:
    """(H, W, 3) uint8 sheet: one cell per layer mask (all (h, w) uint8, same size, same crop).

    marks : per cell the channel axis's crossing with the layer plane in mask pixel coordinates ``(col,
    row)``, or None; drawn as a red ring of ``mark_radius_px`` (the channel's radius) and a cross.
    """
    n = len(masks)
    rows = max(1, math.ceil(n / columns))
    h, w = masks[0].shape if n else (1, 1)
    scale = cell_px / max(h, w)
    sheet = Image.new("RGB", (columns * cell_px, rows * (cell_px + 22)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for k, (m, title, mark) in enumerate(zip(masks, titles, marks, strict=True)):
        cx, cy = (k % columns) * cell_px, (k // columns) * (cell_px + 22)
        cell = _tint(m)
        img = Image.fromarray(cell).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                           Image.Resampling.BILINEAR)
        ox, oy = cx + (cell_px - img.width) // 2, cy + 20 + (cell_px - img.height) // 2
        sheet.paste(img, (ox, oy))
        draw.rectangle([cx, cy + 20, cx + cell_px - 1, cy + 20 + cell_px - 1], outline=(70, 74, 82))
        draw.text((cx + 6, cy + 4), title, fill=TEXT, font=font)
        if mark is not None:
            px, py = ox + mark[0] * scale, oy + mark[1] * scale
            r = max(3.0, mark_radius_px * scale)
            draw.ellipse([px - r, py - r, px + r, py + r], outline=CHANNEL, width=2)
            draw.line([px - r - 4, py, px + r + 4, py], fill=CHANNEL, width=1)
            draw.line([px, py - r - 4, px, py + r + 4], fill=CHANNEL, width=1)
    return np.asarray(sheet)


def _tint(mask: np.ndarray) -> np.ndarray:
    f = (mask.astype(np.float32) / 255.0)[..., None]
    return (np.array(BACKGROUND) * (1 - f) + np.array(SOLID) * f).astype(np.uint8)


def height_thumbnail(height: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 4) uint8 RGBA thumbnail of a top-down height map (``-1`` = empty), hill-shaded.

    height : (r, c) float, the top layer index seen at each cell; size : (w, h) of the thumbnail.
    """
    empty = height < 0
    z = np.where(empty, 0.0, height)
    gy, gx = np.gradient(z)
    shade = np.clip(0.6 + 0.08 * (-gx + gy), 0.25, 1.0)
    rel = z / max(float(z.max()), 1.0)
    base = np.stack([90 + 120 * rel, 150 + 70 * rel, 220 - 40 * rel], axis=-1) * shade[..., None]
    rgba = np.dstack([np.clip(base, 0, 255), np.where(empty, 0, 255)]).astype(np.uint8)
    img = Image.fromarray(rgba, "RGBA")
    k = 0.92 * min(size[0] / img.width, size[1] / img.height)
    img = img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    canvas.paste(img, ((size[0] - img.width) // 2, (size[1] - img.height) // 2))
    return np.asarray(canvas)
