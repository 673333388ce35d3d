"""Fixtures of the orient/support tests: synthetic guides (manifold3d) and the default process profile."""

from __future__ import annotations

import pytest

from fabctl.process import ProcessProfile, load_process
from tests.unit.orient.orient_guides import Guide, make_guide  # builds with manifold3d, a runtime dependency


@pytest.fixture(scope="session")
def process() -> ProcessProfile:
    return load_process()


@pytest.fixture(scope="session")
def guide() -> Guide:
    return make_guide()


@pytest.fixture(scope="session")
def oriented(guide: Guide, process: ProcessProfile):
    from fabctl.mesh.orient import orient_part
    from fabctl.mesh.protect import protected_faces

    prot = protected_faces(guide.vertices, guide.faces, guide.plan, process.protect, guide.skin)
    return orient_part(guide.vertices, guide.faces, prot, process, (81.0, 128.0, 150.0))


@pytest.fixture(scope="session")
def supported(oriented, process: ProcessProfile):
    from fabctl.mesh.supports import generate_supports

    return generate_supports(oriented, process)
