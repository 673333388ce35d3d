"""Laser G-code: round trip, beam offset, hatching, no patient data, channel fidelity from contours."""

from __future__ import annotations

import numpy as np
import pytest

from fabctl import profiles
from fabctl.cli.slice import build_job, placement_as_is
from fabctl.errors import InputError
from fabctl.formats import gcode, laserpath
from fabctl.mesh.slice import slice_mesh
from tests.unit.slice.fidelity import axis_angle_deg, polygon_moments
from tests.unit.slice.meshes import CHANNEL_D_MM, box, tilted_channel


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    printer, resin = profiles.printer("sim-laser"), profiles.resin("demo-grey")
    m, axis = tilted_channel()
    st = slice_mesh(m.vertices, m.faces, 0.05, placement_mm=placement_as_is(m.vertices, printer))
    out = tmp_path_factory.mktemp("g") / "chan.gcode"
    sha, fmt, t = build_job(st, printer, resin, out, "case-7")
    return st, axis, out, printer


def test_round_trip_gives_back_the_layers(channel):
    st, _, out, printer = channel
    header, layers = gcode.read_gcode(out)
    assert header["JOB"] == "case-7" and int(header["LAYERS"]) == st.n_layers == len(layers)
    spot = printer.laser.spot_diameter_mm
    for i in (0, st.n_layers // 2, st.n_layers - 1):
        want = gcode.plan_layer(st, i, spot, 0.05)
        got = layers[i]
        assert got.z_mm == pytest.approx(want.z_mm, abs=1e-4)
        assert len(got.contours) == len(want.contours)
        for a, b in zip(got.contours, want.contours, strict=True):
            assert np.allclose(a, b, atol=1e-4)
        assert np.allclose(got.hatches, want.hatches, atol=1e-4)


def test_header_has_ids_only(channel):
    text = channel[2].read_text()
    assert ";LAYER:0" in text and ";END" in text
    comments = [ln for ln in text.splitlines() if ln.startswith(";") and not ln.startswith((";LAYER", ";Z:", ";TYPE"))]
    assert len(comments) <= 12
    with pytest.raises(InputError):
        gcode.LaserJob("John Smith", "p", "r", 1, 1, 0.07, 0.05)


def test_tilted_channel_from_gcode_contours(channel):
    st, axis, out, printer = channel
    spot = printer.laser.spot_diameter_mm
    _, layers = gcode.read_gcode(out)
    cents, diams = [], []
    for i in range(st.n_layers // 2 - 60, st.n_layers // 2 + 60, 5):
        holes = [c for c in layers[i].contours if _area(c) < 0]
        assert len(holes) == 1
        c, d = polygon_moments(holes[0][::-1])
        cents.append([c[0], c[1], st.z_mm[i]])
        diams.append(d - spot)          # the path runs half a spot inside the material
    assert axis_angle_deg(np.array(cents), axis) == pytest.approx(0.0, abs=0.5)
    assert abs(np.median(diams) - CHANNEL_D_MM) <= spot / 2


def _area(p):
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float((x * np.roll(y, -1) - np.roll(x, -1) * y).sum())


def test_offset_and_hatch_on_a_square():
    sq = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    off = laserpath.offset_loops(sq, np.array([0, 4]), 0.5)
    assert np.allclose(off, [[0.5, 0.5], [9.5, 0.5], [9.5, 9.5], [0.5, 9.5]])
    h = laserpath.hatch(off, np.roll(off, -1, axis=0), 1.0, 0.0)
    assert len(h) == 9 and np.allclose(np.abs(h[:, 1, 0] - h[:, 0, 0]), 9.0)
    v = laserpath.hatch(off, np.roll(off, -1, axis=0), 1.0, 90.0)
    assert len(v) == 9 and np.allclose(np.abs(v[:, 1, 1] - v[:, 0, 1]), 9.0)


def test_small_box_job(tmp_path):
    printer, resin = profiles.printer("moai-laser"), profiles.resin("demo-grey")
    b = box((4, 4, 1), (0, 0, 0.5))
    st = slice_mesh(b.vertices, b.faces, 0.05, placement_mm=placement_as_is(b.vertices, printer))
    sha, fmt, t = build_job(st, printer, resin, tmp_path / "b.gcode", "case-1")
    assert fmt == "gcode" and len(sha) == 64 and t > 0


def test_every_layers_first_jump_carries_the_scan_feed(channel):
    """After the platform's slow Z move, the layer's first G0 must not inherit the Z feed."""
    _, _, out, printer = channel
    lines = out.read_text().splitlines()
    z_feed = [ln for ln in lines if ln.startswith("G1 Z")][0].split(" F")[1]
    firsts, want = [], None
    for k, ln in enumerate(lines):
        if ln.startswith(";LAYER:"):
            jump = next(x for x in lines[k:] if x.startswith("G0"))
            firsts.append(jump)
    assert len(firsts) > 100
    feeds = {j.rsplit(" F", 1)[1] for j in firsts[1:]}
    marks = {ln.rsplit(" F", 1)[1] for ln in lines if ln.startswith("G1 X") and " F" in ln}
    want = feeds.pop()
    assert not feeds and want in marks and want != z_feed
    assert " F" in firsts[0] and firsts[0].rsplit(" F", 1)[1] != z_feed
