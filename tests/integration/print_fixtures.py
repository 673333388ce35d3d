"""Shared set-up of the `fabctl print` tests: a fast profile tree, a mock printer over TCP, a warmed home.

The example's real job on demo-grey (0.05 mm layers, 0.05 mm hatch) is about 7.6 million G-code lines; the
tests print the same case with a test copy of the profiles whose demo resin hatches at 1 mm and slices at
0.1 mm (hundreds of thousands of lines), and a mock printer with an 8 KiB receive buffer, so a whole print
takes seconds. Everything else (gates, stages, cache, transport, trace) is the product's code path.
The first print runs once per session in a warmed FABCTL_HOME; each test copies it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mockprinter
from mockprinter.config import MockConfig
from mockprinter.marlin import MarlinSim

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "case-42"
RX = 8192


@dataclass
class Run:
    code: int
    out: str
    err: str


def fabctl(home: Path, profiles: Path, *args: str, timeout: float = 600, env: dict | None = None) -> Run:
    full = {**os.environ, "FABCTL_HOME": str(home), "FABCTL_PROFILES_DIR": str(profiles),
            "FABCTL_OPERATOR": "tech1", **(env or {})}
    full.pop("FABCTL_DB_URL", None)
    full.pop("FABCTL_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "fabctl", *args], capture_output=True, text=True, env=full,
                       timeout=timeout, cwd=ROOT)
    return Run(p.returncode, p.stdout, p.stderr)


def set_key(path: Path, key: str, value: str) -> None:
    """Replace ``key = ...`` (first occurrence) in a TOML file."""
    text = path.read_text()
    new, n = re.subn(rf"(?m)^{re.escape(key)}\s*=.*$", f"{key} = {value}", text, count=1)
    assert n == 1, (path, key)
    path.write_text(new)


def fast_profiles(dst: Path) -> Path:
    """A copy of profiles/ whose demo resin prints quickly (module docs)."""
    shutil.copytree(ROOT / "profiles", dst)
    r = dst / "resins" / "demo-grey.toml"
    set_key(r, "hatch_spacing_mm", "1.0")
    text = r.read_text().replace("[ifu.layer_heights_mm]\nvalue = [0.025, 0.05, 0.1]",
                                 "[ifu.layer_heights_mm]\nvalue = [0.1]")
    assert "value = [0.1]" in text
    r.write_text(text)
    return dst


def point_printer(profiles: Path, printer: str, url: str, rx: int = RX) -> None:
    """Point a serial printer profile at ``url`` with an ``rx``-byte receive buffer."""
    p = profiles / "printers" / f"{printer}.toml"
    set_key(p, "url", f'"{url}"')
    set_key(p, "rx_buffer_bytes", str(rx))


@dataclass
class Mock:
    url: str
    runner: object

    @property
    def sim(self) -> MarlinSim:
        return self.runner.sim  # type: ignore[attr-defined]


@contextmanager
def tcp_mock(**options: object) -> Iterator[Mock]:
    """A mock Marlin printer on 127.0.0.1 over TCP, run by this process (its log is readable here)."""
    opts = {"exposure_scale": 0.0, "rx_buffer": RX, "bufsize": 64, **options}
    runner, link = mockprinter.serve_tcp(MockConfig.from_dict(opts))
    try:
        yield Mock(f"socket://127.0.0.1:{link.port}", runner)
    finally:
        runner.stop()


def executed_job(sim: MarlinSim) -> list[str]:
    """Numbered commands the firmware executed since the job's ``M110 N0``."""
    numbered = [cmd for n, cmd in sim.executed if n is not None]
    starts = [i for i, cmd in enumerate(numbered) if cmd == "M110 N0"]
    return numbered[starts[-1] + 1:] if starts else numbered


def new_case(home: Path, profiles: Path) -> None:
    r = fabctl(home, profiles, "case", "new", "case-42", "--mesh", str(EXAMPLE / "guide.stl"), "--plan",
               str(EXAMPLE / "plan.json"), "--units", "mm")
    assert r.code == 0, r.err


def copy_home(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
