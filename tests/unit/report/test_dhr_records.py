"""The record of a guide released through the real records code (devices, post-processing, load, inspection,
signed release), not events written by hand: every field the release fills is in the report, and the
exported archive of that case verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabctl.case import CaseStore
from fabctl.records import inspect, release, sterilize
from fabctl.report import dhr, label, pdf
from fabctl.trace import archive
from tests.unit.records import helpers as rh

pytestmark = pytest.mark.db


def test_report_of_a_case_released_by_the_records_code(fabctl_home: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABCTL_PROFILES_DIR", str(rh.verified_profiles(tmp_path / "profiles")))
    db = rh.register(fabctl_home, "case-a")
    serial = rh.printed(db, "case-a")[0]
    rh.staff(db)
    rh.through_load(db, ["case-a"])
    sterilize.record_result(db, rh.LOAD, "pass", "negative", "spd1")
    sterilize.release_load(db, rh.LOAD, "qa1", rh.CRED, "spd1")
    store = CaseStore(fabctl_home)
    inspect.record_inspection(db, store, "case-a", visual="pass", needle_go="pass", fit="pass", actor="tech1",
                              channel_mm=3.25)
    out = release.release_case(db, store, "case-a", "qa1", lambda: rh.CRED, "qa1")

    rec = dhr.collect(db, store, "case-a")
    f = {x.id: x for x in rec.fields()}
    assert rec.released and rec.trace_ok and rec.label.serial == serial
    assert f["A2"].value == serial and f["K1"].value == "made 1; released 1"
    assert f["K2"].value.startswith(f"qa1 (qa) at {out['signed_utc']}; meaning approval")
    assert out["record_sha256"] in f["K2"].value and f["K4"].value == out["retention_until"]
    assert f["J1"].value.startswith(f"{rh.LOAD}: steam") and "cycle 8812" in f["J1"].value
    assert f["J2"].value == "CI pass; BI negative; processed" and f["J3"].value.startswith("released by qa1")
    assert f["G1"].value.startswith("ipa") and "flush cut" in f["G4"].value
    assert f["H2"].value.startswith("needle go/no-go pass; fit pass; channel 3.25 mm")
    assert rec.label.sterile_status.startswith("STERILE: steam")
    assert [g.what for g in rec.signatures] == [f"sterilization load {rh.LOAD}", "release for clinical use"]
    assert pdf.write_pdf(rec, tmp_path / "r.pdf").stat().st_size > 5000
    label.write_label(rec.label, tmp_path / "l.png")

    res = archive.export(db, store, "case-a", tmp_path / "a.zip")
    assert res.not_included == [] and res.head_hash == rec.head_hash
    rep = archive.verify_archive(tmp_path / "a.zip")
    assert rep.ok, rep.problems
    assert rep.events == len(rec.events) and rep.head_hash == rec.head_hash
