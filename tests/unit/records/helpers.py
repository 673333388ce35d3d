"""Shared set-up for the records tests: a registered example case with a finished print written directly
to the trace (the pipeline that writes these events is another engineer's), and a profiles tree whose
nextdent-sg IFU values are marked verified (the shipped profile has none verified yet: see the report)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from fabctl import __version__, intake
from fabctl.case import CaseStore
from fabctl.db import Database, open_db
from fabctl.records import devices
from fabctl.trace import log
from fabctl.trace.events import DesignRegistered
from fabctl.trace.print_events import PrintFinished, PrintStarted
from fabctl.trace.support_events import SupportRecorded
from fabctl.trace.validation_events import CheckSummary, ValidationRecorded

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "case-42"
SHA = "ab" * 32
CRED = "correct horse battery"


def verified_profiles(dest: Path) -> Path:
    """A copy of profiles/ in which every IFU value of nextdent-sg is marked verified by a test document.

    Stands in for the person who enters the IFU values with the document's revision; the shipped profile
    stays unverified."""
    shutil.copytree(ROOT / "profiles", dest)
    path = dest / "resins" / "nextdent-sg.toml"
    lines = []
    for line in path.read_text().splitlines():
        if re.match(r"^(source|revision) = ", line):
            continue
        if re.match(r"^status = ", line):
            lines += ['status = "verified"', 'source = "TEST FIXTURE: stands in for the NextDent SG IFU"',
                      'revision = "test-rev-1"']
            continue
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return dest


def register(home: Path, case_id: str) -> Database:
    db = open_db(home)
    intake.register(db, CaseStore(home), case_id, EXAMPLE / "guide.stl", EXAMPLE / "plan.json", "mm", "tech1")
    return db


def printed(db: Database, case_id: str, *, resin: str = "nextdent-sg", lot_expires: str = "2027-06-30",
            started: str = "2026-11-24T08:00:00+00:00", state: str = "done", validation_ok: bool = True,
            protected_contacts: int = 0, quantity: int = 1) -> list[str]:
    """Write validation, support and a print that finished ``state``; assign serials when done."""
    reg = [e for e in log.events(db, case_id) if e.type == DesignRegistered.TYPE][-1].payload
    rev, dsha = reg["revision"], reg["design_sha256"]
    checks = [CheckSummary(name="watertight", passed=True, severity="error", value=True, limit=True)]
    job = f"job-{case_id}"
    common = dict(job_id=job, revision=rev, design_sha256=dsha, job_sha256=SHA, printer_id="sim-sl1s",
                  resin_id=resin, resin_lot="LOT-7", resin_lot_expires=lot_expires, started_utc=started,
                  fabctl_version=__version__)
    with db.write() as cur:
        log.append(cur, case_id, ValidationRecorded(
            revision=rev, design_sha256=dsha, plan_sha256=reg["plan_sha256"], ok=validation_ok,
            failed=[] if validation_ok else ["min_wall_thickness"], checks=checks, min_wall_thickness_mm=2.4,
            resin=resin, resin_sha256=SHA, printer="sim-sl1s", printer_sha256=SHA, triangles=10, bodies=1,
            volume_mm3=1000.0, fabctl_version=__version__), "tech1")
        log.append(cur, case_id, SupportRecorded(
            revision=rev, design_sha256=dsha, orient_key=SHA, artifact_key=SHA, process_sha256=SHA,
            printer="sim-sl1s", printer_sha256=SHA, cached=False, transform=[[1, 0, 0, 0], [0, 1, 0, 0],
                                                                            [0, 0, 1, 0], [0, 0, 0, 1]],
            support_points=40, protected_contacts=protected_contacts, unsupported_islands=0,
            proof="passed" if protected_contacts == 0 else "failed", proof_counts={}, stats={},
            fabctl_version=__version__), "tech1")
        log.append(cur, case_id, PrintStarted(
            **common, job_format="sl1", printer_profile_sha256=SHA, printer_model="SL1S (simulated)",
            printer_firmware="sim-1", printer_serial="SIM-0001", transport="prusalink",
            resin_profile_sha256=SHA), "tech1")
        log.append(cur, case_id, PrintFinished(**common, state=state, finished_utc="2026-11-24T10:00:00+00:00"),
                   "tech1")
        if state == "done":
            return devices.assign_device(cur, case_id, job, "sim-sl1s", quantity, actor="tech1")
    return []


TABLES = ("trace_events", "trace_heads", "users", "builds", "devices", "sterilization_loads", "load_items",
          "signatures")


def snapshot(db: Database) -> dict[str, list[tuple]]:
    """Every row of the trace and records tables (through the store's own API, so on any backend), to show
    that a refusal changed nothing but the trace. ``trace_events`` rows are (seq, case, case_seq, type, at,
    actor, payload, prev_hash, hash)."""
    with db.read() as cur:
        return {n: sorted((tuple(r) for r in cur.execute(f"SELECT * FROM {n}").fetchall()), key=repr)
                for n in TABLES}


def assert_only_refusal(before: dict, after: dict, refusal_type: str, count: int = 1) -> list[tuple]:
    """``after`` differs from ``before`` only by ``count`` new trace events, all of ``refusal_type``."""
    for table in before:
        if table in ("trace_events", "trace_heads"):
            continue
        assert before[table] == after[table], f"table {table} changed on a refusal"
    new = [r for r in after["trace_events"] if r not in before["trace_events"]]
    assert len(new) == count, new
    assert all(r[3] == refusal_type for r in new), [r[3] for r in new]
    assert len(after["trace_events"]) == len(before["trace_events"]) + count
    return new


LOAD = "SPD-A3-2026-11-26-004"


def staff(db: Database) -> None:
    """admin1 (admin), qa1 (qa) and tech1 (technician), all with credential ``CRED``."""
    from fabctl.records import users

    users.add_user(db, "admin1", "admin", CRED, "tech1")
    users.add_user(db, "qa1", "qa", CRED, "tech1", admin_id="admin1", admin_credential=CRED)
    users.add_user(db, "tech1", "technician", CRED, "tech1", admin_id="admin1", admin_credential=CRED)


def through_load(db: Database, cases: list[str], *, temp_c: float = 121, result: tuple[str, str] | None = None,
                 release_by: str | None = None) -> None:
    """Post-process ``cases`` within the nextdent-sg IFU and put them in load ``LOAD`` (steam, 20 min);
    optionally record ``result`` (ci, bi) and release the load."""
    from fabctl.records import postprocess, sterilize

    for c in cases:
        postprocess.record_postprocess(db, c, wash_solvent="ipa", wash_min=5, dry_min=30, cure_temp_c=60,
                                       cure_min=20, actor="tech1", cure_unit="CURE-2",
                                       support_removal="flush cut; intaglio untouched")
    sterilize.new_load(db, LOAD, "steam", temp_c, 20, "AUTOCLAVE-A3", 8812, "spd1")
    sterilize.add_cases(db, LOAD, cases, "spd1")
    if result:
        sterilize.record_result(db, LOAD, *result, "spd1")
    if release_by:
        sterilize.release_load(db, LOAD, release_by, CRED, "spd1")
