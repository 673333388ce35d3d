"""The slice stage's artifact: closed polygon loops per layer, in the printer's platform frame.

``SliceStack`` sits below ``fabctl.mesh`` and ``fabctl.formats`` so that the slicer (mesh) produces it and the
job-file writers (formats) consume it without importing each other. It imports only numpy and errors.

Frames and conventions
----------------------
* Platform frame: millimetres; ``x``/``y`` across the printer's build area with the origin at the area's
  corner (``0 <= x <= build_volume.x_mm``); ``z`` up from the platform (``z = 0`` is the platform surface,
  layer 0 is the first one cured on it).
* ``placement_mm`` is the translation that took the mesh's own frame to the platform frame (no rotation:
  orientation belongs to the orient stage); ``mesh point + placement_mm = platform point``.
* Layer ``i`` spans ``[top(i-1), top(i)]`` with ``top(0) = first_layer_height_mm`` and
  ``top(i) = first_layer_height_mm + i * layer_height_mm``; its cross-section is taken at ``z_mm[i]``, the
  layer's mid-height (as PrusaSlicer does).
* Loops are closed implicitly (the last point joins the first). Solid lies to the left of travel: outer
  boundaries run counter-clockwise (positive signed area), holes clockwise (negative), so the nonzero and
  even-odd fill rules give the same region for a well-formed slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fabctl.errors import InputError


def _ro(a: np.ndarray, dtype: type) -> np.ndarray:
    out = np.ascontiguousarray(a, dtype=dtype).copy()
    out.setflags(write=False)
    return out


@dataclass(frozen=True, slots=True)
class SliceStack:
    """Cross-sections of a part, one set of closed loops per layer.

    z_mm : (n,) float64, plane height of each layer's cross-section (layer mid-height), platform frame
    points_mm : (p, 2) float64, every loop's vertices, loop after loop, layer after layer
    loop_offsets : (l + 1,) int64, loop ``k`` is ``points_mm[loop_offsets[k]:loop_offsets[k + 1]]``
    layer_offsets : (n + 1,) int64, layer ``i`` owns loops ``layer_offsets[i]:layer_offsets[i + 1]``
    loop_parent : (l,) int64, for a hole the index of the outer loop around it, ``-1`` for an outer loop
    placement_mm : (3,) float64, mesh frame + placement = platform frame
    source_sha256 : hash of the mesh that was sliced (the artifact is keyed by its input)
    open_chains : number of intersection chains that did not close (an open or non-manifold mesh); 0 for a
        watertight part
    """

    z_mm: np.ndarray
    layer_height_mm: float
    first_layer_height_mm: float
    points_mm: np.ndarray
    loop_offsets: np.ndarray
    layer_offsets: np.ndarray
    loop_parent: np.ndarray
    placement_mm: np.ndarray
    source_sha256: str = ""
    open_chains: int = 0

    def __post_init__(self) -> None:
        for name, dtype in (("z_mm", np.float64), ("points_mm", np.float64), ("loop_offsets", np.int64),
                            ("layer_offsets", np.int64), ("loop_parent", np.int64),
                            ("placement_mm", np.float64)):
            object.__setattr__(self, name, _ro(getattr(self, name), dtype))
        n, lo = len(self.z_mm), self.loop_offsets
        if self.points_mm.ndim != 2 or self.points_mm.shape[1] != 2:
            raise InputError(f"SliceStack: points_mm must be (p, 2), got {self.points_mm.shape}")
        if len(self.layer_offsets) != n + 1 or self.layer_offsets[-1] != len(lo) - 1:
            raise InputError("SliceStack: layer_offsets do not match z_mm and loop_offsets")
        if lo[0] != 0 or lo[-1] != len(self.points_mm) or np.any(np.diff(lo) < 3):
            raise InputError("SliceStack: loop_offsets must start at 0, end at len(points), loops >= 3 points")
        if len(self.loop_parent) != len(lo) - 1:
            raise InputError("SliceStack: loop_parent must have one entry per loop")
        if not (self.layer_height_mm > 0 and self.first_layer_height_mm > 0):
            raise InputError("SliceStack: layer heights must be positive")

    # ------------------------------------------------------------------------------------------ sizes
    @property
    def n_layers(self) -> int:
        return len(self.z_mm)

    @property
    def n_loops(self) -> int:
        return len(self.loop_offsets) - 1

    @property
    def layer_tops_mm(self) -> np.ndarray:
        """(n,) float64 top of each layer (the Z the platform sits at when it is cured)."""
        i = np.arange(self.n_layers, dtype=np.float64)
        return self.first_layer_height_mm + i * self.layer_height_mm

    @property
    def layer_thickness_mm(self) -> np.ndarray:
        """(n,) float64 thickness of each layer."""
        t = np.full(self.n_layers, self.layer_height_mm)
        if self.n_layers:
            t[0] = self.first_layer_height_mm
        return t

    @property
    def loop_layer(self) -> np.ndarray:
        """(l,) int64 layer index of each loop."""
        return np.repeat(np.arange(self.n_layers), np.diff(self.layer_offsets))

    @property
    def point_loop(self) -> np.ndarray:
        """(p,) int64 loop index of each point."""
        return np.repeat(np.arange(self.n_loops), np.diff(self.loop_offsets))

    # ----------------------------------------------------------------------------------------- geometry
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Every loop edge: ``(a, b)``, each (e, 2) float64, edge ``k`` runs from ``a[k]`` to ``b[k]``.

        Edges are in point order, so edge ``k`` belongs to ``point_loop[k]``.
        """
        p = self.points_mm
        nxt = np.arange(1, len(p) + 1)
        nxt[self.loop_offsets[1:] - 1] = self.loop_offsets[:-1]
        return p, p[nxt]

    @property
    def loop_area_mm2(self) -> np.ndarray:
        """(l,) float64 signed area of each loop (shoelace): positive for outers, negative for holes."""
        a, b = self.edges()
        cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
        return 0.5 * np.bincount(self.point_loop, weights=cross, minlength=self.n_loops)

    @property
    def layer_area_mm2(self) -> np.ndarray:
        """(n,) float64 solid area of each layer's cross-section."""
        return np.bincount(self.loop_layer, weights=self.loop_area_mm2, minlength=self.n_layers)

    @property
    def volume_mm3(self) -> float:
        """Solid volume as printed: each layer's area times its thickness."""
        return float(np.dot(self.layer_area_mm2, self.layer_thickness_mm))

    def layer_loops(self, i: int) -> list[np.ndarray]:
        """The loops of layer ``i`` as a list of (k, 2) float64 read-only arrays."""
        lo = self.loop_offsets
        return [self.points_mm[lo[k]:lo[k + 1]] for k in range(self.layer_offsets[i], self.layer_offsets[i + 1])]

    def layer_points(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Layer ``i``'s points (q, 2) and its loop offsets (m + 1,), rebased to start at 0."""
        lo = self.loop_offsets[self.layer_offsets[i]:self.layer_offsets[i + 1] + 1]
        return self.points_mm[lo[0]:lo[-1]], lo - lo[0]

    def layer_edges(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Layer ``i``'s edges ``(a, b)``, each (e, 2) float64."""
        p, lo = self.layer_points(i)
        nxt = np.arange(1, len(p) + 1)
        if len(lo) > 1:
            nxt[lo[1:] - 1] = lo[:-1]
        return p, p[nxt]

    @property
    def bounds_xy_mm(self) -> np.ndarray:
        """(2, 2) float64 min and max corner of all loops in x/y (zeros when there are none)."""
        if not len(self.points_mm):
            return np.zeros((2, 2))
        return np.array([self.points_mm.min(axis=0), self.points_mm.max(axis=0)])
