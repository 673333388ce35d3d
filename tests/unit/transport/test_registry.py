"""The explicit transport registry and the hot-folder driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabctl import profiles
from fabctl.errors import InputError, TransportError
from fabctl.transport import registry
from fabctl.transport.base import JobState, Printer
from fabctl.transport.hotfolder import HotFolderPrinter
from fabctl.transport.serial import SerialPrinter


def test_serial_profile_opens_a_serial_printer() -> None:
    p = registry.open_printer(profiles.printer("sim-laser"))
    assert isinstance(p, SerialPrinter) and isinstance(p, Printer)
    assert p.url.startswith("mockprinter://sim-laser") and p.baud == 115200
    assert p.settings.rx_buffer_bytes == 127
    assert p.link is None  # built, not connected


def test_overrides_win() -> None:
    p = registry.open_printer(profiles.printer("moai-laser"), url="socket://127.0.0.1:9", rx_buffer_bytes=64,
                              flow="pingpong", response_timeout_s=2.0)
    assert p.url == "socket://127.0.0.1:9"
    assert p.settings.rx_buffer_bytes == 64 and p.settings.flow == "pingpong"
    assert p.settings.response_timeout_s == 2.0


def test_hotfolder_profile_opens_a_hot_folder(tmp_path: Path) -> None:
    p = registry.open_printer(profiles.printer("industrial-cli"), path=str(tmp_path))
    assert isinstance(p, HotFolderPrinter) and p.folder == tmp_path


def test_every_profile_kind_has_a_driver() -> None:
    for kind in ("serial", "hotfolder", "octoprint", "prusalink"):
        assert kind in registry.DRIVERS


def test_missing_driver_module_is_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.DRIVERS, "octoprint", ("fabctl.transport.no_such_driver", "OctoPrintPrinter"))
    with pytest.raises(TransportError, match="transport 'octoprint' is not available"):
        registry.driver_class("octoprint")
    with pytest.raises(TransportError, match="not known"):
        registry.driver_class("carrier-pigeon")


def test_hotfolder_delivers_atomically_and_never_says_done(tmp_path: Path) -> None:
    folder = tmp_path / "hot"
    folder.mkdir()
    job = tmp_path / "case-42.cli"
    job.write_bytes(b"$$HEADERSTART\n" * 1000)
    p = HotFolderPrinter(folder)
    assert p.connect().model == "hot-folder machine"
    ref = p.send_job(job)
    assert Path(ref) == folder / "case-42.cli"
    assert (folder / "case-42.cli").read_bytes() == job.read_bytes()
    assert sorted(x.name for x in folder.iterdir()) == ["case-42.cli"]  # no temporary left behind
    st = p.status()
    assert st.state is JobState.printing and "cannot see" in st.message
    assert p.follow().state is not JobState.done
    with pytest.raises(TransportError, match="already exists"):
        p.send_job(job)
    with pytest.raises(TransportError, match="cannot pause"):
        p.pause()
    p.cancel()
    assert p.status().state is JobState.cancelled and not (folder / "case-42.cli").exists()


def test_hotfolder_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="does not exist"):
        HotFolderPrinter(tmp_path / "nope").connect()
    with pytest.raises(InputError):
        HotFolderPrinter(tmp_path).send_job(tmp_path / "missing.cli")


def test_serial_printer_refuses_a_tiny_buffer() -> None:
    with pytest.raises(InputError, match="too small"):
        SerialPrinter("loop://", rx_buffer_bytes=16)


def test_serial_printer_needs_a_connection(tmp_path: Path) -> None:
    p = SerialPrinter("loop://")
    with pytest.raises(TransportError, match="not connected"):
        p.send_job(tmp_path / "x.gcode")
    with pytest.raises(TransportError, match="not connected"):
        p.identify()
