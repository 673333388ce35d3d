"""`fabctl validate` and `fabctl repair` through the real CLI in a subprocess: exit codes 0/2/3, JSON on
stdout only, one-line errors without tracebacks, the trace record, the pictures, the repair/approve flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORPUS, EXAMPLE, ROOT, Run, assert_one_line_error
from tests.unit.mesh import guide_variants as gv

# runs fabctl.cli.main exactly as `python -m fabctl` does; registers the two commands if the CLI's command
# table does not list them yet (a no-op once it does)
SHIM = ("import sys; from fabctl import cli; "
        "cli.COMMANDS.setdefault('validate', ('fabctl.cli.validate', 'validate_cmd', 'command')); "
        "cli.COMMANDS.setdefault('repair', ('fabctl.cli.repair', 'repair_cmd', 'command')); "
        "sys.argv = ['fabctl', *sys.argv[1:]]; cli.main()")
GUIDE = str(EXAMPLE / "guide.stl")
PLAN = str(EXAMPLE / "plan.json")


@pytest.fixture
def fab(fabctl_home: Path):
    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Run:
        full = {**os.environ, **(env or {})}
        p = subprocess.run([sys.executable, "-c", SHIM, *args], capture_output=True, text=True, env=full,
                           timeout=timeout, cwd=ROOT)
        return Run(p.returncode, p.stdout, p.stderr)

    return run


def assert_report(r: Run, code: int) -> dict:
    assert r.code == code, (r.code, r.err[-2000:])
    assert "Traceback" not in r.err
    doc = json.loads(r.out)  # stdout is one JSON document and nothing else
    for key in ("ok", "mesh", "min_wall_thickness_mm", "checks"):
        assert key in doc
    return doc


def test_example_passes(fab) -> None:
    doc = assert_report(fab("validate", "--mesh", GUIDE, "--units", "mm", "--plan", PLAN, "--json"), 0)
    assert doc["ok"] is True and doc["mesh"]["triangles"] == 10022
    names = {c["name"] for c in doc["checks"]}
    assert {"watertight", "self_intersections", "min_wall_thickness", "channel_clearance", "channel_open",
            "fits_build_volume"} <= names


def test_failing_design_exits_3_after_the_report(fab, tmp_path: Path) -> None:
    m, plan = gv.load_guide()
    V, F, where = gv.thin_patch(m.vertices, m.faces, wall=0.8)
    path = gv.write_stl(tmp_path / "thin.stl", V, F)
    r = fab("validate", "--mesh", str(path), "--units", "mm", "--plan", PLAN, "--json")
    doc = assert_report(r, 3)
    assert doc["ok"] is False
    failed = [c for c in doc["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["min_wall_thickness"]
    assert failed[0]["value"] == pytest.approx(0.8, abs=0.05)
    assert_one_line_error(r, 3, "min_wall_thickness")
    # without --json: the table on stdout, then the one-line error
    r = fab("validate", "--mesh", str(path), "--units", "mm")
    assert r.code == 3 and "min_wall_thickness" in r.out and "FAIL" in r.out
    assert_one_line_error(r, 3, "validation failed")


@pytest.mark.parametrize("args, words", [
    (("validate", "--mesh", str(CORPUS / "microstl/empty_file.stl"), "--units", "mm"), ("empty",)),
    (("validate", "--mesh", str(CORPUS / "microstl/incomplete_binary.stl"), "--units", "mm"), ("truncated",)),
    (("validate", "--mesh", "/nonexistent/guide.stl", "--units", "mm"), ("no such file",)),
    (("validate",), ("exactly one",)),
    (("validate", "case-42", "--mesh", GUIDE), ("exactly one",)),
    (("validate", "--mesh", GUIDE, "--units", "furlong"), ("furlong",)),
    (("validate", "--mesh", GUIDE, "--units", "mm", "--resin", "no-such-resin"), ("no-such-resin",)),
    (("validate", "--mesh", GUIDE, "--units", "mm", "--plan", "/nonexistent/plan.json"), ("plan",)),
    (("validate", "no-such-case"), ("no-such-case",)),
])
def test_bad_input_exits_2_with_one_line(fab, args, words) -> None:
    r = fab(*args)
    assert_one_line_error(r, 2, *words)
    assert r.out == ""


FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "ATTRIBUTION.md")


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_corpus_through_the_cli(fab, path: Path) -> None:
    r = fab("validate", "--mesh", str(path), "--units", "cm", "--json")
    assert r.code in (0, 2, 3), (r.code, r.err)
    assert "Traceback" not in r.err and "internal error" not in r.err
    if r.code == 2:
        assert_one_line_error(r, 2)
    else:
        assert_report(r, r.code)


def test_render_writes_png_and_ply(fab, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "pics"
    doc = assert_report(fab("validate", "--mesh", GUIDE, "--units", "mm", "--plan", PLAN, "--render", str(out),
                            "--json"), 0)
    png, ply = (Path(p) for p in doc["rendered"])
    assert png.parent == out and png.suffix == ".png" and ply.suffix == ".ply"
    with Image.open(png) as im:
        assert im.width >= 1500 and im.height >= 500
        # the guide is drawn in colour, not just background
        colours = im.convert("RGB").getcolors(1 << 20)
        assert len(colours) > 200
    import trimesh

    m = trimesh.load(ply, process=False)
    assert len(m.faces) == 10022 and m.visual.vertex_colors.shape == (len(m.vertices), 4)


def test_case_validation_is_recorded(fab) -> None:
    r = fab("case", "new", "case-42", "--mesh", GUIDE, "--plan", PLAN, "--units", "mm")
    assert r.code == 0, r.err
    doc = assert_report(fab("validate", "case-42", "--json"), 0)
    assert doc["case"] == "case-42" and doc["revision"] == 1
    tr = json.loads(fab("trace", "show", "case-42", "--json").out)
    ev = [e for e in tr["events"] if e["type"] == "validation.recorded"]
    assert len(ev) == 1 and ev[0]["actor"] == "tech1"
    p = ev[0]["payload"]
    assert p["ok"] is True and p["revision"] == 1 and p["resin"] == "demo-grey" and p["printer"] == "sim-laser"
    assert {c["name"] for c in p["checks"]} >= {"watertight", "min_wall_thickness", "channel_open"}
    assert len(p["resin_sha256"]) == 64 and len(p["design_sha256"]) == 64
    assert fab("trace", "verify").code == 0
    # a recorded action needs an operator; --mesh does not
    env = {"FABCTL_OPERATOR": ""}
    assert_one_line_error(fab("validate", "case-42", env=env), 2, "operator")
    assert fab("validate", "--mesh", GUIDE, "--units", "mm", "--json", env=env).code == 0


def test_repair_then_approve(fab, tmp_path: Path) -> None:
    m, _ = gv.load_guide()
    V, F, _ = gv.flipped_faces(m.vertices, m.faces)
    V, F, _ = gv.hole(V, F)
    path = gv.write_stl(tmp_path / "broken.stl", V, F)
    assert fab("case", "new", "case-7", "--mesh", str(path), "--plan", PLAN, "--units", "mm").code == 0
    doc = assert_report(fab("validate", "case-7", "--json"), 3)
    assert {"watertight", "winding_consistent"} <= {c["name"] for c in doc["checks"] if not c["passed"]}
    r = fab("repair", "case-7", "--json")
    assert r.code == 0, r.err
    rep = json.loads(r.out)
    assert rep["revision"] == 2 and rep["needs_approval"] is True
    assert {f["name"] for f in rep["fixes"]} == {"faces_reoriented", "holes_filled"}
    show = json.loads(fab("case", "show", "case-7", "--json").out)
    r2 = show["revisions"][-1]
    assert r2["origin"] == "repair" and r2["needs_approval"] and not r2["printable"]
    # not before it is validated, and not by the person who repaired it
    assert_one_line_error(fab("repair", "case-7", "--approve-by", "qa1"), 3, "validated")
    assert assert_report(fab("validate", "case-7", "--json"), 0)["revision"] == 2
    assert_one_line_error(fab("repair", "case-7", "--approve-by", "tech1"), 3, "second person")
    r = fab("repair", "case-7", "--approve-by", "qa1", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["approved_by"] == "qa1"
    show = json.loads(fab("case", "show", "case-7", "--json").out)
    assert show["revisions"][-1]["printable"] is True and show["revisions"][-1]["approved_by"] == "qa1"
    types = [e["type"] for e in json.loads(fab("trace", "show", "case-7", "--json").out)["events"]]
    assert types.count("design.repaired") == 1 and types.count("design.approved") == 1
    assert fab("trace", "verify").code == 0


def test_repair_of_a_clean_case_makes_nothing(fab) -> None:
    assert fab("case", "new", "case-42", "--mesh", GUIDE, "--plan", PLAN, "--units", "mm").code == 0
    r = fab("repair", "case-42", "--json")
    assert r.code == 0 and json.loads(r.out)["revision"] is None
    assert len(json.loads(fab("case", "show", "case-42", "--json").out)["revisions"]) == 1
