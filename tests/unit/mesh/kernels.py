"""For the tests of the compiled kernels: they must be built (``make install`` builds them); only an explicit
``FABCTL_MESH_KERNELS=0`` (the numpy-path run of ``make test``) skips these tests."""

from __future__ import annotations

import os

import pytest


def need(module: object | None, name: str) -> None:
    if os.environ.get("FABCTL_MESH_KERNELS") == "0":
        pytest.skip("FABCTL_MESH_KERNELS=0: the numpy paths were asked for")
    if module is None:
        pytest.fail(f"fabctl.mesh.{name} is not built: pip install -e . with a C compiler")
