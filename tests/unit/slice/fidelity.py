"""Reconstruct a bore's axis and diameter from sliced layers (raster or contour polygons)."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def axis_angle_deg(points: np.ndarray, axis: np.ndarray) -> float:
    """Angle between the best-fit line through points (n, 3) and ``axis``."""
    c = points - points.mean(axis=0)
    d = np.linalg.svd(c, full_matrices=False)[2][0]
    return math.degrees(math.acos(min(1.0, abs(float(d @ axis) / np.linalg.norm(axis)))))


def minor_diameter(xy: np.ndarray, w: np.ndarray) -> float:
    """Minor axis of a uniform ellipse from weighted samples (n, 2): 4 sqrt(smallest variance)."""
    m = (xy * w[:, None]).sum(axis=0) / w.sum()
    c = xy - m
    cov = (c * w[:, None]).T @ c / w.sum()
    return 4.0 * math.sqrt(float(np.linalg.eigvalsh(cov)[0]))


def hole_from_image(img: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Pixels (k, 2) ``(col, row)`` centres and weights of the enclosed dark region of a layer image."""
    solid = img >= 128
    lab, n = ndimage.label(~solid)
    border = set(np.unique(np.r_[lab[0], lab[-1], lab[:, 0], lab[:, -1]]).tolist())
    inner = [k for k in range(1, n + 1) if k not in border]
    if len(inner) != 1:
        return None
    grown = ndimage.binary_dilation(lab == inner[0], iterations=2) & (img < 255)
    r, c = np.nonzero(grown)
    return np.column_stack([c + 0.5, r + 0.5]), 1.0 - img[r, c] / 255.0


def polygon_moments(p: np.ndarray) -> tuple[np.ndarray, float]:
    """Centroid (2,) and minor diameter of a closed polygon (k, 2) treated as a uniform lamina."""
    x, y = p[:, 0], p[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cr = x * yn - xn * y
    a = cr.sum() / 2.0
    cx = ((x + xn) * cr).sum() / (6 * a)
    cy = ((y + yn) * cr).sum() / (6 * a)
    ixx = ((y * y + y * yn + yn * yn) * cr).sum() / (12 * a) - cy * cy
    iyy = ((x * x + x * xn + xn * xn) * cr).sum() / (12 * a) - cx * cx
    ixy = ((x * yn + 2 * x * y + 2 * xn * yn + xn * y) * cr).sum() / (24 * a) - cx * cy
    lam = np.linalg.eigvalsh(np.array([[iyy, ixy], [ixy, ixx]]))[0]
    return np.array([cx, cy]), 4.0 * math.sqrt(lam)
