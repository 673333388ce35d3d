"""CLI (Common Layer Interface): ASCII and binary round trips."""

from __future__ import annotations

import numpy as np
import pytest

from fabctl.errors import InputError
from fabctl.formats import cli_format
from fabctl.mesh.slice import slice_mesh
from tests.unit.slice.meshes import tilted_channel


@pytest.fixture(scope="module")
def stack():
    m, _ = tilted_channel()
    return slice_mesh(m.vertices, m.faces, 0.1, placement_mm=[100.0, 100.0, -m.bounds[0, 2]])


@pytest.mark.parametrize("binary", [False, True])
def test_round_trip(stack, tmp_path, binary):
    out = tmp_path / "j.cli"
    sha = cli_format.write_cli(out, stack, "case-3", 0.1, 0.1, binary=binary)
    assert sha == cli_format.sha256_file(out)
    header, layers = cli_format.read_cli(out)
    assert int(header["LAYERS"]) == stack.n_layers == len(layers)
    assert float(header["UNITS"]) == 1.0 and header["LABEL"] == "1,case-3"
    assert ("BINARY" in header) == binary
    tol = 2e-4 if binary else 1e-6
    for i in range(0, stack.n_layers, 7):
        loops = stack.layer_loops(i)
        got = layers[i]
        assert got.z_mm == pytest.approx(stack.layer_tops_mm[i], abs=1e-5)
        assert len(got.polylines) == len(loops)
        for (d, p), loop in zip(got.polylines, loops, strict=True):
            area = 0.5 * np.sum(loop[:, 0] * np.roll(loop[:, 1], -1) - np.roll(loop[:, 0], -1) * loop[:, 1])
            assert d == (1 if area > 0 else 0)
            assert np.allclose(p[:-1], loop, atol=tol) and np.allclose(p[-1], p[0])
        assert len(got.hatches) > 0


def test_not_a_cli_file(tmp_path):
    p = tmp_path / "x.cli"
    p.write_text("hello")
    with pytest.raises(InputError):
        cli_format.read_cli(p)


def test_same_inputs_same_bytes(stack, tmp_path):
    """With the date given (the pipeline passes the design revision's time) the file is reproducible."""
    from datetime import UTC, datetime

    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    a = cli_format.write_cli(tmp_path / "a.cli", stack, "case-3", 0.1, 0.1, date=when)
    b = cli_format.write_cli(tmp_path / "b.cli", stack, "case-3", 0.1, 0.1, date=when)
    c = cli_format.write_cli(tmp_path / "c.cli", stack, "case-3", 0.1, 0.1, date=datetime(2026, 3, 5, tzinfo=UTC))
    assert a == b != c
    assert cli_format.read_cli(tmp_path / "a.cli")[0]["DATE"] == "040326"
