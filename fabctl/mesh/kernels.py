"""The compiled kernels of fabctl.mesh (``_topology``, ``_cellpairs``, ``_balls``: C, built by pip when a C
compiler is there, see pyproject.toml): each module imports the one it uses through ``load``, and runs its
numpy path when that gives None."""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load(name: str) -> ModuleType | None:
    """``fabctl.mesh.<name>``, or None when it was not built or ``FABCTL_MESH_KERNELS=0`` asks for the numpy
    paths (comparisons, diagnosis)."""
    if os.environ.get("FABCTL_MESH_KERNELS") == "0":
        return None
    try:
        return importlib.import_module(f"fabctl.mesh.{name}")
    except ImportError:  # not built (no C compiler at install): the numpy paths give the same results
        return None
