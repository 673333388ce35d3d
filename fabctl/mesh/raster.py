"""Pixel-exact rasterisation of a ``SliceStack`` layer for masked-LCD / DLP screens.

Screen map (``ScreenMap``): the image is what the screen shows, seen from above, row 0 at the top.
``width_px = raster.resolution_x_px`` columns run along the platform's x axis and ``height_px =
raster.resolution_y_px`` rows along its y axis; pixel ``(row, col)`` covers platform
``x in [col, col + 1) * pixel_x_mm`` and ``y in [H - row - 1, H - row) * pixel_y_mm`` (image up = +y).
``mirror_x`` reverses the columns, ``mirror_y`` the rows. With ``mirror_x`` (the SL1S profile) the image is
a reflection of the platform seen from above, as PrusaSlicer's SL1S images are: the printed part is not
mirrored. ``orientation`` only states which side is long and is checked against the resolution.

Fill rules, both exact for the polygon as given (no tolerance, no dilation):

* binary (``aa=1``): a pixel is lit when its centre is inside (nonzero winding, or even-odd). Sample rows
  pass through pixel centres; an edge is crossed by a row when ``min(y) <= y_row < max(y)`` (half-open, so a
  vertex on a sample row is counted once) and a pixel centre exactly on an edge belongs to the span to its
  right.
* anti-aliased (``aa=S > 1``): each pixel row is sampled by ``S`` sub-rows; along each sub-row the covered
  length of every pixel is exact, so the grey level is the pixel's covered area to ``1 / S`` in y and exact
  in x: ``round(255 * coverage)``, linear (PrusaSlicer's ``gamma_correction = 1``).

Method: crossings of all edges with all sample rows are computed at once (``np.repeat`` over each edge's row
span); the image is run-length coded from the sorted crossings (cumulative winding or coverage between
consecutive crossings) and expanded with one ``np.repeat``: cost grows with the outline, not the area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fabctl.errors import CheckFailed, InputError
from fabctl.profiles import Raster
from fabctl.slicestack import SliceStack


@dataclass(frozen=True, slots=True)
class ScreenMap:
    """How platform millimetres land on the screen image (module docs)."""

    width_px: int
    height_px: int
    pixel_x_mm: float
    pixel_y_mm: float
    mirror_x: bool = False
    mirror_y: bool = False

    @classmethod
    def from_raster(cls, r: Raster) -> ScreenMap:
        long_rows = r.resolution_y_px * r.pixel_y_mm >= r.resolution_x_px * r.pixel_x_mm
        if (r.orientation == "portrait") != long_rows:
            raise InputError(f"raster: orientation {r.orientation!r} does not match the resolution "
                             f"{r.resolution_x_px} x {r.resolution_y_px}")
        return cls(r.resolution_x_px, r.resolution_y_px, r.pixel_x_mm, r.pixel_y_mm, r.mirror_x, r.mirror_y)

    @property
    def size_mm(self) -> tuple[float, float]:
        return self.width_px * self.pixel_x_mm, self.height_px * self.pixel_y_mm

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """(n, 2) platform mm -> (n, 2) continuous image coordinates ``(col, row)``; pixel centres at +0.5."""
        xy = np.asarray(xy, dtype=np.float64)
        col = xy[:, 0] / self.pixel_x_mm
        row = self.height_px - xy[:, 1] / self.pixel_y_mm
        if self.mirror_x:
            col = self.width_px - col
        if self.mirror_y:
            row = self.height_px - row
        return np.column_stack([col, row])

    def to_platform(self, colrow: np.ndarray) -> np.ndarray:
        """(n, 2) continuous image ``(col, row)`` -> (n, 2) platform mm (inverse of ``to_image``)."""
        c = np.asarray(colrow, dtype=np.float64)
        col, row = c[:, 0], c[:, 1]
        if self.mirror_x:
            col = self.width_px - col
        if self.mirror_y:
            row = self.height_px - row
        return np.column_stack([col * self.pixel_x_mm, (self.height_px - row) * self.pixel_y_mm])


def check_fits(stack: SliceStack, screen: ScreenMap) -> None:
    """``CheckFailed`` when any loop point leaves the screen."""
    if not len(stack.points_mm):
        return
    (x0, y0), (x1, y1) = stack.bounds_xy_mm
    w, h = screen.size_mm
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        raise CheckFailed(f"part spans x {x0:.2f}..{x1:.2f}, y {y0:.2f}..{y1:.2f} mm: outside the screen "
                          f"0..{w:g} x 0..{h:g} mm", hint="place the part inside the build area")


@dataclass(frozen=True, slots=True)
class Tile:
    """A rasterised layer: ``pixels`` (h, w) uint8 to be placed at ``(row0, col0)`` in a black image."""

    row0: int
    col0: int
    pixels: np.ndarray


def rasterize_edges(a: np.ndarray, b: np.ndarray, aa: int = 1, rule: str = "nonzero",
                    shape: tuple[int, int] | None = None) -> Tile:
    """Fill the region bounded by edges ``a -> b`` (each (e, 2) image ``(col, row)`` coordinates).

    aa : 1 for binary (pixel centres), ``S > 1`` for ``S`` sub-rows with exact horizontal coverage.
    rule : ``nonzero`` or ``evenodd``. shape : (rows, cols) of the whole image, to clip the tile to.
    Returns the smallest tile holding every lit pixel (an empty tile for no edges).
    """
    if rule not in ("nonzero", "evenodd"):
        raise InputError(f"fill rule {rule!r} is not nonzero or evenodd")
    if len(a) == 0:
        return Tile(0, 0, np.zeros((0, 0), dtype=np.uint8))
    lo = np.minimum(a, b).min(axis=0)
    hi = np.maximum(a, b).max(axis=0)
    r0, c0 = max(0, math.floor(lo[1])), max(0, math.floor(lo[0]) - 1)
    r1, c1 = math.ceil(hi[1]) + 1, math.ceil(hi[0]) + 2
    if shape is not None:
        r1, c1 = min(r1, shape[0]), min(c1, shape[1])
    if r1 <= r0 or c1 <= c0:
        return Tile(0, 0, np.zeros((0, 0), dtype=np.uint8))
    rows, cols = r1 - r0, c1 - c0
    x, t, w = _crossings(a - [c0, r0], b - [c0, r0], aa, rows)
    stride = cols + 1                                   # one spare column absorbs the right neighbour
    sub_row = t // aa
    if aa == 1:
        pos = sub_row * stride + np.clip(np.ceil(x - 0.5), 0, cols).astype(np.int64)
        val = w
    else:
        fl = np.clip(np.floor(x), 0, cols - 1)
        frac = np.clip(x - fl, 0.0, 1.0)
        base = sub_row * stride + fl.astype(np.int64)
        pos = np.concatenate([base, base + 1])
        val = np.concatenate([w * (1.0 - frac), w * frac]) / aa
    flat = _runs(pos, val, rows * stride, aa, rule)
    return Tile(r0, c0, flat.reshape(rows, stride)[:, :cols])


def _crossings(a: np.ndarray, b: np.ndarray, aa: int, rows: int):
    """Crossings of edges with sample rows ``y_t = (t + 1/2) / aa``: x (k,), row index t (k,), winding (k,).

    Along an edge the crossings form an arithmetic progression in x, so they are expanded with ``np.repeat``
    from each edge's first crossing and its step per sample row.
    """
    xa, ya, xb, yb = a[:, 0], a[:, 1] * aa - 0.5, b[:, 0], b[:, 1] * aa - 0.5
    up = yb > ya
    ymin, ymax = np.minimum(ya, yb), np.maximum(ya, yb)
    t0 = np.clip(np.ceil(ymin), 0, rows * aa)
    n = (np.clip(np.ceil(ymax), 0, rows * aa) - t0).astype(np.int64)
    live = n > 0
    xa, ya, xb, yb, t0, n, up = xa[live], ya[live], xb[live], yb[live], t0[live], n[live], up[live]
    step = (xb - xa) / (yb - ya)
    x_first = xa + (t0 - ya) * step
    total = int(n.sum())
    k = np.arange(total, dtype=np.float64) - np.repeat((np.cumsum(n) - n).astype(np.float64), n)
    x = np.repeat(x_first, n) + k * np.repeat(step, n)
    t = (np.repeat(t0, n) + k).astype(np.int64)
    w = np.repeat(np.where(up, 1.0, -1.0), n)
    return x, t, w


def _runs(pos: np.ndarray, val: np.ndarray, size: int, aa: int, rule: str) -> np.ndarray:
    """Expand sparse ``(position, increment)`` pairs into the (size,) uint8 image they describe."""
    order = np.argsort(pos, kind="stable")
    pos, val = pos[order], val[order]
    cum = np.cumsum(val)
    if aa == 1:
        w = np.rint(cum).astype(np.int64)
        lit = (w != 0) if rule == "nonzero" else (w % 2 == 1)
        level = lit.astype(np.uint8) * np.uint8(255)
    elif rule == "nonzero":
        level = np.rint(np.minimum(np.abs(cum), 1.0) * 255.0).astype(np.uint8)
    else:  # even-odd coverage: fold the accumulated winding into [0, 1]
        c = np.abs(cum) % 2.0
        level = np.rint(np.minimum(c, 2.0 - c) * 255.0).astype(np.uint8)
    bounds = np.concatenate([[0], pos, [size]])
    lengths = np.diff(bounds)
    values = np.concatenate([[0], level]).astype(np.uint8)
    return np.repeat(values, lengths)


def rasterize_layer(stack: SliceStack, i: int, screen: ScreenMap, aa: int = 1,
                    rule: str = "nonzero") -> Tile:
    """Layer ``i`` of ``stack`` on ``screen`` (see module docs)."""
    a, b = stack.layer_edges(i)
    return rasterize_edges(screen.to_image(a), screen.to_image(b), aa, rule,
                           (screen.height_px, screen.width_px))


def full_image(tile: Tile, shape: tuple[int, int]) -> np.ndarray:
    """(rows, cols) uint8 black image with ``tile`` pasted in."""
    out = np.zeros(shape, dtype=np.uint8)
    h, w = tile.pixels.shape
    out[tile.row0:tile.row0 + h, tile.col0:tile.col0 + w] = tile.pixels
    return out
