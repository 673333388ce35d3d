"""The case store and trace through the real `fabctl` command: revisions, refusals, tampering, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trimesh

from tests.conftest import Store, assert_one_line_error

pytestmark = pytest.mark.db

PLAN = {
    "vertebral_level": "L3", "side": "left", "needle_gauge": 11, "needle_od_mm": 3.048,
    "entry_point_mm": [10.0, 0.0, 0.0], "direction": [0.0, 0.0, -1.0], "target_depth_mm": 80.0,
    "channel_diameter_mm": 3.3, "slot_length_mm": 10.0, "slot_direction": [0.0, 1.0, 0.0],
}


def _design(tmp_path: Path, name: str = "guide.stl", size: tuple = (60.0, 40.0, 3.0),
            header: bytes = b"solid PATIENT Jane Doe 1961-04-02") -> Path:
    m = trimesh.creation.box(extents=size)
    path = tmp_path / name
    data = bytearray(m.export(file_type="stl"))
    data[: len(header)] = header  # planning software may write names into the free-text header
    path.write_bytes(bytes(data))
    return path


def _plan(tmp_path: Path, name: str = "plan.json", **change) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({**PLAN, **change}))
    return path


def test_new_show_ls_and_trace(fabctl, fabctl_home: Path, tmp_path: Path, store: Store) -> None:
    mesh, plan = _design(tmp_path), _plan(tmp_path)
    r = fabctl("case", "new", "case-42", "--mesh", str(mesh), "--plan", str(plan), "--units", "mm", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc == {"case": "case-42", "revision": 1, "created": True, "unchanged": False, "events": [1, 2]}

    show = json.loads(fabctl("case", "show", "case-42", "--json").out)
    rev = show["revisions"][0]
    assert rev["triangles"] == 12 and rev["bbox_mm"] == [60.0, 40.0, 3.0]
    assert rev["files_ok"] and rev["printable"] and rev["units"] == "mm" and rev["units_source"] == "declared"
    stored = fabctl_home / "cases" / "case-42" / "rev-0001" / "design.stl"
    assert rev["source_sha256"] != rev["design_sha256"]  # the copy is scrubbed, so it differs
    assert b"Jane" not in stored.read_bytes() and b"PATIENT" not in stored.read_bytes()
    # no free text from the source anywhere in the record
    assert "Jane" not in store.text() and "PATIENT" not in store.text()
    assert "case-42" in store.text()  # the dump does see the store's contents

    trace = json.loads(fabctl("trace", "show", "case-42", "--json").out)
    assert [e["type"] for e in trace["events"]] == ["case.created", "design.registered"]
    assert {e["actor"] for e in trace["events"]} == {"tech1"}
    assert trace["head"] == show["trace_head"]
    assert json.loads(fabctl("case", "ls", "--json").out)["cases"][0]["case"] == "case-42"
    v = fabctl("trace", "verify", "--json")
    assert v.code == 0 and json.loads(v.out)["ok"] is True


def test_reregister_same_is_unchanged_different_needs_revise(fabctl, fabctl_home: Path, tmp_path: Path) -> None:
    mesh, plan = _design(tmp_path), _plan(tmp_path)
    args = ["case", "new", "case-7", "--mesh", str(mesh), "--plan", str(plan), "--units", "mm"]
    assert fabctl(*args).code == 0
    again = fabctl(*args, "--json")
    assert json.loads(again.out)["unchanged"] is True

    mesh2 = _design(tmp_path, "guide2.stl", size=(61.0, 40.0, 3.0))
    args2 = ["case", "new", "case-7", "--mesh", str(mesh2), "--plan", str(plan), "--units", "mm"]
    assert_one_line_error(fabctl(*args2), 2, "already has revision 1")
    r = fabctl(*args2, "--revise", "--json")
    assert r.code == 0 and json.loads(r.out)["revision"] == 2
    show = json.loads(fabctl("case", "show", "case-7", "--json").out)
    assert [x["revision"] for x in show["revisions"]] == [1, 2]
    assert show["revisions"][1]["bbox_mm"][0] == 61.0


@pytest.mark.parametrize(
    ("case_id", "words"),
    [("../etc", ["not valid"]), ("Case-42", ["not valid"]), ("a/b", ["not valid"]), ("x" * 65, ["not valid"])],
)
def test_bad_case_ids(fabctl, tmp_path: Path, case_id: str, words: list[str]) -> None:
    r = fabctl("case", "new", case_id, "--mesh", str(_design(tmp_path)), "--plan", str(_plan(tmp_path)),
               "--units", "mm")
    assert_one_line_error(r, 2, *words)


def test_refusals_leave_store_and_trace_consistent(fabctl, fabctl_home: Path, tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    # no units declared for an STL
    assert_one_line_error(fabctl("case", "new", "case-1", "--mesh", str(_design(tmp_path)), "--plan", str(plan)),
                          2, "unit")
    # metre-scale file declared in mm: refused with a hint naming metres
    big = _design(tmp_path, "m.stl", size=(0.06, 0.04, 0.003))
    r = fabctl("case", "new", "case-1", "--mesh", str(big), "--plan", str(plan), "--units", "mm")
    assert_one_line_error(r, 2, "largest extent", "5 to 300 mm")
    assert "--units m" in r.err
    # a broken plan
    bad = _plan(tmp_path, "bad-plan.json", direction=[0.0, 0.0, -0.5])
    assert_one_line_error(fabctl("case", "new", "case-1", "--mesh", str(_design(tmp_path)), "--plan", str(bad),
                                 "--units", "mm"), 2, "direction", "unit vector")
    # nothing was created by any of these
    assert not (fabctl_home / "cases" / "case-1").exists() or not any((fabctl_home / "cases" / "case-1").iterdir())
    assert json.loads(fabctl("case", "ls", "--json").out)["cases"] == []
    # once the case exists, a refused intake is itself recorded and changes nothing else
    assert fabctl("case", "new", "case-1", "--mesh", str(_design(tmp_path)), "--plan", str(plan),
                  "--units", "mm").code == 0
    empty = tmp_path / "empty.stl"
    empty.write_bytes(b"")
    assert_one_line_error(fabctl("case", "new", "case-1", "--mesh", str(empty), "--plan", str(plan), "--units",
                                 "mm", "--revise"), 2, "empty")
    types = [e["type"] for e in json.loads(fabctl("trace", "show", "case-1", "--json").out)["events"]]
    assert types == ["case.created", "design.registered", "intake.refused"]
    assert sorted(p.name for p in (fabctl_home / "cases" / "case-1").iterdir()) == ["rev-0001"]
    assert fabctl("trace", "verify").code == 0


def test_unknown_case_and_missing_operator(fabctl, tmp_path: Path) -> None:
    assert_one_line_error(fabctl("case", "show", "case-99"), 2, "unknown case")
    assert_one_line_error(fabctl("trace", "show", "case-99"), 2, "unknown case")
    r = fabctl("case", "new", "case-1", "--mesh", str(_design(tmp_path)), "--plan", str(_plan(tmp_path)),
               "--units", "mm", env={"FABCTL_OPERATOR": ""})
    assert_one_line_error(r, 2, "operator")
    r = fabctl("--operator", "Dr Who", "case", "new", "case-1", "--mesh", str(_design(tmp_path)), "--plan",
               str(_plan(tmp_path)), "--units", "mm")
    assert_one_line_error(r, 2, "staff id")


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        (["UPDATE trace_events SET payload = replace(payload, '\"triangles\":12', '\"triangles\":13') WHERE seq = 2"],
         ["event 2", "edited"]),
        (["DELETE FROM trace_events WHERE seq = 2"], ["head mismatch"]),
        (["DELETE FROM trace_events WHERE seq = 1"], ["event 2", "missing"]),
        (["UPDATE trace_events SET seq = 9 WHERE seq = 1", "UPDATE trace_events SET seq = 1 WHERE seq = 2",
          "UPDATE trace_events SET seq = 2 WHERE seq = 9"], ["reordered"]),
        (["INSERT INTO trace_events SELECT 3, case_id, 3, type, at_utc, actor, payload, hash, hash "
          "FROM trace_events WHERE seq = 2"], ["event 3", "edited"]),
    ],
    ids=["payload-byte", "last-row-deleted", "first-row-deleted", "rows-swapped", "row-inserted"],
)
def test_trace_verify_exit_5(fabctl, store: Store, tmp_path: Path, sql: list[str], words: list[str]) -> None:
    assert fabctl("case", "new", "case-42", "--mesh", str(_design(tmp_path)), "--plan", str(_plan(tmp_path)),
                  "--units", "mm").code == 0
    store.raw(*sql)  # as someone with the database would: guards removed, then raw SQL
    r = fabctl("trace", "verify")
    assert_one_line_error(r, 5, "trace integrity")
    for w in words:
        assert w in r.out, (w, r.out)
    j = fabctl("trace", "verify", "--json")
    assert j.code == 5 and json.loads(j.out)["ok"] is False


def test_verify_finds_a_stored_design_changed_on_disk(fabctl, fabctl_home: Path, tmp_path: Path) -> None:
    assert fabctl("case", "new", "case-42", "--mesh", str(_design(tmp_path)), "--plan", str(_plan(tmp_path)),
                  "--units", "mm").code == 0
    stored = fabctl_home / "cases" / "case-42" / "rev-0001" / "design.stl"
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[100] ^= 1
    stored.write_bytes(bytes(data))
    assert_one_line_error(fabctl("trace", "verify"), 5, "stored files")
    assert json.loads(fabctl("case", "show", "case-42", "--json").out)["revisions"][0]["printable"] is False


def test_profile_commands(fabctl, tmp_path: Path) -> None:
    ok = fabctl("profile", "check")
    assert ok.code == 0 and "ok: 5 printer, 3 resin and 1 process profiles" in ok.out
    ls = json.loads(fabctl("profile", "ls", "--json").out)
    assert {p["id"] for p in ls["printers"]} >= {"sim-laser", "sim-sl1s", "prusa-sl1s", "moai-laser", "industrial-cli"}
    show = json.loads(fabctl("profile", "show", "formlabs-sg-v1", "--json").out)
    assert show["kind"] == "resin" and show["release_blockers"]
    assert_one_line_error(fabctl("profile", "show", "nope"), 2, "no printer or resin profile")
    # a broken copy of the profiles: exit 2 naming file and key
    import shutil

    from tests.conftest import ROOT

    shutil.copytree(ROOT / "profiles", tmp_path / "p")
    f = tmp_path / "p" / "resins" / "demo-grey.toml"
    f.write_text(f.read_text().replace("exposure_s = 2.5", "exposure_s = 2.5\nexposure_ms = 2500"))
    r = fabctl("profile", "check", env={"FABCTL_PROFILES_DIR": str(tmp_path / "p")})
    assert_one_line_error(r, 2, "demo-grey.toml", "exposure.exposure_ms", "unknown key")


def test_debug_env_gives_traceback_only_when_asked(fabctl) -> None:
    r = fabctl("case", "show", "case-99", env={"FABCTL_DEBUG": "1"})
    assert r.code != 0 and "Traceback" in r.err
