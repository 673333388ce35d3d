"""A real OctoPrint (with its Virtual Printer) for integration tests, run by hardware/octoprint/*.sh.

The session fixture installs OctoPrint into its own venv when needed (a no-op when installed): a failed
install FAILS the tests, it never skips them. Each server gets a temp basedir and a free port on 127.0.0.1
and is stopped in the finalizer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "hardware" / "octoprint"
INSTALL_TIMEOUT_S = 900


@dataclass
class OctoPrintServer:
    url: str
    api_key: str
    pid: int
    basedir: Path

    def stop(self) -> None:
        subprocess.run([str(SCRIPTS / "stop.sh"), str(self.basedir)], capture_output=True, timeout=30,
                       check=False)

    def kill(self) -> None:
        """SIGKILL: the server goes away without a word, as a crashed host would."""
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Api-Key": self.api_key}, timeout=10)


def ensure_installed() -> None:
    proc = subprocess.run([str(SCRIPTS / "install.sh")], capture_output=True, text=True,
                          timeout=INSTALL_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        pytest.fail(f"hardware/octoprint/install.sh failed ({proc.returncode}):\n{proc.stderr[-3000:]}",
                    pytrace=False)


def start_server(basedir: Path) -> OctoPrintServer:
    proc = subprocess.run([str(SCRIPTS / "start.sh"), str(basedir)], capture_output=True, text=True,
                          timeout=120, check=False)
    if proc.returncode != 0:
        pytest.fail(f"hardware/octoprint/start.sh failed ({proc.returncode}):\n{proc.stderr[-3000:]}",
                    pytrace=False)
    values = dict(line.split("=", 1) for line in proc.stdout.split() if "=" in line)
    return OctoPrintServer(url=values["URL"], api_key=values["APIKEY"], pid=int(values["PID"]),
                           basedir=basedir)


@pytest.fixture(scope="session")
def octoprint_installed() -> None:
    ensure_installed()


@pytest.fixture(scope="session")
def octoprint_server(octoprint_installed: None, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[OctoPrintServer]:
    server = start_server(tmp_path_factory.mktemp("octoprint-base"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_octoprint(octoprint_installed: None, tmp_path: Path) -> Iterator[OctoPrintServer]:
    """A server of the test's own, for tests that kill it."""
    server = start_server(tmp_path / "octoprint-base")
    try:
        yield server
    finally:
        server.stop()


def gcode_file(directory: Path, name: str, dwell_lines: int, dwell_ms: int = 100) -> Path:
    """A small job whose length is set by G4 dwells (the Virtual Printer sleeps them for real)."""
    path = directory / name
    lines = ["; fabctl integration test", "G21", "G90", *[f"G4 P{dwell_ms}"] * dwell_lines, "M400"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def gcode(tmp_path: Path) -> Callable[..., Path]:
    """``gcode(name, dwell_lines=N)``: a G-code job in the test's temp dir (see ``gcode_file``)."""

    def make(name: str, dwell_lines: int, dwell_ms: int = 100) -> Path:
        return gcode_file(tmp_path, name, dwell_lines, dwell_ms)

    return make
