"""fabctl's PrusaLink transport against the mock PrusaLink printer (hardware/mockprinter/prusalink.py)."""

from __future__ import annotations

import io
import struct
import sys
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabctl.errors import InputError, TransportError
from fabctl.transport.base import JobState, Printer, PrinterStatus
from fabctl.transport.prusalink import PrusaLinkPrinter

try:
    from mockprinter.prusalink import MockPrusaLink, MockSL1
except ImportError:  # not installed: the source tree's hardware/ package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hardware"))
    from mockprinter.prusalink import MockPrusaLink, MockSL1

pytestmark = pytest.mark.timeout(60)
PASSWORD = "test-only-password"


def _png(width: int = 8, height: int = 4) -> bytes:
    """A tiny black greyscale PNG layer."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def sl1_archive(path: Path, layers: int = 20, exp_time: float = 2.0, exp_first: float = 20.0,
                num_fade: int = 5) -> Path:
    config = "\n".join([
        "action = print", "jobDir = guide", f"expTime = {exp_time}", f"expTimeFirst = {exp_first}",
        f"numFade = {num_fade}", f"numFast = {layers}", "numSlow = 0", "layerHeight = 0.05",
        "printerModel = SL1S", "materialName = test",
    ]) + "\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.ini", config)
        z.writestr("prusaslicer.ini", "printer_technology = SLA\n")
        for i in range(layers):
            z.writestr(f"guide{i:05d}.png", _png())
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def mock() -> Iterator[MockPrusaLink]:
    # 20 layers: 5 fading from 20 s to 2 s, then 2 s each; time_scale 0.02 -> about 1.3 s of printing
    with MockPrusaLink(password=PASSWORD, printer=MockSL1(time_scale=0.02)) as m:
        yield m


@pytest.fixture
def printer(mock: MockPrusaLink) -> Iterator[PrusaLinkPrinter]:
    with PrusaLinkPrinter(mock.url, "maker", PASSWORD, lost_after_s=1.5) as p:
        yield p


def test_upload_and_print_to_finished(printer: PrusaLinkPrinter, tmp_path: Path) -> None:
    assert isinstance(printer, Printer)
    ident = printer.connect()
    assert ident.model == "Mock SL1S (PrusaLink)" and ident.serial_number.startswith("MOCK-SL1S-")
    assert printer.send_job(sl1_archive(tmp_path / "guide.sl1")) == "local/guide.sl1"
    seen: list[PrinterStatus] = []
    final = printer.follow(timeout_s=20, poll_s=0.05, on_status=seen.append)
    assert final.state is JobState.done and final.progress == 1.0
    assert final.extra["prusalink_state"] == "FINISHED"
    assert any(s.state is JobState.printing and 0.0 < s.progress < 1.0 for s in seen), seen


def test_pause_resume_and_cancel(printer: PrusaLinkPrinter, tmp_path: Path) -> None:
    printer.send_job(sl1_archive(tmp_path / "long.sl1", layers=200))
    printer.pause()
    deadline = time.monotonic() + 5
    while printer.status().state is not JobState.paused:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    paused_at = printer.status().progress
    time.sleep(0.3)
    assert printer.status().progress == paused_at
    printer.resume()
    assert printer.status().state is JobState.printing
    printer.cancel()
    final = printer.follow(timeout_s=5, poll_s=0.05)
    assert final.state is JobState.cancelled and final.progress < 1.0


def test_wrong_password_is_refused_with_401(mock: MockPrusaLink, tmp_path: Path) -> None:
    with PrusaLinkPrinter(mock.url, "maker", "wrong") as p:
        with pytest.raises(TransportError, match=r"refused the credentials of user 'maker' \(401\)"):
            p.send_job(sl1_archive(tmp_path / "guide.sl1"))


def test_failure_at_layer_n_fails_the_job(tmp_path: Path) -> None:
    sl1 = MockSL1(time_scale=0.01, fail_at_layer=7)
    with MockPrusaLink(password=PASSWORD, printer=sl1) as m, PrusaLinkPrinter(m.url, "maker", PASSWORD) as p:
        p.send_job(sl1_archive(tmp_path / "guide.sl1", layers=20))
        final = p.follow(timeout_s=10, poll_s=0.05)
        assert final.state is JobState.failed
        assert final.progress == pytest.approx(7 / 20)
        assert "ERROR" in final.message
        with pytest.raises(TransportError, match="409"):  # the printer needs attention first
            p.send_job(sl1_archive(tmp_path / "next.sl1"))


def test_storage_full_is_refused(tmp_path: Path) -> None:
    with MockPrusaLink(password=PASSWORD, printer=MockSL1(free_space_bytes=1000)) as m, \
            PrusaLinkPrinter(m.url, "maker", PASSWORD) as p:
        with pytest.raises(TransportError, match=r"not enough space.*\(413\)"):
            p.send_job(sl1_archive(tmp_path / "guide.sl1"))


def test_not_an_sl1_archive_is_bad_input(printer: PrusaLinkPrinter, tmp_path: Path) -> None:
    bad = tmp_path / "guide.sl1"
    bad.write_bytes(b"G1 X0\n")
    with pytest.raises(InputError, match="415"):
        printer.send_job(bad)


def test_busy_printer_refuses_a_second_job(printer: PrusaLinkPrinter, tmp_path: Path) -> None:
    printer.send_job(sl1_archive(tmp_path / "first.sl1", layers=200))
    with pytest.raises(TransportError, match="409"):
        printer.send_job(sl1_archive(tmp_path / "second.sl1"))
    printer.cancel()
    assert printer.follow(timeout_s=5, poll_s=0.05).state is JobState.cancelled


def test_printer_going_away_mid_job_fails_it_in_bounded_time(mock: MockPrusaLink, printer: PrusaLinkPrinter,
                                                             tmp_path: Path) -> None:
    printer.send_job(sl1_archive(tmp_path / "guide.sl1", layers=200))
    assert printer.status().state is JobState.printing
    mock.vanish()
    t0 = time.monotonic()
    with pytest.raises(TransportError, match="went away"):
        printer.follow(timeout_s=20, poll_s=0.1)
    assert time.monotonic() - t0 < 1.5 + 2
    assert printer.last_status.state is JobState.failed
    assert printer.status().state is JobState.failed


def test_run_prusalink_for_fabctl_send(mock: MockPrusaLink, tmp_path: Path) -> None:
    from fabctl.cli.send_net import run_prusalink

    out = run_prusalink(sl1_archive(tmp_path / "guide.sl1"), mock.url, "maker", PASSWORD, json_out=True,
                        timeout_s=20)
    assert out["state"] == "done" and out["transport"] == "prusalink"
    assert out["reference"] == "local/guide.sl1"


def test_run_prusalink_raises_when_the_job_fails(tmp_path: Path) -> None:
    from fabctl.cli.send_net import run_prusalink

    with MockPrusaLink(password=PASSWORD, printer=MockSL1(time_scale=0.01, fail_at_layer=3)) as m:
        with pytest.raises(TransportError, match="ended failed") as err:
            run_prusalink(sl1_archive(tmp_path / "guide.sl1"), m.url, "maker", PASSWORD, json_out=True)
    assert err.value.exit_code == 4
