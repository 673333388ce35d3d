"""Records after the print, through the library API on a real SQLite store: serials, credentials, the
IFU checks, loads and quarantine, the inspection order, the release gate and its signature."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from fabctl.case import CaseStore
from fabctl.errors import CheckFailed, InputError
from fabctl.records import devices, inspect, postprocess, release, retention, sterilize, users
from fabctl.trace import log
from tests.unit.records.helpers import (
    CRED,
    assert_only_refusal,
    printed,
    register,
    snapshot,
    verified_profiles,
)

pytestmark = pytest.mark.db


@pytest.fixture
def home(fabctl_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh store on the backend of this run (SQLite, or PostgreSQL under FABCTL_TEST_DB=postgres)."""
    monkeypatch.setenv("FABCTL_PROFILES_DIR", str(verified_profiles(tmp_path / "profiles")))
    return fabctl_home


def _pp(db, case_id: str, **kw):
    args = dict(wash_solvent="ipa", wash_min=5, dry_min=30, cure_temp_c=60, cure_min=20, actor="tech1",
                cure_unit="CURE-2", support_removal="flush cut; intaglio untouched")
    return postprocess.record_postprocess(db, case_id, **{**args, **kw})


def _staff(db) -> None:
    users.add_user(db, "admin1", "admin", CRED, "tech1")
    users.add_user(db, "qa1", "qa", CRED, "tech1", admin_id="admin1", admin_credential=CRED)
    users.add_user(db, "tech1", "technician", CRED, "tech1", admin_id="admin1", admin_credential=CRED)


def test_serials_are_unique_increasing_and_never_deleted(home: Path) -> None:
    db = register(home, "case-a")
    register(home, "case-b")
    a = printed(db, "case-a", quantity=2)
    b = printed(db, "case-b")
    year = date.today().year
    assert a == [f"FAB-{year}-000001", f"FAB-{year}-000002"] and b == [f"FAB-{year}-000003"]
    assert devices.quantities(devices.case_devices(db, "case-a")) == {
        "made": 2, "released": 0, "scrapped": 0, "quarantined": 0}
    n = len(log.events(db, "case-a"))
    with db.write() as cur:  # a retried finish of the same job: same serials, nothing new recorded
        assert devices.assign_device(cur, "case-a", "job-case-a", "sim-sl1s", 2, actor="tech1") == a
    assert len(log.events(db, "case-a")) == n
    ev = [e for e in log.events(db, "case-a") if e.type == "device.assigned"][0].payload
    assert ev["serials"] == a and ev["quantity_made"] == 2 and ev["build_id"] == "job-case-a"
    with pytest.raises(Exception, match="never deleted"), db.write() as cur:  # the backend names its own error type
        cur.execute("DELETE FROM devices WHERE serial = ?", (a[1],))
    assert len(devices.case_devices(db, "case-a")) == 2


def test_credentials_are_scrypt_hashes_and_first_user_is_admin(home: Path, store) -> None:
    db = register(home, "case-a")
    with pytest.raises(CheckFailed, match="first user must be an admin"):
        users.add_user(db, "qa1", "qa", CRED, "tech1")
    _staff(db)
    with pytest.raises(CheckFailed, match="wrong credential"):
        users.add_user(db, "qa2", "qa", CRED, "tech1", admin_id="admin1", admin_credential="nope-nope")
    with pytest.raises(CheckFailed, match="needs role admin"):
        users.add_user(db, "qa2", "qa", CRED, "tech1", admin_id="qa1", admin_credential=CRED)
    with db.read() as cur:
        rows = cur.execute("SELECT kdf, kdf_n, kdf_r, kdf_p, salt_hex, hash_hex FROM users").fetchall()
        assert users.authorise(cur, "qa1", CRED, ("qa",))[1] is None
        assert "did not match" in users.authorise(cur, "qa1", CRED + "x", ("qa",))[1]
        assert "role technician" in users.authorise(cur, "tech1", CRED, ("qa",))[1]
    assert len(rows) == 3 and len({r[4] for r in rows}) == 3  # a fresh salt each
    for kdf, n, r, p, salt, h in rows:
        assert (kdf, n, r, p) == ("scrypt", 2**14, 8, 1) and len(bytes.fromhex(salt)) == 16
        assert len(h) == 64 and CRED.encode().hex() not in h
    assert CRED not in store.text()  # nowhere in the store, on either backend


def test_postprocess_outside_ifu_is_refused_naming_value_and_limit(home: Path) -> None:
    db = register(home, "case-a")
    printed(db, "case-a")
    before = snapshot(db)
    with pytest.raises(CheckFailed) as exc:
        _pp(db, "case-a", wash_min=25, cure_temp_c=80)
    assert exc.value.exit_code == 3
    assert "wash 25 min outside nextdent-sg IFU 3-10 min" in exc.value.message
    assert "cure temperature 80 C outside nextdent-sg IFU 40-60 C" in exc.value.message
    new = assert_only_refusal(before, snapshot(db), "postprocess.refused")
    assert len(json.loads(new[0][6])["reasons"]) == 2
    out = _pp(db, "case-a")
    assert out["wash_min_limit"] == {"min": 3.0, "max": 10.0, "status": "verified",
                                     "source": "TEST FIXTURE: stands in for the NextDent SG IFU"}


def test_postprocess_needs_a_done_print(home: Path) -> None:
    db = register(home, "case-a")
    printed(db, "case-a", state="failed")
    with pytest.raises(CheckFailed, match="ended 'failed'"):
        _pp(db, "case-a")
    assert log.events(db, "case-a")[-1].type == "postprocess.refused"


def test_free_text_with_a_name_is_refused_exit_2_and_not_recorded(home: Path) -> None:
    db = register(home, "case-a")
    printed(db, "case-a")
    before = snapshot(db)
    with pytest.raises(InputError) as exc:
        _pp(db, "case-a", support_removal="removed by Mrs Smith")
    assert exc.value.exit_code == 2 and "title and name" in exc.value.message
    new = assert_only_refusal(before, snapshot(db), "postprocess.refused")
    assert "Smith" not in new[0][6]


def _through_load(db, cases: list[str], temp_c: float = 121, method: str = "steam"):
    for c in cases:
        _pp(db, c)
    sterilize.new_load(db, "SPD-A3-2026-11-26-004", method, temp_c, 20, "AUTOCLAVE-A3", 8812, "spd1")
    return sterilize.add_cases(db, "SPD-A3-2026-11-26-004", cases, "spd1")


def test_steam_above_the_resins_limit_is_refused(home: Path) -> None:
    db = register(home, "case-a")
    printed(db, "case-a", resin="formlabs-sg-v1")
    _pp(db, "case-a", cure_temp_c=60, cure_min=25)
    sterilize.new_load(db, "L1", "steam-prevac", 134, 4, "AUTOCLAVE-A3", 1, "spd1")
    sterilize.new_load(db, "L2", "steam", 134, 20, "AUTOCLAVE-A3", 2, "spd1")
    before = snapshot(db)
    with pytest.raises(CheckFailed, match="does not allow steam-prevac"):
        sterilize.add_cases(db, "L1", ["case-a"], "spd1")
    with pytest.raises(CheckFailed, match="134 C exceeds resin formlabs-sg-v1's validated maximum 121 C"):
        sterilize.add_cases(db, "L2", ["case-a"], "spd1")
    assert_only_refusal(before, snapshot(db), "sterilization.refused", count=2)
    assert sterilize.show_load(db, "L2").contents == ()


def test_positive_bi_quarantines_every_guide_in_the_load(home: Path) -> None:
    db = register(home, "case-a")
    register(home, "case-b")
    sa, sb = printed(db, "case-a"), printed(db, "case-b")
    _through_load(db, ["case-a", "case-b"])
    with pytest.raises(CheckFailed) as exc:
        sterilize.record_result(db, "SPD-A3-2026-11-26-004", "pass", "positive", "spd1")
    assert f"case-a {sa[0]}" in exc.value.message and f"case-b {sb[0]}" in exc.value.message
    assert {d.status for c in ("case-a", "case-b") for d in devices.case_devices(db, c)} == {"quarantined"}
    for c in ("case-a", "case-b"):
        ev = log.events(db, c)[-1]
        assert ev.type == "sterilization.load_result" and ev.payload["status"] == "quarantined"
        assert {q["serial"] for q in ev.payload["quarantined"]} == {sa[0], sb[0]}


def test_inspection_waits_for_the_load_and_checks_the_channel(home: Path) -> None:
    db = register(home, "case-a")
    printed(db, "case-a")
    _through_load(db, ["case-a"])
    store = CaseStore(home)
    before = snapshot(db)
    with pytest.raises(CheckFailed, match="must follow the last heat step"):
        inspect.record_inspection(db, store, "case-a", visual="pass", needle_go="pass", fit="pass", actor="t1")
    assert_only_refusal(before, snapshot(db), "inspection.refused")
    sterilize.record_result(db, "SPD-A3-2026-11-26-004", "pass", "negative", "spd1")
    # 11G needle 3.048 mm + nextdent-sg clearance 0.15 mm = 3.198 mm
    with pytest.raises(CheckFailed, match=r"channel 3.15 mm below needle OD 3.048 \+ clearance 0.15 = 3.198 mm"):
        inspect.record_inspection(db, store, "case-a", visual="pass", needle_go="pass", fit="pass", actor="t1",
                                  channel_mm=3.15, ncr_ref="NCR-2026-014")
    ev = log.events(db, "case-a")[-1]
    assert ev.type == "inspection.recorded" and ev.payload["passed"] is False
    assert ev.payload["channel_min_mm"] == 3.198 and ev.payload["ncr_ref"] == "NCR-2026-014"


def test_full_release_signs_a_record_bound_to_the_trace_head(home: Path) -> None:
    db = register(home, "case-a")
    serial = printed(db, "case-a")[0]
    _staff(db)
    _through_load(db, ["case-a"])
    sterilize.record_result(db, "SPD-A3-2026-11-26-004", "pass", "negative", "spd1")
    sterilize.release_load(db, "SPD-A3-2026-11-26-004", "qa1", CRED, "spd1")
    inspect.record_inspection(db, CaseStore(home), "case-a", visual="pass", needle_go="pass", fit="pass",
                              actor="tech1", channel_mm=3.25)
    head_before = log.events(db, "case-a")[-1]
    out = release.release_case(db, CaseStore(home), "case-a", "qa1", lambda: CRED, "qa1")
    assert out["serials"] == [serial] and out["meaning"] == "approval" and out["signed_by"] == "qa1"
    assert out["trace_head_sha256"] == head_before.hash and out["trace_head_case_seq"] == head_before.case_seq
    record = {k: v for k, v in out.items() if k not in ("case", "released", "record_sha256")}
    assert users.canonical_sha256(record) == out["record_sha256"]
    signed = date.fromisoformat(out["signed_utc"][:10])
    assert out["retention_until"] == retention.retention_until(signed, retention.load_policy()).isoformat()
    assert out["retention_until"] == signed.replace(year=signed.year + 10).isoformat()
    assert all(c["ok"] for c in out["conditions"])
    assert [c["name"] for c in out["conditions"]] == [
        "print_done", "guide_available", "validation_passed", "design_matches_approved", "supports_clear",
        "lot_in_date", "resin_ifu_verified", "postprocess_within_ifu", "load_released", "inspection_passed",
        "trace_verifies"]
    assert devices.case_devices(db, "case-a")[0].status == "released"
    assert log.verify(db).ok
    ev = log.events(db, "case-a")[-1]
    assert ev.type == "release.signed" and ev.payload["record_sha256"] == out["record_sha256"]


def test_a_spare_is_scrapped_and_counted_and_a_changed_design_file_blocks_release(home: Path) -> None:
    db = register(home, "case-a")
    guide, spare = printed(db, "case-a", quantity=2)
    devices.scrap_device(db, spare, "tech1", ncr_ref="NCR-2026-015")
    with pytest.raises(CheckFailed, match="is scrapped"):
        devices.scrap_device(db, spare, "tech1")
    _staff(db)
    _through_load(db, ["case-a"])
    sterilize.record_result(db, "SPD-A3-2026-11-26-004", "pass", "negative", "spd1")
    sterilize.release_load(db, "SPD-A3-2026-11-26-004", "qa1", CRED, "spd1")
    assert [s for _, s in sterilize.show_load(db, "SPD-A3-2026-11-26-004").contents] == [guide]
    inspect.record_inspection(db, CaseStore(home), "case-a", visual="pass", needle_go="pass", fit="pass",
                              actor="tech1")
    design = CaseStore(home).rev_dir("case-a", 1) / "design.stl"
    original = design.read_bytes()
    design.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(CheckFailed, match="trace_verifies: revision 1 design.stl is missing or differs"):
        release.release_case(db, CaseStore(home), "case-a", "qa1", lambda: CRED, "qa1")
    design.write_bytes(original)
    out = release.release_case(db, CaseStore(home), "case-a", "qa1", lambda: CRED, "qa1")
    assert out["serials"] == [guide]
    assert out["quantity"] == {"made": 2, "released": 1, "scrapped": 1, "quarantined": 0}
    assert devices.quantities(devices.case_devices(db, "case-a")) == out["quantity"]


def test_retention_policy_arithmetic() -> None:
    pol = retention.RetentionPolicy(id="r", device_lifetime_days=3650, years_after_lifetime=2, minimum_years=10,
                                    source="s")
    assert retention.retention_until(date(2026, 11, 25), pol) == date(2038, 11, 22)  # 3650 days (three leap days) + 2 years
    assert retention.retention_until(date(2028, 2, 29), pol.model_copy(update={"device_lifetime_days": 1})) \
        == date(2038, 3, 1)
