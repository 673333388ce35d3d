"""Pieces shared by the mesh readers: the parsed-mesh record, the exact vertex merge, fan triangulation.

Readers raise ``MeshError`` with a message that does not name the file; ``fabctl.mesh.io`` prefixes the
file's basename. No message or note may carry free text from the file (names, headers, comments).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np

from fabctl.errors import MeshError

#: the most triangles a design may have; a header or count claiming more is refused before allocating
DEFAULT_MAX_FACETS = 20_000_000


@dataclass
class ParsedMesh:
    """What a format reader hands back, before merging and unit conversion.

    vertices : (n, 3) float32 or float64 in file units
    faces    : (m, 3) int64 indices into ``vertices``; ``None`` means a triangle soup, where
               ``vertices`` holds the (3m, 3) corners of the m triangles in order (binary/ASCII STL)
    notes    : what the reader noticed (never text copied from the file)
    file_unit : the unit the file states, in ``fabctl.units`` names (3MF only), else ``None``
    """

    vertices: np.ndarray
    faces: np.ndarray | None
    notes: list[str] = field(default_factory=list)
    file_unit: str | None = None


def fail(message: str, hint: str | None = None) -> NoReturn:
    """Raise the ``MeshError`` a reader reports (one line, the file name is added by the caller)."""
    raise MeshError(message, hint=hint)


def plural(n: int, word: str, words: str | None = None) -> str:
    """``"1 facet"``, ``"3 facets"``."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def check_facet_cap(count: int, max_facets: int, what: str = "triangles") -> None:
    """Refuse ``count`` above ``max_facets`` before anything of that size is allocated."""
    if count > max_facets:
        fail(
            f"{what} count {count} exceeds the limit of {max_facets}",
            hint="raise max_facets if this design really is that large",
        )


def _row_columns(pts: np.ndarray) -> list[np.ndarray]:
    """(k, 3) float32/float64 rows -> 1-D uint64/uint32 columns whose equality is row equality."""
    if pts.dtype.itemsize == 4:
        b = pts.view(np.uint32)
        xy = b[:, 0].astype(np.uint64)
        xy <<= np.uint64(32)
        xy |= b[:, 1]
        return [xy, np.ascontiguousarray(b[:, 2])]
    b = pts.view(np.uint64)
    return [np.ascontiguousarray(b[:, i]) for i in range(3)]


def _hash(cols: list[np.ndarray]) -> np.ndarray:
    """1-D columns -> (k,) uint64 mixing hash (multiply-xorshift); collisions are resolved exactly."""
    h = cols[0] * np.uint64(0x9E3779B97F4A7C15)
    for c, m in zip(cols[1:], (0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9), strict=False):
        h ^= h >> np.uint64(29)
        h += c.astype(np.uint64, copy=False) * np.uint64(m)
    h ^= h >> np.uint64(32)
    h *= np.uint64(0xD6E8FEB86659FD93)
    h ^= h >> np.uint64(32)
    return h


def merge_exact(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge rows with exactly the same position (``-0.0`` equals ``0.0``).

    points : (k, 3) float32 or float64, all finite
    returns unique (n, 3) of the same dtype, in order of first occurrence, and inverse (k,) int64 with
    ``unique[inverse] == points``.

    One ``np.sort`` of 64-bit keys (high bits: a hash of the row's bit pattern, low bits: the row index)
    groups equal rows with their indices ascending. Rows that differ but share the hash bits are found by
    comparing neighbours and re-sorted exactly (lexsort) within their run, so the result never depends on
    the hash.
    """
    k = len(points)
    if k == 0:
        return points[:0].copy(), np.zeros(0, dtype=np.int64)
    pts = np.ascontiguousarray(points) + points.dtype.type(0)  # -0.0 + 0.0 == +0.0
    cols = _row_columns(pts)
    index_bits = max(1, (k - 1).bit_length())
    low = np.uint64((1 << index_bits) - 1)
    key = _hash(cols)
    key &= ~low
    key |= np.arange(k, dtype=np.uint64)
    key.sort()
    order = (key & low).astype(np.int64)
    run = key >> np.uint64(index_bits)  # hash bits, equal within a run
    del key
    same_hash = run[1:] == run[:-1]
    sorted_cols = [c[order] for c in cols]
    same_row = np.logical_and.reduce([c[1:] == c[:-1] for c in sorted_cols])
    clash = same_hash & ~same_row
    if clash.any():  # different rows share hash bits: sort those runs exactly
        run_id = np.cumsum(np.concatenate(([True], ~same_hash)))
        bad_runs = np.unique(run_id[1:][clash])
        pos = np.flatnonzero(np.isin(run_id, bad_runs))
        sub = order[pos]
        resort = np.lexsort([sub] + [c[sub] for c in reversed(cols)] + [run_id[pos]])
        order[pos] = sub[resort]
        sorted_cols = [c[order] for c in cols]
        same_row = np.logical_and.reduce([c[1:] == c[:-1] for c in sorted_cols])
    new_group = np.empty(k, dtype=bool)
    new_group[0] = True
    np.logical_not(same_row, out=new_group[1:])
    first = order[new_group]  # indices ascend within a group: the first is the smallest
    is_first = np.zeros(k, dtype=bool)
    is_first[first] = True
    rank_of_index = np.cumsum(is_first) - 1
    inverse = np.empty(k, dtype=np.int64)
    inverse[order] = rank_of_index[first][np.cumsum(new_group) - 1]
    return pts[is_first], inverse


def fan_triangulate(counts: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Fan-triangulate polygons given as a flat index list.

    counts : (p,) int, corners per polygon, every one >= 3
    flat   : (counts.sum(),) int64 vertex indices, polygon after polygon
    returns (counts.sum() - 2p, 3) int64: polygon i with corners c0..ck becomes (c0, cj, cj+1), j = 1..k-1,
    so a triangle keeps its winding and polygons keep their order.
    """
    counts = np.asarray(counts, dtype=np.int64)
    per = counts - 2
    total = int(per.sum())
    if total == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if np.all(counts == 3):
        return flat.reshape(-1, 3).astype(np.int64, copy=False)
    starts = np.cumsum(counts) - counts
    poly = np.repeat(np.arange(len(counts)), per)
    j = np.arange(total) - np.repeat(np.cumsum(per) - per, per) + 1
    s = starts[poly]
    return np.column_stack((flat[s], flat[s + j], flat[s + j + 1])).astype(np.int64, copy=False)
