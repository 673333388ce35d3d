"""Geometry artifacts shared by the mesh stages: frozen dataclasses over read-only numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def frozen_array(a: np.ndarray, dtype: type) -> np.ndarray:
    """A C-contiguous copy of ``a`` as ``dtype`` with its write flag cleared."""
    out = np.ascontiguousarray(a, dtype=dtype).copy()
    out.setflags(write=False)
    return out


@dataclass(frozen=True, slots=True)
class MeshInput:
    """A design mesh as intake read it: millimetres, read-only, hashed.

    vertices : (n, 3) float64, mm, unique positions (duplicates merged exactly)
    faces    : (m, 3) int64, indices into ``vertices``, in the file's order and winding
    source_sha256 : sha256 of the source file's bytes as received
    source_format : ``stl-binary``, ``stl-ascii``, ``3mf``, ``obj``, ``ply`` or ``off``
    units : the unit the file's numbers were in (``mm``, ``cm``, ``m``, ``in``, ...)
    units_source : ``declared`` (the user said so) or ``file`` (the format states it, as 3MF does)
    notes : what intake noticed and the user should know (e.g. "3MF support object dropped"), never free
        text copied from the file
    """

    vertices: np.ndarray
    faces: np.ndarray
    source_sha256: str
    source_format: str
    units: str
    units_source: str
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "vertices", frozen_array(self.vertices, np.float64))
        object.__setattr__(self, "faces", frozen_array(self.faces, np.int64))

    @property
    def triangles(self) -> np.ndarray:
        """(m, 3, 3) float64 corner coordinates in mm."""
        return self.vertices[self.faces]

    @property
    def bounds_mm(self) -> np.ndarray:
        """(2, 3) float64: min and max corner of the axis-aligned bounding box."""
        return np.array([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    @property
    def extents_mm(self) -> np.ndarray:
        """(3,) float64 bounding-box size in mm."""
        b = self.bounds_mm
        return b[1] - b[0]

    def to_trimesh(self):
        """A ``trimesh.Trimesh`` view of the mesh, with no processing (nothing merged or repaired)."""
        import trimesh

        return trimesh.Trimesh(vertices=self.vertices, faces=self.faces, process=False, validate=False)
