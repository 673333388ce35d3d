"""Build a real case in a real store for the report and archive tests: intake, then every later event
written with its model (the print and records stages are written by others; their events are what we read)."""

from __future__ import annotations

import json
from pathlib import Path

import trimesh

from fabctl import intake
from fabctl.case import CaseStore
from fabctl.db import Database, open_db
from fabctl.trace import log
from fabctl.trace.print_events import PrintFinished, PrintStarted
from fabctl.trace.record_events import (
    DeviceAssigned,
    InspectionRecorded,
    Limit,
    LoadItem,
    PostprocessRecorded,
    ReleaseSigned,
    SterilizationLoadAdded,
    SterilizationLoadReleased,
    SterilizationLoadResult,
)
from fabctl.trace.slice_events import SliceRecorded
from fabctl.trace.support_events import SupportRecorded
from fabctl.trace.validation_events import CheckSummary, ValidationRecorded

PLAN = {
    "vertebral_level": "L3", "side": "left", "needle_gauge": 11, "needle_od_mm": 3.048,
    "entry_point_mm": [10.0, 0.0, 0.0], "direction": [0.0, 0.0, -1.0], "target_depth_mm": 80.0,
    "channel_diameter_mm": 3.3, "slot_length_mm": 10.0, "slot_direction": [0.0, 1.0, 0.0],
}
SERIAL = "FAB-2026-000417"
LOAD = "spd-a3-2026-11-26-004"
H = {k: (c * 64) for k, c in (("printer", "a"), ("resin", "b"), ("process", "c"), ("job", "d"), ("sig", "e"),
                             ("key", "f"), ("rec", "1"))}


def new_case(home: Path, tmp: Path, case_id: str = "case-42") -> tuple[Database, CaseStore, dict]:
    """Register a small box design; returns the db, the store and its design.registered payload."""
    mesh = tmp / f"{case_id}.stl"
    mesh.write_bytes(trimesh.creation.box(extents=(60.0, 40.0, 3.0)).export(file_type="stl"))
    plan = tmp / f"{case_id}-plan.json"
    plan.write_text(json.dumps(PLAN))
    db, store = open_db(home), CaseStore(home)
    intake.register(db, store, case_id, mesh, plan, "mm", "tech1")
    reg = next(e for e in log.events(db, case_id) if e.type == "design.registered")
    return db, store, reg.payload


def prepared(db: Database, case_id: str, reg: dict, job_sha: str = H["job"]) -> None:
    """Validation, supports and slice events of revision 1."""
    d = reg["design_sha256"]
    checks = [CheckSummary(name="watertight", passed=True, severity="error", value=True, limit=None),
              CheckSummary(name="min_wall_thickness", passed=True, severity="error", value=3.0, limit=2.0)]
    log.record(db, case_id, ValidationRecorded(
        revision=1, design_sha256=d, plan_sha256=reg["plan_sha256"], ok=True, failed=[], checks=checks,
        min_wall_thickness_mm=3.0, resin="formlabs-sg-v1", resin_sha256=H["resin"], printer="sim-laser",
        printer_sha256=H["printer"], triangles=12, bodies=1, volume_mm3=7200.0, fabctl_version="0.1.0"),
        "tech1")
    log.record(db, case_id, SupportRecorded(
        revision=1, design_sha256=d, orient_key=H["key"], artifact_key=H["key"], process_sha256=H["process"],
        printer="sim-laser", printer_sha256=H["printer"], cached=False,
        transform=[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]], support_points=35,
        protected_contacts=0, unsupported_islands=0, proof="passed", proof_counts={}, stats={},
        fabctl_version="0.1.0"), "tech1")
    log.record(db, case_id, SliceRecorded(
        revision=1, design_sha256=d, job_sha256=job_sha, job_format="gcode", printer_id="sim-laser",
        printer_profile_sha256=H["printer"], resin_id="formlabs-sg-v1", resin_profile_sha256=H["resin"],
        as_is=False, layer_count=60, layer_height_mm=0.05, first_layer_height_mm=0.05,
        placement_mm=[62.0, 48.5, 5.0], volume_ml=7.2, print_time_s=3600.0, islands=0, resin_traps=0,
        suction_cups=0, open_chains=0, fabctl_version="0.1.0"), "tech1")


def printed(db: Database, case_id: str, reg: dict, job_sha: str = H["job"]) -> None:
    d = reg["design_sha256"]
    common = dict(job_id="job-7", revision=1, design_sha256=d, job_sha256=job_sha, printer_id="sim-laser",
                  resin_id="formlabs-sg-v1", resin_lot="sg-lot-2607-114", resin_lot_expires="2027-08-31",
                  started_utc="2026-11-25T08:00:00+00:00", fabctl_version="0.1.0")
    log.record(db, case_id, PrintStarted(
        **common, job_format="gcode", printer_profile_sha256=H["printer"],
        printer_model="simulated laser SLA",
        printer_firmware="mock-1.2.3", printer_serial="SIM-0001", transport="serial",
        resin_profile_sha256=H["resin"]), "tech1")
    common.pop("fabctl_version")
    log.record(db, case_id, PrintFinished(**common, state="done", finished_utc="2026-11-25T09:00:00+00:00",
                                          fabctl_version="0.1.0"), "tech1")
    log.record(db, case_id, DeviceAssigned(build_id="job-7", job_id="job-7", printer_id="sim-laser",
                                           serials=[SERIAL], quantity_made=1), "tech1")


def finished(db: Database, case_id: str, release: bool = True) -> None:
    """Post-processing, the sterilization load (released), inspection and (optionally) the release."""
    lim = Limit(min=5, max=20, status="verified", source="IFU rev 3")
    log.record(db, case_id, PostprocessRecorded(
        serials=[SERIAL], resin_id="formlabs-sg-v1", resin_profile_sha256=H["resin"], wash_solvent="ipa",
        wash_solvent_ifu="ipa >= 99%", wash_min=10, wash_min_limit=lim, dry_min=30,
        dry_min_limit=Limit(min=30, max=600, status="verified"), cure_temp_c=60,
        cure_temp_c_limit=Limit(min=60, max=60, status="verified"), cure_min=30,
        cure_min_limit=Limit(min=30, max=30, status="verified"), cure_wavelength_nm=405,
        cure_unit="form-cure-1", support_removal="flush cut"), "tech1")
    facts = dict(load_id=LOAD, method="steam-gravity", temp_c=121, hold_min=30, sterilizer_id="autoclave-a3",
                 cycle_no=8812, load_created_utc="2026-11-25T10:00:00+00:00", load_created_by="spd1",
                 contents=[LoadItem(case_id=case_id, serial=SERIAL)])
    log.record(db, case_id, SterilizationLoadAdded(
        **facts, serials=[SERIAL], resin_id="formlabs-sg-v1", resin_max_temp_c=121,
        resin_hold_min_limit=Limit(min=15, max=30, status="verified"), resin_max_cycles=1, previous_cycles=0),
        "spd1")
    log.record(db, case_id, SterilizationLoadResult(**facts, ci="pass", bi="negative", status="processed",
                                                    quarantined=[]), "spd1")
    log.record(db, case_id, SterilizationLoadReleased(**facts, ci="pass", bi="negative", released_by="qa1",
                                                      released_utc="2026-11-26T07:20:00+00:00",
                                                      signature_sha256=H["sig"]), "qa1")
    log.record(db, case_id, InspectionRecorded(
        serials=[SERIAL], load_id=LOAD, load_result_utc="2026-11-26T07:00:00+00:00", visual="pass",
        needle_go="pass", fit="pass", channel_mm=3.25, channel_min_mm=3.1, needle_od_mm=3.048,
        channel_clearance_mm=0.2, ncr_ref=None, passed=True, failed=[]), "tech1")
    if release:
        log.record(db, case_id, ReleaseSigned(
            user_id="qa1", role="qa", meaning="approval", signed_utc="2026-11-26T07:40:00+00:00",
            record_sha256=H["rec"], record={"serials": [SERIAL], "case_id": case_id},
            retention_until="2036-11-26"), "qa1")


def full_case(home: Path, tmp: Path, case_id: str = "case-42", release: bool = True):
    db, store, reg = new_case(home, tmp, case_id)
    prepared(db, case_id, reg)
    printed(db, case_id, reg)
    finished(db, case_id, release)
    return db, store, reg
