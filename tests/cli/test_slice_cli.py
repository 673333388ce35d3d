"""`fabctl slice` end to end, in a subprocess with FABCTL_HOME=tmp and FABCTL_OPERATOR=tech1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh

from tests.conftest import ROOT, Run, assert_one_line_error


def run(home: Path, *args: str):
    """The real `fabctl` in a subprocess, with a fresh store."""
    env = {**os.environ, "FABCTL_HOME": str(home), "FABCTL_OPERATOR": "tech1"}
    env.pop("FABCTL_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "fabctl", *args], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=300)
    return Run(p.returncode, p.stdout, p.stderr)


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    m = trimesh.creation.annulus(r_min=1.65, r_max=6, height=8, sections=96)
    p = tmp_path / "tube.stl"
    m.export(p)
    return p


@pytest.mark.parametrize("printer,ext,fmt", [("prusa-sl1s", "sl1", "sl1"), ("sim-laser", "gcode", "gcode"),
                                             ("industrial-cli", "cli", "cli")])
def test_slice_mesh_writes_the_job_with_its_hash(tmp_path, mesh, printer, ext, fmt):
    out = tmp_path / f"job.{ext}"
    r = run(tmp_path / "home", "slice", "--mesh", str(mesh), "--units", "mm", "--printer", printer, "--as-is",
            "-o", str(out), "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["job"]["format"] == fmt and out.is_file()
    import hashlib
    assert doc["job"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert doc["layers"] == 160 and doc["layer_height_mm"] == 0.05
    assert doc["checks"] == {"islands": 0, "resin_traps": 0, "suction_cups": 1}


def test_refusals(tmp_path, mesh):
    home = tmp_path / "home"
    r = run(home, "slice", "--mesh", str(mesh), "--units", "mm", "--layer-height", "0.035", "--as-is",
            "-o", str(tmp_path / "x.gcode"))
    assert_one_line_error(r, 3, "layer height")
    r = run(home, "slice", "--as-is", "-o", str(tmp_path / "x.gcode"))
    assert_one_line_error(r, 2, "either")
    r = run(home, "slice", "case-1", "-o", str(tmp_path / "x.gcode"))
    assert_one_line_error(r, 3, "orient/support")


def test_preview_png(tmp_path, mesh):
    pv = tmp_path / "p.png"
    r = run(tmp_path / "home", "slice", "--mesh", str(mesh), "--units", "mm", "--as-is", "-o",
            str(tmp_path / "x.gcode"), "--preview", str(pv))
    assert r.code == 0, r.err
    assert pv.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
