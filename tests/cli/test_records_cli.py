"""The records after the print through the real `fabctl` command: users, post-processing, a sterilization
load with three cases, results, inspection and a signed release; and every refusal (exit 3, one line,
the record unchanged apart from the refusal event).

The print events are written directly to the trace (``tests/unit/records/helpers.printed``); the resin
nextdent-sg is used from a profiles copy whose IFU values are marked verified by a test document, because
the shipped profile has none verified yet (a person must enter them from the IFU)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fabctl.case import CaseStore
from fabctl.records import inspect, postprocess, sterilize
from fabctl.trace import log
from tests.conftest import ROOT, assert_one_line_error
from tests.unit.records.helpers import (
    CRED,
    LOAD,
    assert_only_refusal,
    printed,
    register,
    snapshot,
    staff,
    through_load,
    verified_profiles,
)

pytestmark = pytest.mark.db

PP = ["--wash-solvent", "ipa", "--wash-min", "5", "--dry-min", "30", "--cure-temp-c", "60", "--cure-min", "20",
      "--cure-unit", "CURE-2", "--support-removal", "flush cut; intaglio untouched"]
SIGN = {"FABCTL_CREDENTIAL": CRED}
WRONG = {"FABCTL_CREDENTIAL": "not the credential"}


@pytest.fixture
def home(fabctl_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FABCTL_PROFILES_DIR", str(verified_profiles(tmp_path / "profiles")))
    return fabctl_home


def _ok(r):
    assert r.code == 0, (r.code, r.out, r.err)
    return json.loads(r.out) if r.out.lstrip().startswith(("{", "[")) else r.out


def _to_load(fabctl, db, cases: list[str], temp: str = "121") -> None:
    """Post-process the first case through the CLI and the others through the library (the CLI path is the
    same code; each subprocess costs about a second on a loaded machine), then load them all."""
    out = _ok(fabctl("postprocess", cases[0], *PP, "--json"))
    assert out["wash_min"] == 5 and out["cure_temp_c_limit"]["status"] == "verified"
    for c in cases[1:]:
        postprocess.record_postprocess(db, c, wash_solvent="ipa", wash_min=5, dry_min=30, cure_temp_c=60,
                                       cure_min=20, actor="tech1")
    _ok(fabctl("sterilize", "load", "new", LOAD, "--method", "steam", "--temp-c", temp, "--hold-min", "20",
               "--sterilizer", "AUTOCLAVE-A3", "--cycle", "8812"))
    _ok(fabctl("sterilize", "load", "add", LOAD, *cases))


def test_three_cases_one_load_release_and_the_gates_that_refuse(home: Path, fabctl) -> None:
    db = register(home, "case-a")
    register(home, "case-b")
    register(home, "case-c")
    sa = printed(db, "case-a")
    sb = printed(db, "case-b", resin="demo-grey")
    sc = printed(db, "case-c", lot_expires="2026-11-01")
    staff(db)  # `fabctl user add` itself: test_user_bootstrap and the pty test
    _to_load(fabctl, db, ["case-a", "case-b", "case-c"])
    _ok(fabctl("sterilize", "load", "result", LOAD, "--ci", "pass", "--bi", "negative"))
    rel = _ok(fabctl("sterilize", "load", "release", LOAD, "--by", "qa1", "--json", env=SIGN))
    assert rel["status"] == "released" and rel["released_by"] == "qa1"
    # 11G needle OD 3.048 mm + channel clearance (nextdent-sg 0.15 mm, demo-grey 0.1 mm)
    out = _ok(fabctl("inspect", "case-a", "--visual", "pass", "--needle-go", "pass", "--fit", "pass",
                     "--channel-mm", "3.25", "--json"))
    assert out["passed"] and out["load_id"] == LOAD and out["channel_min_mm"] == 3.198
    for c, limit in (("case-b", 3.148), ("case-c", 3.198)):
        out = inspect.record_inspection(db, CaseStore(home), c, visual="pass", needle_go="pass", fit="pass",
                                        actor="tech1", channel_mm=3.25)
        assert out["passed"] and out["channel_min_mm"] == limit
    show = _ok(fabctl("sterilize", "load", "show", LOAD, "--json"))
    assert show["cases"] == ["case-a", "case-b", "case-c"]
    assert {(i["case_id"], i["serial"]) for i in show["contents"]} == {
        ("case-a", sa[0]), ("case-b", sb[0]), ("case-c", sc[0])}
    assert (show["ci"], show["bi"], show["method"], show["temp_c"], show["cycle_no"]) == (
        "pass", "negative", "steam-gravity", 121.0, 8812)

    # the demo resin and the expired lot: refused, each naming exactly its unmet condition
    for case, name, words in (("case-b", "resin_ifu_verified", "not for clinical use"),
                              ("case-c", "lot_in_date", "expires 2026-11-01, printed 2026-11-24")):
        before = snapshot(db)
        r = fabctl("release", case, "--by", "qa1", "--json", env=SIGN)
        assert_one_line_error(r, 3, "release refused: 1 condition unmet", name)
        assert words in r.err
        doc = json.loads(r.out)
        assert doc["released"] is False and [c["name"] for c in doc["conditions"] if not c["ok"]] == [name]
        assert_only_refusal(before, snapshot(db), "release.refused")

    out = _ok(fabctl("release", "case-a", "--by", "qa1", "--json", env=SIGN))
    assert out["released"] and out["serials"] == sa and out["signed_by"] == "qa1" and out["meaning"] == "approval"
    assert out["quantity"] == {"made": 1, "released": 1, "scrapped": 0, "quarantined": 0}
    assert out["retention_until"] == f"{int(out['signed_utc'][:4]) + 10}{out['signed_utc'][4:10]}"
    trace = {"events": [e.as_dict() for e in log.events(db, "case-a")]}
    types = [e["type"] for e in trace["events"]]
    assert types[-7:] == ["device.assigned", "postprocess.recorded", "sterilization.load_added",
                          "sterilization.load_result", "sterilization.load_released", "inspection.recorded",
                          "release.signed"]
    assert all(e["payload"]["load_id"] == LOAD for e in trace["events"] if e["type"].startswith("steril"))
    signed = trace["events"][-1]
    assert signed["payload"]["record"]["trace_head_sha256"] == trace["events"][-2]["hash"]
    verify = _ok(fabctl("trace", "verify", "--json"))
    assert verify["ok"] is True and verify["problems"] == []


def test_technician_wrong_credential_and_release_before_inspection(home: Path, fabctl) -> None:
    db = register(home, "case-a")
    printed(db, "case-a")
    staff(db)
    through_load(db, ["case-a"], result=("pass", "negative"))

    before = snapshot(db)
    r = fabctl("sterilize", "load", "release", LOAD, "--by", "tech1", env=SIGN)
    assert_one_line_error(r, 3, "role technician")
    assert_only_refusal(before, snapshot(db), "signature.refused")
    sterilize.release_load(db, LOAD, "qa1", CRED, "spd1")

    before = snapshot(db)
    r = fabctl("release", "case-a", "--by", "qa1", "--json", env=SIGN)
    assert_one_line_error(r, 3, "release refused: 1 condition unmet", "inspection_passed")
    assert [c["name"] for c in json.loads(r.out)["conditions"] if not c["ok"]] == ["inspection_passed"]
    assert_only_refusal(before, snapshot(db), "release.refused")

    inspect.record_inspection(db, CaseStore(home), "case-a", visual="pass", needle_go="pass", fit="pass",
                              actor="tech1")
    before = snapshot(db)
    r = fabctl("release", "case-a", "--by", "tech1", env=SIGN)
    assert_one_line_error(r, 3, "role technician", "release needs role qa")
    assert_only_refusal(before, snapshot(db), "signature.refused")

    before = snapshot(db)
    r = fabctl("release", "case-a", "--by", "qa1", env=WRONG)
    assert_one_line_error(r, 3, "credential did not match")
    new = assert_only_refusal(before, snapshot(db), "signature.refused")
    assert WRONG["FABCTL_CREDENTIAL"] not in new[0][6] and CRED not in new[0][6]
    assert json.loads(new[0][6])["user_id"] == "qa1"
    assert _ok(fabctl("release", "case-a", "--by", "qa1", "--json", env=SIGN))["released"] is True
    assert_one_line_error(fabctl("release", "case-a", "--by", "qa1", env=SIGN), 3, "guide_available")


def test_134c_for_a_121c_resin_and_postprocess_outside_ifu(home: Path, fabctl) -> None:
    db = register(home, "case-a")
    printed(db, "case-a", resin="formlabs-sg-v1")
    bad = ["--wash-solvent", "ipa", "--wash-min", "12", "--dry-min", "30", "--cure-temp-c", "60", "--cure-min",
           "20"]
    before = snapshot(db)
    r = fabctl("postprocess", "case-a", *bad)
    assert_one_line_error(r, 3, "wash 12 min outside formlabs-sg-v1 IFU 5-10 min (secondary)")
    assert_only_refusal(before, snapshot(db), "postprocess.refused")
    postprocess.record_postprocess(db, "case-a", wash_solvent="ipa", wash_min=10, dry_min=30, cure_temp_c=60,
                                   cure_min=30, actor="tech1")
    sterilize.new_load(db, "L-134", "steam", 134, 20, "AUTOCLAVE-A3", 1, "spd1")
    before = snapshot(db)
    r = fabctl("sterilize", "load", "add", "L-134", "case-a")
    assert_one_line_error(r, 3, "134 C exceeds resin formlabs-sg-v1's validated maximum 121 C")
    assert_only_refusal(before, snapshot(db), "sterilization.refused")
    assert sterilize.show_load(db, "L-134").contents == ()


def test_postprocess_outside_ifu_first_attempt(home: Path, fabctl) -> None:
    db = register(home, "case-a")
    printed(db, "case-a")
    before = snapshot(db)
    r = fabctl("postprocess", "case-a", "--wash-solvent", "tpm", "--wash-min", "5", "--dry-min", "10",
               "--cure-temp-c", "60", "--cure-min", "20", "--json")
    assert_one_line_error(r, 3, "wash solvent 'tpm' is not the IFU's 'ipa'", "dry 10 min outside nextdent-sg IFU "
                          "30-240 min")
    assert r.out == ""
    assert_only_refusal(before, snapshot(db), "postprocess.refused")
    before = snapshot(db)
    r = fabctl("postprocess", "case-a", *PP[:-1], "removed by Dr Jones on 12/03/1961")
    assert_one_line_error(r, 2, "--support-removal", "a date", "title and name")
    assert "Jones" not in r.err
    assert_only_refusal(before, snapshot(db), "postprocess.refused")


def test_positive_bi_quarantines_and_blocks_release(home: Path, fabctl) -> None:
    db = register(home, "case-a")
    register(home, "case-b")
    sa, sb = printed(db, "case-a"), printed(db, "case-b")
    staff(db)
    through_load(db, ["case-a", "case-b"])
    r = fabctl("sterilize", "load", "result", LOAD, "--ci", "pass", "--bi", "positive")
    assert_one_line_error(r, 3, "2 guide(s) quarantined", f"case-a {sa[0]}", f"case-b {sb[0]}")
    assert sterilize.show_load(db, LOAD).status == "quarantined"
    before = snapshot(db)
    r = fabctl("sterilize", "load", "release", LOAD, "--by", "qa1", env=SIGN)
    assert_one_line_error(r, 3, "is quarantined", "BI is positive")
    assert_only_refusal(before, snapshot(db), "sterilization.refused", count=2)
    before = snapshot(db)
    r = fabctl("release", "case-a", "--by", "qa1", env=SIGN)
    assert_one_line_error(r, 3, "guide_available", "quarantined")
    assert_only_refusal(before, snapshot(db), "release.refused")


def test_user_bootstrap(home: Path, fabctl) -> None:
    r = fabctl("user", "add", "qa1", "--role", "qa", env=SIGN)
    assert_one_line_error(r, 3, "first user must be an admin")
    _ok(fabctl("user", "add", "admin1", "--role", "admin", env=SIGN))
    assert_one_line_error(fabctl("user", "add", "qa1", "--role", "qa", env=SIGN), 3, "needs an admin")
    r = fabctl("user", "add", "qa1", "--role", "qa", "--by", "admin1",
               env={**SIGN, "FABCTL_ADMIN_CREDENTIAL": "wrong-wrong"})
    assert_one_line_error(r, 3, "wrong credential")
    assert_one_line_error(fabctl("user", "add", "Anna Rossi", "--role", "qa"), 2, "not valid")
    users = _ok(fabctl("user", "ls", "--json"))
    assert users == [{"user": "admin1", "role": "admin", "created_utc": users[0]["created_utc"],
                      "created_by": "tech1"}]


def test_signing_credential_is_prompted_without_echo(home: Path) -> None:
    """On a terminal the credential is prompted and never echoed (a real pty)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FABCTL_CREDENTIAL", "FABCTL_ADMIN_CREDENTIAL")}
    main, sub = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "fabctl", "user", "add", "admin1", "--role", "admin"],
                         stdin=sub, stdout=sub, stderr=sub, env=env, cwd=ROOT)
    os.close(sub)
    seen = b""
    sent = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        prompts = seen.count(b"new credential for admin1") + seen.count(b"Repeat for confirmation")
        # getpass flushes typed-ahead input when it turns echo off, so answer only a complete prompt
        if prompts > sent and sent < 2 and seen.endswith(b": "):
            os.write(main, CRED.encode() + b"\n")
            sent += 1
        if p.poll() is not None and not ready:
            break
    p.wait(timeout=10)
    os.close(main)
    assert p.returncode == 0, seen
    assert b"new credential for admin1" in seen and CRED.encode() not in seen
    assert b"user admin1 added with role admin" in seen
