"""Shared fixtures: a fresh FABCTL_HOME per test and a way to run the real `fabctl` command."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "case-42"
CORPUS = ROOT / "tests" / "data" / "corpus"


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def fabctl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("FABCTL_HOME", str(home))
    monkeypatch.setenv("FABCTL_OPERATOR", "tech1")
    monkeypatch.delenv("FABCTL_DB_URL", raising=False)
    monkeypatch.delenv("FABCTL_DEBUG", raising=False)
    return home


@pytest.fixture
def fabctl(fabctl_home: Path):
    """Run the installed CLI in a subprocess, exactly as a technician would."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
        full_env = {**os.environ, **(env or {})}
        p = subprocess.run([sys.executable, "-m", "fabctl", *args], capture_output=True, text=True,
                           env=full_env, timeout=timeout, cwd=ROOT)
        return Run(p.returncode, p.stdout, p.stderr)

    return run


def assert_one_line_error(r: Run, code: int, *words: str) -> None:
    """The CLI contract: exit ``code``, ``error: ...`` on one line (plus an optional hint), no traceback."""
    assert r.code == code, (r.code, r.out, r.err)
    assert "Traceback" not in r.err and "Traceback" not in r.out
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error: "), r.err
    assert all(ln.startswith(("error: ", "hint: ")) for ln in lines), r.err
    assert sum(ln.startswith("error: ") for ln in lines) == 1, r.err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])
