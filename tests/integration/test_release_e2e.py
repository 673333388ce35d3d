"""Issue 8 end to end through the real `fabctl` command (subprocesses, real SQLite): case-42 printed by
`fabctl print` on the simulated SL1S-class printer (mock PrusaLink, the real pipeline: gates, validate,
orient, support, slice, SL1 archive, upload, follow to done) in nextdent-sg, so it gets its device serial at
print completion; two more cases whose print events are written directly; users, post-processing, one
sterilization load with all three, CI pass / BI negative, load release, inspection, `fabctl release --by qa1`;
then the device history record (PDF rendered with pdftoppm, every checklist field in pdftotext, the serial,
no DRAFT), the label, `trace verify`, `trace export` + `trace verify --archive`, and a one-byte tampering of
the archive (exit 5). Also: a print handed to `fabctl queue serve` on the default simulated printer's
``mockprinter://`` transport ends done with its device serial.

Profiles: a copy whose nextdent-sg IFU values are marked verified by "TEST FIXTURE" (no shipped resin has
verified IFU values, so a real release needs such a copy) and whose sim-sl1s and nextdent-sg allow only
0.3 mm layers (as the fast test profiles of test_print_cli: about a hundred layers)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from mockprinter.prusalink import MockPrusaLink, MockSL1
from PIL import Image

from fabctl import jobstore
from fabctl.db import open_db
from fabctl.records import devices, postprocess
from fabctl.report import dhr
from fabctl.trace import log
from tests.conftest import ROOT, assert_one_line_error
from tests.integration.print_fixtures import EXAMPLE, fast_profiles, set_key
from tests.unit.records.helpers import CRED, LOAD, printed, register, verified_profiles

pytestmark = pytest.mark.timeout(600)

PASSWORD = "test-only-password"
SIGN = {"FABCTL_CREDENTIAL": CRED}
PP = ["--wash-solvent", "ipa", "--wash-min", "5", "--dry-min", "30", "--cure-temp-c", "60",
      "--cure-min", "20", "--cure-unit", "CURE-2", "--support-removal", "flush cut; intaglio untouched"]


def _ok(r) -> dict | str:
    assert r.code == 0, (r.code, r.out, r.err)
    return json.loads(r.out) if r.out.lstrip().startswith(("{", "[")) else r.out


def _profiles(tmp: Path, url: str) -> Path:
    prof = verified_profiles(tmp / "profiles")
    p = prof / "printers" / "sim-sl1s.toml"
    p.write_text(p.read_text().replace("layer_heights_mm = [0.025, 0.035, 0.05, 0.1]",
                                       "layer_heights_mm = [0.3]"))
    set_key(p, "url", f'"{url}"')
    r = prof / "resins" / "nextdent-sg.toml"
    text = r.read_text().replace("[ifu.layer_heights_mm]\nvalue = [0.05, 0.1]",
                                 "[ifu.layer_heights_mm]\nvalue = [0.3]")
    assert "value = [0.3]" in text
    r.write_text(text)
    return prof


def _flip_event_byte(src: Path, dst: Path) -> str:
    """Copy the archive with one byte of one event changed (a digit of a timestamp); the member's name."""
    with zipfile.ZipFile(src) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    name = "events.jsonl"
    data = members[name]
    i = data.index(b'"at_utc"') + len(b'"at_utc": "20')
    members[name] = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
    with zipfile.ZipFile(dst, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)
    return name


@pytest.mark.db   # about 75 s here: also run with the trace on PostgreSQL (FABCTL_TEST_DB=postgres)
def test_print_postprocess_sterilize_inspect_release_report_archive(fabctl, fabctl_home: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    mock = MockPrusaLink(password=PASSWORD, printer=MockSL1(time_scale=0.0005)).start()
    try:
        prof = _profiles(tmp_path, mock.url)
        monkeypatch.setenv("FABCTL_PROFILES_DIR", str(prof))
        monkeypatch.setenv("FABCTL_PRUSALINK_PASSWORD", PASSWORD)
        _ok(fabctl("case", "new", "case-42", "--mesh", str(EXAMPLE / "guide.stl"), "--plan",
                   str(EXAMPLE / "plan.json"), "--units", "mm"))
        _ok(fabctl("resin", "lot", "add", "nextdent-sg", "sg-lot-e2e", "--expires", "2027-06-30"))
        _ok(fabctl("printer", "calibrate", "sim-sl1s", "--due", "2027-01-31"))
        doc = _ok(fabctl("print", "case-42", "--printer", "sim-sl1s", "--resin", "nextdent-sg", "--lot",
                         "sg-lot-e2e", "--json", timeout=400))
        uploaded = list(mock.printer.files.values())
        assert uploaded == [Path(doc["job_file"]).read_bytes()]
    finally:
        mock.vanish()
    assert (doc["state"], doc["printer"], doc["resin"], doc["lot"]) == ("done", "sim-sl1s", "nextdent-sg",
                                                                      "sg-lot-e2e")
    year = datetime.now(UTC).year
    serial = f"FAB-{year}-000001"
    assert doc["device_serials"] == [serial]

    # two more cases of the same load, printed elsewhere (their print events written directly)
    db = open_db(fabctl_home)
    for c in ("case-43", "case-44"):
        register(fabctl_home, c)
        assert printed(db, c) == [f"FAB-{year}-00000{2 if c == 'case-43' else 3}"]
        postprocess.record_postprocess(db, c, wash_solvent="ipa", wash_min=5, dry_min=30, cure_temp_c=60,
                                       cure_min=20, actor="tech1")

    _ok(fabctl("user", "add", "admin1", "--role", "admin", env=SIGN))
    for uid, role in (("qa1", "qa"), ("tech1", "technician")):
        _ok(fabctl("user", "add", uid, "--role", role, "--by", "admin1",
                   env={**SIGN, "FABCTL_ADMIN_CREDENTIAL": CRED}))
    pp = _ok(fabctl("postprocess", "case-42", *PP, "--json"))
    assert pp["cure_temp_c_limit"]["status"] == "verified"
    _ok(fabctl("sterilize", "load", "new", LOAD, "--method", "steam", "--temp-c", "121", "--hold-min", "20",
               "--sterilizer", "AUTOCLAVE-A3", "--cycle", "8812"))
    _ok(fabctl("sterilize", "load", "add", LOAD, "case-42", "case-43", "case-44"))
    _ok(fabctl("sterilize", "load", "result", LOAD, "--ci", "pass", "--bi", "negative"))
    rel = _ok(fabctl("sterilize", "load", "release", LOAD, "--by", "qa1", "--json", env=SIGN))
    assert rel["status"] == "released"
    show = _ok(fabctl("sterilize", "load", "show", LOAD, "--json"))
    assert {(i["case_id"], i["serial"]) for i in show["contents"]} == {
        ("case-42", serial), ("case-43", f"FAB-{year}-000002"), ("case-44", f"FAB-{year}-000003")}
    ins = _ok(fabctl("inspect", "case-42", "--visual", "pass", "--needle-go", "pass", "--fit", "pass",
                     "--channel-mm", "3.25", "--json"))
    assert ins["passed"] and ins["load_id"] == LOAD
    out = _ok(fabctl("release", "case-42", "--by", "qa1", "--json", env=SIGN))
    assert out["released"] and out["serials"] == [serial] and out["signed_by"] == "qa1"
    assert out["quantity"] == {"made": 1, "released": 1, "scrapped": 0, "quarantined": 0}

    # the device history record
    rdir = tmp_path / "report"
    rep = _ok(fabctl("report", "case-42", "-o", str(rdir), "--json"))
    assert rep["status"] == "RELEASED" and rep["released"] and rep["trace_ok"] and rep["serial"] == serial
    files = {k: Path(v) for k, v in rep["files"].items()}
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(files["pdf"]), str(tmp_path / "pg")], check=True)
    pages = [np.asarray(Image.open(p).convert("L")) for p in sorted(tmp_path.glob("pg-*.png"))]
    assert len(pages) >= 3
    ink = [float((pg < 128).mean()) for pg in pages]
    assert all(i > 0.002 for i in ink) and all(pg.std() > 10 for pg in pages), ink   # no blank page
    raw = subprocess.run(["pdftotext", "-raw", str(files["pdf"]), "-"], capture_output=True, text=True,
                         check=True).stdout
    text = re.sub(r"\s+", " ", raw)
    labels = [(fid, lab) for _, _, rows in dhr.CHECKLIST for fid, _, lab, _ in rows]
    assert len(labels) == 58
    missing = [f"{fid} {lab}" for fid, lab in labels if f"{fid} {lab}" not in text]
    assert missing == []
    assert serial in text and "RELEASED" in text and "DRAFT" not in text
    assert doc["job_file_sha256"][:16] in text
    label = Image.open(files["label"])
    assert files["label"].suffix == ".png" and label.size[0] > 300 and label.size[1] > 200

    # the trace, in the database and as an archive checked on "another machine"
    v = _ok(fabctl("trace", "verify", "--json"))
    assert v["ok"] is True and v["problems"] == []
    archive = tmp_path / "export" / "case-42.zip"
    exp = _ok(fabctl("trace", "export", "case-42", "-o", str(archive), "--json"))
    assert exp["events"] >= 20
    other = {"FABCTL_HOME": str(tmp_path / "other-machine")}
    va = _ok(fabctl("trace", "verify", "--archive", str(archive), "--json", env=other))
    assert va["ok"] is True
    bad = tmp_path / "tampered.zip"
    _flip_event_byte(archive, bad)
    assert_one_line_error(fabctl("trace", "verify", "--archive", str(bad), env=other), 5)


def test_queued_print_on_a_mockprinter_url_ends_done_with_its_serial(
        fabctl, fabctl_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fabctl queue serve` registers the mockprinter:// scheme before its workers open the printer."""
    prof = fast_profiles(tmp_path / "profiles")
    p = prof / "printers" / "sim-laser.toml"
    p.write_text(p.read_text().replace("layer_heights_mm = [0.025, 0.05, 0.1]",
                                       "layer_heights_mm = [0.1, 0.3]"))
    set_key(p, "url", '"mockprinter://sim-laser?exposure_scale=0&rx_buffer=8192&bufsize=64"')
    set_key(p, "rx_buffer_bytes", "8192")
    r = prof / "resins" / "demo-grey.toml"
    r.write_text(r.read_text().replace("[ifu.layer_heights_mm]\nvalue = [0.1]",
                                       "[ifu.layer_heights_mm]\nvalue = [0.3]"))
    monkeypatch.setenv("FABCTL_PROFILES_DIR", str(prof))
    _ok(fabctl("case", "new", "case-42", "--mesh", str(EXAMPLE / "guide.stl"), "--plan",
               str(EXAMPLE / "plan.json"), "--units", "mm"))
    queued = _ok(fabctl("print", "case-42", "--queue", "--json"))
    assert queued["state"] == "queued" and queued["printer"] == "sim-laser"
    err = open(tmp_path / "daemon.log", "w")
    daemon = subprocess.Popen([sys.executable, "-m", "fabctl", "queue", "serve", "--printers", "sim-laser",
                               "--poll-s", "0.1", "--lease-s", "10"], stdout=subprocess.DEVNULL, stderr=err,
                              cwd=ROOT, env=dict(os.environ))
    db = open_db(fabctl_home)
    try:
        end = time.monotonic() + 300
        while not (job := jobstore.get(db, queued["job_id"])).terminal and daemon.poll() is None:
            assert time.monotonic() < end, f"job still {job.state.value} after 300 s"
            time.sleep(0.5)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
        err.close()
    assert (job.state.value, job.reason) == ("done", None), (tmp_path / "daemon.log").read_text()[-2000:]
    devs = devices.case_devices(db, "case-42")
    assert [(d.build_id, d.status) for d in devs] == [(job.job_id, "made")]
    types = [e.type for e in log.events(db, "case-42")]
    i = types.index("print.finished")
    assert types[i:i + 3] == ["print.finished", "device.assigned", "job.state"]
    assert _ok(fabctl("trace", "verify", "--json"))["ok"] is True
