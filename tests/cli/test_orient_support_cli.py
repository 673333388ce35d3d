"""`fabctl orient` and `fabctl support` through the real command line, on the example case and on a guide
that cannot be oriented cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, ROOT, Run, assert_one_line_error

# registers the two commands when fabctl.cli does not list them yet (the lead adds them to COMMANDS)
SHIM = ("import sys, fabctl.cli as c; "
        "c.COMMANDS.setdefault('orient', ('fabctl.cli.orient', 'orient_cmd', 'command')); "
        "c.COMMANDS.setdefault('support', ('fabctl.cli.support', 'support_cmd', 'command')); "
        "sys.argv[0] = 'fabctl'; c.main()")



@pytest.fixture
def fab(fabctl_home: Path):
    def run(*args: str, env: dict[str, str] | None = None) -> Run:
        p = subprocess.run([sys.executable, "-c", SHIM, *args], capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, **(env or {})}, timeout=600)
        return Run(p.returncode, p.stdout, p.stderr)

    return run


def _events(fab, case: str) -> list[dict]:
    r = fab("trace", "show", case, "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    return doc["events"] if isinstance(doc, dict) else doc


def test_example_orient_then_support(fab, tmp_path: Path) -> None:
    r = fab("case", "new", "case-42", "--mesh", str(EXAMPLE / "guide.stl"), "--plan", str(EXAMPLE / "plan.json"),
            "--units", "mm")
    assert r.code == 0, r.err
    r = fab("orient", "case-42", "--printer", "prusa-sl1s", "--json", "--render", str(tmp_path))
    assert r.code == 0, r.err
    o = json.loads(r.out)
    assert o["scores"]["protected_overhang_mm2"] == 0 and o["scores"]["protected_minima"] == 0
    assert o["scores"]["fits_build_volume"] and len(o["transform"]) == 4 and not o["cached"]
    assert Path(o["pictures"][0]).stat().st_size > 10_000
    r = fab("support", "case-42", "--printer", "prusa-sl1s", "--json", "--render", str(tmp_path))
    assert r.code == 0, r.err
    s = json.loads(r.out)
    assert s["support_points"] > 0 and s["protected_contacts"] == 0 and s["unsupported_islands"] == 0
    assert s["proof"]["ok"] and s["proof"]["part_intrusions"] == 0 and s["proof"]["channel_intrusions"] == 0
    assert {"print.stl", "supports.stl", "support.json", "support.npz"} <= set(s["files"])
    assert s["transform"] == o["transform"]
    again = json.loads(fab("support", "case-42", "--printer", "prusa-sl1s", "--json").out)
    assert again["cached"] and again["support_points"] == s["support_points"]
    types = [e["type"] for e in _events(fab, "case-42")]
    assert types.count("orient.recorded") == 3 and types.count("support.recorded") == 2
    v = fab("trace", "verify", "--json")
    assert v.code == 0, v.err


def test_example_fits_a_moai_class_printer(fab) -> None:
    assert fab("case", "new", "case-42", "--mesh", str(EXAMPLE / "guide.stl"), "--plan",
               str(EXAMPLE / "plan.json"), "--units", "mm").code == 0
    r = fab("support", "case-42", "--printer", "moai-laser")
    assert r.code == 0, r.err
    assert "proof passed: protected contacts 0" in r.out and "unsupported 0" in r.out


def test_refusal_when_no_orientation_keeps_protected_surfaces_clean(fab, tmp_path: Path) -> None:
    import trimesh

    from tests.unit.orient.orient_guides import make_guide

    g = make_guide(regions=[{"name": "everything", "center_mm": [0.0, 0.0, 5.0], "radius_mm": 60.0}])
    trimesh.Trimesh(g.vertices, g.faces).export(tmp_path / "guide.stl")
    trimesh.Trimesh(*g.skin).export(tmp_path / "skin.stl")
    (tmp_path / "plan.json").write_text(json.dumps(g.plan.model_dump(mode="json")))
    assert fab("case", "new", "case-7", "--mesh", str(tmp_path / "guide.stl"), "--plan",
               str(tmp_path / "plan.json"), "--units", "mm").code == 0
    r = fab("support", "case-7", "--json")
    assert_one_line_error(r, 3, "no orientation")
    assert r.out == ""
    assert [e["type"] for e in _events(fab, "case-7")][-1] == "orient.refused"


def test_operator_is_required(fab) -> None:
    r = fab("orient", "case-42", env={"FABCTL_OPERATOR": ""})
    assert_one_line_error(r, 2, "operator")
