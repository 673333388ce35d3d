"""fabctl's mock printer: a laser-SLA controller speaking Marlin's host protocol, with fault injection.

Independent of fabctl by design (it imports nothing from it): the firmware side of the protocol is written
separately, so a parsing bug shared with ``fabctl.transport`` cannot hide. Reach it over

* a pty: ``serve_pty(config)`` -> the host opens ``link.path`` like ``/dev/ttyACM0``;
* TCP: ``serve_tcp(config, port)`` -> ``socket://127.0.0.1:<port>``;
* a pyserial URL: ``register()`` then ``serial.serial_for_url("mockprinter://sim-laser?faults=corrupt@12")``.

``python -m mockprinter serve --pty | --tcp PORT [--faults ...]`` runs one from the shell.
"""

from __future__ import annotations

import time

import serial

from mockprinter.config import Fault, MockConfig, parse_faults
from mockprinter.links import MemoryLink, PtyLink, Runner, TcpLink
from mockprinter.marlin import MarlinSim

__all__ = [
    "Fault", "MarlinSim", "MemoryLink", "MockConfig", "PtyLink", "Runner", "TcpLink", "parse_faults",
    "register", "serve_pty", "serve_tcp",
]

PACKAGE = "mockprinter"


def register() -> None:
    """Make ``mockprinter://`` URLs known to ``serial.serial_for_url`` (idempotent)."""
    if PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(PACKAGE)


def serve_pty(config: MockConfig | None = None) -> tuple[Runner, PtyLink]:
    """Start the firmware behind a new pty; the host opens ``link.path``. Stop with ``runner.stop()``."""
    link = PtyLink()
    runner = Runner(MarlinSim(config), link, name="mockprinter-pty").start()
    return runner, link


def serve_tcp(config: MockConfig | None = None, port: int = 0, host: str = "127.0.0.1") -> tuple[Runner, TcpLink]:
    """Start the firmware behind a TCP server (``port`` 0: a free one, see ``link.port``)."""
    sim = MarlinSim(config)
    link = TcpLink(host, port, on_connect=lambda: sim.power_on(time.monotonic()))
    runner = Runner(sim, link, name="mockprinter-tcp", banner=False).start()
    return runner, link
