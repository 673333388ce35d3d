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
    assert_one_line_error(r, 2, "unknown case")
    assert not (tmp_path / "x.gcode").exists()


def test_preview_png(tmp_path, mesh):
    pv = tmp_path / "p.png"
    r = run(tmp_path / "home", "slice", "--mesh", str(mesh), "--units", "mm", "--as-is", "-o",
            str(tmp_path / "x.gcode"), "--preview", str(pv))
    assert r.code == 0, r.err
    assert pv.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_case_is_sliced_for_printing_through_the_print_stages(tmp_path):
    """Without --as-is a case goes through the print's gates and cached stages up to the job file; nothing sent."""
    from tests.integration.print_fixtures import fabctl as fab
    from tests.integration.print_fixtures import fast_profiles
    from tests.integration.print_small_case import write_small_guide

    home, prof = tmp_path / "home", fast_profiles(tmp_path / "profiles")
    stl, plan = write_small_guide(tmp_path / "design")
    assert fab(home, prof, "case", "new", "small-1", "--mesh", str(stl), "--plan", str(plan), "--units", "mm").code == 0
    out = tmp_path / "small.gcode"
    r = fab(home, prof, "slice", "small-1", "-o", str(out), "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    names = [s["name"] for s in doc["stages"]]
    assert names[-4:] == ["orient", "support", "slice", "job"] and not any(s["cached"] for s in doc["stages"])
    import hashlib
    assert hashlib.sha256(out.read_bytes()).hexdigest() == doc["job"]["sha256"] and doc["as_is"] is False
    assert "M3 S" in out.read_text() and doc["layers"] > 10
    again = json.loads(fab(home, prof, "slice", "small-1", "--json").out)
    assert all(s["cached"] for s in again["stages"] if s["name"] != "revision")
    assert again["job"]["sha256"] == doc["job"]["sha256"]
    events = json.loads(fab(home, prof, "trace", "show", "small-1", "--json").out)
    types = [e["type"] for e in (events["events"] if isinstance(events, dict) else events)]
    assert "pipeline.stage" in types and "print.started" not in types
    bad = fab(home, prof, "slice", "small-1", "--layer-height", "0.1")
    assert_one_line_error(bad, 2, "--as-is")
