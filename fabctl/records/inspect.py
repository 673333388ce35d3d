"""Inspection after the last heat step: visual, needle go/no-go through the channel, fit (§2 H1, H2, H4).

Steam shrinks holes (Sharma 2020), so the needle check must follow sterilization: inspection is refused
(exit 3) until the guide's load has its results recorded. ``--channel-mm`` (the measured bore) below the
plan's needle OD plus the resin's channel clearance fails the inspection. A failed inspection is recorded
(``passed: false``) and reported with exit 3; the guide cannot be released.
"""

from __future__ import annotations

from fabctl import plan as planmod
from fabctl.case import PLAN_FILE, CaseStore, sha256_file
from fabctl.db import Database
from fabctl.errors import CaseError, CheckFailed, FabctlError
from fabctl.records import devices, privacy, sterilize
from fabctl.trace import log
from fabctl.trace.events import DesignRegistered
from fabctl.trace.record_events import InspectionRecorded, InspectionRefused

RESULTS = ("pass", "fail")


def _needle(store: CaseStore, events, case_id: str, revision: int) -> float:
    reg = devices.last(events, DesignRegistered.TYPE, revision=revision)
    if reg is None:
        raise CaseError(f"case {case_id}: revision {revision} is not registered")
    path = store.rev_dir(case_id, revision) / PLAN_FILE
    if not path.is_file() or sha256_file(path) != reg.payload["plan_sha256"]:
        raise CheckFailed(f"case {case_id} revision {revision}: the stored plan is missing or differs from "
                          "the trace", hint="`fabctl trace verify` names what changed")
    return planmod.load_plan(path).needle_od_mm


def record_inspection(db: Database, store: CaseStore, case_id: str, *, visual: str, needle_go: str, fit: str,
                      actor: str, channel_mm: float | None = None, ncr_ref: str | None = None) -> dict:
    """Record the inspection; refused before the load's results, failed (exit 3) when any check fails."""
    for name, v in (("--visual", visual), ("--needle-go", needle_go), ("--fit", fit)):
        if v not in RESULTS:
            raise CaseError(f"{name} {v!r}: use pass or fail")
    try:
        if ncr_ref is not None:
            privacy.check_id("--ncr", ncr_ref)
        if channel_mm is not None and not 0.0 < channel_mm < 20.0:
            raise CaseError(f"--channel-mm {channel_mm:g} is outside 0-20 mm")
        with db.write() as cur:
            events = devices.events_for(cur, case_id)
            pf = devices.done_print(events, case_id)
            active = devices.active_devices(cur, case_id)
            load = sterilize.load_of(cur, [d.serial for d in active])
            if load is None or load.result_utc is None:
                where = f"load {load.load_id} is {load.status}" if load else "the guide is in no load"
                raise devices.Refused(
                    f"inspection refused for case {case_id}: {where}; the needle go/no-go check must follow "
                    "the last heat step", [f"{where}: sterilization results not recorded"],
                    hint="record the load's results (`fabctl sterilize load result`) first")
            resin = devices.resin_of(pf)
            needle = _needle(store, events, case_id, pf.payload["revision"])
            clearance = resin.ifu.min_channel_clearance_mm.value
            limit = round(needle + clearance, 4)
            failed = [n for n, v in (("visual", visual), ("needle_go", needle_go), ("fit", fit)) if v == "fail"]
            if channel_mm is not None and channel_mm < limit:
                failed.append(f"channel {channel_mm:g} mm below needle OD {needle:g} + clearance "
                              f"{clearance:g} = {limit:g} mm")
            ev = InspectionRecorded(
                serials=[d.serial for d in active], load_id=load.load_id, load_result_utc=load.result_utc,
                visual=visual, needle_go=needle_go, fit=fit, channel_mm=channel_mm, channel_min_mm=limit,
                needle_od_mm=needle, channel_clearance_mm=clearance, ncr_ref=ncr_ref, passed=not failed,
                failed=failed)
            te = log.append(cur, case_id, ev, actor)
    except FabctlError as err:
        raise devices.refuse(db, case_id, InspectionRefused, actor, err) from None
    if failed:
        raise CheckFailed(f"inspection of case {case_id} failed: {'; '.join(failed)} (recorded)",
                          hint="record a nonconformance (--ncr REF); the guide cannot be released")
    return {"case": case_id, "event": te.case_seq, **te.payload}
