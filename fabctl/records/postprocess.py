"""Post-processing (wash, dry, post-cure, support removal) checked against the resin's IFU ranges.

The resin is the one the case was printed in (its ``print.finished`` event). A value outside the IFU range
refuses the whole step (exit 3), naming every value and its limit, and records ``postprocess.refused``; a
step within the ranges records ``postprocess.recorded`` with the values, the limits and their IFU status.
Post-processing happens once per guide, before the guide joins a sterilization load.
"""

from __future__ import annotations

from fabctl import profiles
from fabctl.db import Database
from fabctl.errors import CheckFailed, FabctlError
from fabctl.records import devices, privacy
from fabctl.trace import log
from fabctl.trace.record_events import Limit, PostprocessRecorded, PostprocessRefused


def _limit(r: profiles.Range, sourced: profiles.Sourced) -> Limit:
    return Limit(min=r.min, max=r.max, status=sourced.status, source=sourced.source)


def ifu_violations(resin: profiles.ResinProfile, wash_solvent: str, wash_min: float, dry_min: float,
                   cure_temp_c: float, cure_min: float) -> list[str]:
    """Every value outside the resin's IFU, as ``name value outside min-max (IFU status)``."""
    wash, cure = resin.ifu.wash, resin.ifu.post_cure
    out = []
    if wash_solvent != wash.value.solvent:
        out.append(f"wash solvent {wash_solvent!r} is not the IFU's {wash.value.solvent!r}")
    checks = [
        ("wash", wash_min, "min", wash.value.time_min, wash.status),
        ("dry", dry_min, "min", wash.value.dry_min, wash.status),
        ("cure temperature", cure_temp_c, "C", cure.value.temp_c, cure.status),
        ("cure time", cure_min, "min", cure.value.time_min, cure.status),
    ]
    for name, value, unit, rng, status in checks:
        if not rng.contains(value):
            out.append(f"{name} {value:g} {unit} outside {resin.id} IFU {rng.min:g}-{rng.max:g} {unit} ({status})")
    return out


def record_postprocess(db: Database, case_id: str, *, wash_solvent: str, wash_min: float, dry_min: float,
                       cure_temp_c: float, cure_min: float, actor: str, cure_unit: str | None = None,
                       support_removal: str | None = None) -> dict:
    """Record the case's post-processing; ``CheckFailed`` (exit 3) outside the IFU, ``InputError`` for text."""
    try:
        if cure_unit is not None:
            privacy.check_id("--cure-unit", cure_unit)
        privacy.check_text("--support-removal", support_removal)
        privacy.check_id("--wash-solvent", wash_solvent)
    except FabctlError as err:
        raise devices.refuse(db, case_id, PostprocessRefused, actor, err) from None
    try:
        with db.write() as cur:
            events = devices.events_for(cur, case_id)
            pf = devices.done_print(events, case_id)
            active = devices.active_devices(cur, case_id)
            resin = devices.resin_of(pf)
            reasons = ifu_violations(resin, wash_solvent, wash_min, dry_min, cure_temp_c, cure_min)
            marks = ",".join("?" * len(active))
            in_load = cur.execute(f"SELECT load_id FROM load_items WHERE serial IN ({marks})",
                                  tuple(d.serial for d in active)).fetchone()
            if in_load:
                reasons.append(f"the guide is already in sterilization load {in_load[0]}: post-processing "
                               "comes before sterilization")
            done = devices.last(events, PostprocessRecorded.TYPE)
            if done is not None and done.seq > pf.seq:
                reasons.append(f"post-processing of this print is already recorded (event {done.case_seq})")
            if reasons:
                raise devices.Refused(f"post-processing refused for case {case_id}: {'; '.join(reasons)}",
                                      reasons, hint=f"follow the {resin.id} IFU ranges (`fabctl profile show {resin.id}`)")
            wash, cure = resin.ifu.wash, resin.ifu.post_cure
            ev = PostprocessRecorded(
                serials=[d.serial for d in active], resin_id=resin.id,
                resin_profile_sha256=profiles.profile_hash(resin),
                wash_solvent=wash_solvent, wash_solvent_ifu=wash.value.solvent,
                wash_min=wash_min, wash_min_limit=_limit(wash.value.time_min, wash),
                dry_min=dry_min, dry_min_limit=_limit(wash.value.dry_min, wash),
                cure_temp_c=cure_temp_c, cure_temp_c_limit=_limit(cure.value.temp_c, cure),
                cure_min=cure_min, cure_min_limit=_limit(cure.value.time_min, cure),
                cure_wavelength_nm=cure.value.wavelength_nm, cure_unit=cure_unit, support_removal=support_removal,
            )
            te = log.append(cur, case_id, ev, actor)
    except CheckFailed as err:
        raise devices.refuse(db, case_id, PostprocessRefused, actor, err) from None
    return {"case": case_id, "event": te.case_seq, **te.payload}
