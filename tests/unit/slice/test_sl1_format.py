"""SL1 archive: layout, config keys, round trip, and the tilted channel's fidelity through the raster."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from fabctl import profiles
from fabctl.cli.slice import build_job, placement_as_is
from fabctl.formats import png, sl1
from fabctl.mesh.raster import ScreenMap, full_image, rasterize_layer
from fabctl.mesh.slice import slice_mesh
from tests.unit.slice.fidelity import axis_angle_deg, hole_from_image, minor_diameter
from tests.unit.slice.meshes import CHANNEL_D_MM, TILT_DEG, tilted_channel


@pytest.fixture(scope="module")
def channel_job(tmp_path_factory):
    printer, resin = profiles.printer("prusa-sl1s"), profiles.resin("demo-grey")
    m, axis = tilted_channel()
    st = slice_mesh(m.vertices, m.faces, 0.05, placement_mm=placement_as_is(m.vertices, printer))
    out = tmp_path_factory.mktemp("sl1") / "chan.sl1"
    sha, fmt, _ = build_job(st, printer, resin, out, "case-1", aa=4, workers=2)
    return st, axis, out, sha, ScreenMap.from_raster(printer.raster)


def test_archive_layout_and_config(channel_job):
    st, _, out, sha, screen = channel_job
    a = sl1.read_sl1(out)
    assert list(a.config) == list(sl1.CONFIG_KEYS) and len(a.config) == 19
    assert a.config["jobDir"] == "chan" and a.layer_names[0] == "chan00000.png"
    assert a.n_layers == st.n_layers and int(a.config["numFast"]) + int(a.config["numSlow"]) == st.n_layers
    assert float(a.config["usedMaterial"]) == pytest.approx(st.volume_mm3 / 1000, rel=1e-5)
    assert set(a.thumbnails.values()) == {(400, 400), (800, 480)}
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha
    img = a.layer(0)
    assert img.shape == (2560, 1620) and img.dtype == np.uint8


def test_round_trip_gives_back_the_layers(channel_job):
    st, _, out, _, screen = channel_job
    a = sl1.read_sl1(out)
    for i in (0, st.n_layers // 3, st.n_layers - 1):
        want = full_image(rasterize_layer(st, i, screen, aa=4), (screen.height_px, screen.width_px))
        assert np.array_equal(a.layer(i), want)


def test_tilted_channel_axis_and_diameter_from_the_raster(channel_job):
    st, axis, out, _, screen = channel_job
    a = sl1.read_sl1(out)
    cents, diams = [], []
    for i in range(st.n_layers // 2 - 60, st.n_layers // 2 + 60, 5):
        hole = hole_from_image(a.layer(i))
        assert hole is not None, i
        pix, w = hole
        xy = screen.to_platform(pix)
        c = (xy * w[:, None]).sum(axis=0) / w.sum()
        cents.append([c[0], c[1], st.z_mm[i]])
        diams.append(minor_diameter(xy, w))
    assert axis_angle_deg(np.array(cents), axis) == pytest.approx(0.0, abs=0.5)
    assert abs(np.median(diams) - CHANNEL_D_MM) <= 0.05
    assert TILT_DEG == 30.0


def test_png_encoder_matches_pillow():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    assert np.array_equal(png.decode(png.encode(img)), img)
    rgba = rng.integers(0, 256, (9, 7, 4), dtype=np.uint8)
    assert np.array_equal(png.decode(png.encode(rgba)), rgba)


def test_screen_map_is_a_reflection_for_the_sl1s_and_round_trips():
    s = ScreenMap.from_raster(profiles.printer("prusa-sl1s").raster)
    p = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    q = s.to_image(p)
    ex, ey = q[1] - q[0], q[2] - q[0]
    # image coordinates (col right, row down): a proper map would have det < 0 here; SL1S mirrors
    assert ex[0] * ey[1] - ex[1] * ey[0] > 0
    assert np.allclose(s.to_platform(q), p)


def test_bad_job_names_are_refused(tmp_path):
    with pytest.raises(Exception, match="SL1 output name"):
        sl1.job_dir_for(tmp_path / "bad name.sl1")
