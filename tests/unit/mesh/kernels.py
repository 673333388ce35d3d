"""For the tests of the compiled kernels (marker ``kernels``): they must be built, and ``make install`` builds
them. ``make test``'s numpy-path run (``FABCTL_MESH_KERNELS=0``) deselects these tests with ``-m 'not
kernels'``; run with that variable anyway, they fail, saying so."""

from __future__ import annotations

import os

import pytest


def need(module: object | None, name: str) -> None:
    if os.environ.get("FABCTL_MESH_KERNELS") == "0":
        pytest.fail("FABCTL_MESH_KERNELS=0 turns the kernels off: run these tests without it (or -m 'not kernels')")
    if module is None:
        pytest.fail(f"fabctl.mesh.{name} is not built: pip install -e . with a C compiler")
