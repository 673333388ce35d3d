"""Helpers for streaming through the mock printer: G-code programs, mock endpoints over pty/TCP/URL."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import mockprinter
from mockprinter import protocol_mockprinter
from mockprinter.config import MockConfig
from mockprinter.marlin import MarlinSim

from fabctl.transport.gcode_line import parse_program
from fabctl.transport.serial import SerialPrinter, StreamSettings

TRANSPORTS = ("pty", "tcp", "url")
FAST = StreamSettings(response_timeout_s=0.3, max_timeouts=3, resend_timeout_s=0.2, progress_interval_s=0.01)
_names = itertools.count()


def laser_program(layers: int = 20, marks: int = 12) -> str:
    """A laser G-code job in fabctl's dialect: per layer a Z move, beam on, jumps and marks, beam off, peel."""
    out = [";FABCTL laser-gcode 1", ";JOB:test", "G21", "G90", "M5"]
    for i in range(layers):
        z = 0.05 * (i + 1)
        out += [f";LAYER:{i}", f";Z:{z:.4f}", f"G1 Z{z:.4f} F300", "M3 S120", ";TYPE:CONTOUR"]
        for k in range(marks):
            if k % 4 == 0:
                out.append(f"G0 X{10 + k * 0.7:.4f} Y{20 + i * 0.1:.4f}")
            else:
                out.append(f"G1 X{10 + k * 0.5:.4f} Y{20 + k * 0.25 + i * 0.01:.4f} F60000")
        out += ["", "M5", f"G1 Z{z + 2:.4f} F300  ; peel"]
    out += ["M5", ";END"]
    return "\n".join(out) + "\n"


def write_program(path: Path, layers: int = 20, marks: int = 12) -> tuple[Path, list[str]]:
    text = laser_program(layers, marks)
    path.write_text(text, encoding="ascii")
    return path, list(parse_program(text).commands)


def job_log(sim: MarlinSim) -> list[str]:
    """Numbered commands the firmware executed since the job's ``M110 N0``."""
    numbered = [cmd for n, cmd in sim.executed if n is not None]
    starts = [i for i, cmd in enumerate(numbered) if cmd == "M110 N0"]
    return numbered[starts[-1] + 1:] if starts else numbered


@dataclass
class Endpoint:
    url: str
    sim_of: Callable[[], MarlinSim]

    @property
    def sim(self) -> MarlinSim:
        return self.sim_of()


@contextmanager
def mock_endpoint(kind: str, **options: Any) -> Iterator[Endpoint]:
    """A running mock printer reached over ``kind`` (pty, tcp, url); stopped on exit."""
    options.setdefault("exposure_scale", 0.001)
    if kind == "url":
        mockprinter.register()
        name = f"t{next(_names)}"
        query = urlencode({k: _q(v) for k, v in options.items()})
        yield Endpoint(f"mockprinter://{name}?{query}", lambda: protocol_mockprinter.last_sim(name))
        return
    config = MockConfig.from_dict(options)
    runner, link = mockprinter.serve_pty(config) if kind == "pty" else mockprinter.serve_tcp(config)
    url = link.path if kind == "pty" else f"socket://127.0.0.1:{link.port}"
    try:
        yield Endpoint(url, lambda: runner.sim)
    finally:
        runner.stop()


def _q(v: Any) -> str:
    return str(int(v)) if isinstance(v, bool) else str(v)


def printer(url: str, settings: StreamSettings = FAST, **kw: Any) -> SerialPrinter:
    kw.setdefault("banner_wait_s", 0.1)
    kw.setdefault("connect_timeout_s", 3.0)
    return SerialPrinter(url, settings=settings, **kw)
