"""Fast layer encoding: PNGs assembled from pre-deflated black rows, and the SL1 archive's own ZIP writer."""

from __future__ import annotations

import hashlib
import struct
import zipfile
import zlib
from datetime import UTC, datetime

import numpy as np
import pytest

from fabctl.formats import png, sl1

W, H = 97, 61


def _idat(data: bytes) -> bytes:
    """The IDAT payload of a PNG with one IDAT chunk, its CRC checked."""
    pos, out = 8, b""
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body, crc = data[pos + 8:pos + 8 + n], struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IDAT":
            out += body
        pos += 12 + n
    return out


@pytest.mark.parametrize("row0,col0,h,w", [(0, 0, 5, 7), (20, 30, 11, 40), (H - 3, W - 4, 3, 4),
                                          (0, 0, H, W), (10, 10, 0, 0), (1, 0, H - 1, 1)])
def test_tile_png_equals_the_full_frame(row0, col0, h, w):
    rng = np.random.default_rng(row0 * 1000 + col0)
    tile = rng.integers(0, 256, (h, w), dtype=np.uint8)
    tile[tile < 100] = 0
    frame = np.zeros((H, W), dtype=np.uint8)
    frame[row0:row0 + h, col0:col0 + w] = tile
    data = png.FrameEncoder(W, H).encode_tile(row0, col0, tile)
    assert np.array_equal(png.decode(data), frame)
    raw = zlib.decompress(_idat(data))          # zlib checks the stream and its Adler-32
    want = np.zeros((H, W + 1), dtype=np.uint8)
    want[:, 1:] = frame
    assert raw == want.tobytes()


def test_black_rows_are_not_deflated_per_layer():
    """A 2560-row frame with a 3-row tile costs about the tile, and the file stays small."""
    enc = png.FrameEncoder(1620, 2560)
    data = enc.encode_tile(1200, 800, np.full((3, 5), 255, dtype=np.uint8))
    assert len(data) < 8000
    assert np.count_nonzero(png.decode(data)) == 15


def test_tile_outside_the_frame_is_refused():
    with pytest.raises(ValueError, match="leaves"):
        png.FrameEncoder(W, H).encode_tile(H - 2, 0, np.zeros((3, 3), dtype=np.uint8))


def _job(tmp_path, n):
    return sl1.Sl1Job(job_dir="enc", width_px=W, height_px=H, exposure_s=2.0, first_exposure_s=20.0,
                      faded_layers=3, layer_height_mm=0.05, num_fast=n, num_slow=0, print_time_s=60.0,
                      used_material_ml=1.0, material_name="demo-grey", printer_model="SL1S",
                      printer_profile="prusa-sl1s", print_profile="fabctl 0.05", software="fabctl-test",
                      created=datetime(2026, 11, 25, 12, 34, 56, tzinfo=UTC))


def _render(i):
    t = np.zeros((4 + i % 5, 9), dtype=np.uint8)
    t[1:, 2:7] = 255 - i
    return i % 40, (3 * i) % 80, t


def test_zip_writer_makes_a_valid_archive_identical_across_worker_counts(tmp_path):
    n = 70
    a, b = tmp_path / "enc.sl1", tmp_path / "b" / "enc.sl1"
    b.parent.mkdir()
    sha_a = sl1.write_sl1(a, _job(tmp_path, n), n, _render, {(4, 4): png.encode(np.zeros((4, 4, 4), np.uint8))}, 1)
    sha_b = sl1.write_sl1(b, _job(tmp_path, n), n, _render, {(4, 4): png.encode(np.zeros((4, 4, 4), np.uint8))}, 2)
    assert a.read_bytes() == b.read_bytes()
    assert sha_a == sha_b == hashlib.sha256(a.read_bytes()).hexdigest()
    with zipfile.ZipFile(a) as z:
        assert z.testzip() is None
        names = z.namelist()
        assert names[:3] == ["config.ini", "prusaslicer.ini", "enc00000.png"] and names[-1].startswith("thumbnail/")
        info = z.getinfo("enc00069.png")
        assert info.compress_type == zipfile.ZIP_DEFLATED and info.date_time == (2026, 11, 25, 12, 34, 56)
        assert (info.external_attr >> 16) == 0o644
    arch = sl1.read_sl1(a)
    assert arch.n_layers == n and arch.config["jobDir"] == "enc"
    for i in (0, 33, n - 1):
        r0, c0, t = _render(i)
        want = np.zeros((H, W), dtype=np.uint8)
        want[r0:r0 + t.shape[0], c0:c0 + t.shape[1]] = t
        assert np.array_equal(arch.layer(i), want)


def test_layer_workers_never_run_the_parents_sigterm_handler(tmp_path):
    """`fabctl print` turns SIGTERM into an interrupt; the forked layer workers must neither inherit that
    handler nor be stopped with SIGTERM when they finish (it printed a stray KeyboardInterrupt traceback)."""
    import os
    import signal

    calls = tmp_path / "sigterm-calls"

    def handler(signum, frame):
        with open(calls, "a") as f:
            f.write(f"{os.getpid()}\n")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        n = 70
        sl1.write_sl1(tmp_path / "enc.sl1", _job(tmp_path, n), n, _render,
                      {(4, 4): png.encode(np.zeros((4, 4, 4), np.uint8))}, 2)
    finally:
        signal.signal(signal.SIGTERM, old)
    assert not calls.exists(), calls.read_text()
