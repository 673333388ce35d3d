"""The release gate and its signature (issue 8 item 6; clinical-traceability.md §2 K1, K2, K4).

``conditions`` evaluates every condition of a clinical release from the case's trace and the records
tables, each with a detail naming the value and the limit. ``release_case`` checks the signer's role, then
the conditions (exit 3 listing every unmet one, recorded as ``release.refused``), then asks for the
credential (``credential()`` is called only then) and, if it matches, signs the canonical release record
(which includes the trace head at signing) and appends ``release.signed``; a wrong credential is recorded
as ``signature.refused`` with no credential material.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime

from fabctl import profiles
from fabctl.case import DESIGN_FILE, PLAN_FILE, CaseStore, sha256_file
from fabctl.db import Database
from fabctl.records import devices, postprocess, retention, sterilize, users
from fabctl.trace import log
from fabctl.trace.events import DesignApproved, DesignRegistered
from fabctl.trace.print_events import PrintFinished
from fabctl.trace.record_events import (
    InspectionRecorded,
    PostprocessRecorded,
    ReleaseRefused,
    ReleaseSigned,
    SignatureRefused,
    SterilizationLoadResult,
)
from fabctl.trace.support_events import SupportRecorded
from fabctl.trace.validation_events import ValidationRecorded

RELEASE_ROLES = ("qa",)


@dataclass(frozen=True)
class Condition:
    name: str
    ok: bool
    detail: str


def _design(events, pf) -> list[Condition]:
    rev, sha = pf["revision"], pf["design_sha256"]
    v = devices.last(events, ValidationRecorded.TYPE, revision=rev, design_sha256=sha)
    out = [Condition("validation_passed", bool(v and v.payload["ok"]),
                     f"revision {rev}: " + ("no validation recorded" if v is None else
                                            "passed" if v.payload["ok"] else
                                            f"failed ({', '.join(v.payload['failed'])})"))]
    reg = devices.last(events, DesignRegistered.TYPE, revision=rev)
    newest = devices.last(events, DesignRegistered.TYPE)
    if reg is None or reg.payload["design_sha256"] != sha:
        ok, detail = False, f"printed design {sha[:12]} is not registered revision {rev}'s design"
    elif reg.payload["needs_approval"] and devices.last(events, DesignApproved.TYPE, revision=rev,
                                                        design_sha256=sha) is None:
        ok, detail = False, f"revision {rev} needs approval and has none"
    elif newest is not None and newest.payload["revision"] != rev:
        ok, detail = False, f"revision {rev} was printed but revision {newest.payload['revision']} supersedes it"
    else:
        ok, detail = True, f"revision {rev} design {sha[:12]} matches the registered/approved design"
    out.append(Condition("design_matches_approved", ok, detail))
    s = devices.last(events, SupportRecorded.TYPE, revision=rev, design_sha256=sha)
    ok = bool(s and s.payload["proof"] == "passed" and s.payload["protected_contacts"] == 0)
    out.append(Condition("supports_clear", ok, "no support recorded" if s is None else
                         f"proof {s.payload['proof']}, {s.payload['protected_contacts']} protected contact(s) "
                         "(limit 0)"))
    return out


def _material(events, pf_ev) -> list[Condition]:
    pf = pf_ev.payload
    started = datetime.fromisoformat(pf["started_utc"]).date()
    expires = date.fromisoformat(pf["resin_lot_expires"][:10])
    out = [Condition("lot_in_date", expires >= started,
                     f"lot {pf['resin_lot']} expires {expires}, printed {started}")]
    resin = profiles.resin(pf["resin_id"])
    blockers = resin.release_blockers
    out.append(Condition("resin_ifu_verified", not blockers,
                         f"resin {resin.id}: " + ("; ".join(blockers) if blockers else "IFU values verified")))
    pp = devices.last(events, PostprocessRecorded.TYPE)
    if pp is None or pp.seq < pf_ev.seq:
        out.append(Condition("postprocess_within_ifu", False, "no post-processing recorded after the print"))
    else:
        p = pp.payload
        bad = postprocess.ifu_violations(resin, p["wash_solvent"], p["wash_min"], p["dry_min"],
                                         p["cure_temp_c"], p["cure_min"])
        out.append(Condition("postprocess_within_ifu", not bad, "; ".join(bad) or
                             f"wash {p['wash_min']:g} min, dry {p['dry_min']:g} min, cure {p['cure_temp_c']:g} C "
                             f"{p['cure_min']:g} min within {resin.id} IFU"))
    return out


def _after_print(cur, events, serials: list[str]) -> list[Condition]:
    load = sterilize.load_of(cur, serials)
    if load is None:
        return [Condition("load_released", False, "the guide is in no sterilization load"),
                Condition("inspection_passed", False, "no sterilization, so no inspection after it")]
    ok = load.status == "released" and load.ci == "pass" and load.bi == "negative"
    out = [Condition("load_released", ok, f"load {load.load_id}: {load.status}, CI {load.ci or '-'}, "
                                          f"BI {load.bi or '-'} (needs released, CI pass, BI negative)")]
    res = devices.last(events, SterilizationLoadResult.TYPE, load_id=load.load_id)
    ins = devices.last(events, InspectionRecorded.TYPE, load_id=load.load_id)
    if ins is None or res is None or ins.seq < res.seq:
        out.append(Condition("inspection_passed", False, f"no inspection recorded after load {load.load_id}"))
    else:
        failed = ins.payload["failed"]
        out.append(Condition("inspection_passed", ins.payload["passed"],
                             "failed: " + "; ".join(failed) if failed else
                             f"visual, needle go/no-go and fit passed after load {load.load_id}"))
    return out


def _files(store: CaseStore, events, pf: dict) -> list[str]:
    """The printed revision's stored design and plan against the hashes the trace holds for them."""
    reg = devices.last(events, DesignRegistered.TYPE, revision=pf["revision"])
    if reg is None:
        return []
    d = store.rev_dir(reg.case_id, pf["revision"])
    out = []
    for name, sha in ((DESIGN_FILE, reg.payload["design_sha256"]), (PLAN_FILE, reg.payload["plan_sha256"])):
        if not (d / name).is_file() or sha256_file(d / name) != sha:
            out.append(f"revision {pf['revision']} {name} is missing or differs from its hash in the trace")
    return out


def conditions(db: Database, case_id: str, store: CaseStore | None = None) -> tuple[list[Condition], dict]:
    """Every release condition for ``case_id`` and the facts the release record carries. With ``store``,
    the printed revision's stored design and plan are checked against the trace too."""
    with db.read() as cur:
        events = devices.events_for(cur, case_id)
        devs = devices.devices_in(cur, case_id)
        active = [d for d in devs if d.status == "made"]
        pf_ev = devices.last(events, PrintFinished.TYPE)
        out = [Condition("print_done", bool(pf_ev and pf_ev.payload["state"] == "done"),
                         "no print recorded" if pf_ev is None else f"job {pf_ev.payload['job_id']} "
                         f"{pf_ev.payload['state']}")]
        out.append(Condition("guide_available", bool(active), f"{len(active)} guide(s) in production of "
                             f"{len(devs)} made: " + ", ".join(f"{d.serial} {d.status}" for d in devs)))
        if pf_ev is not None:
            out += _design(events, pf_ev.payload) + _material(events, pf_ev)
        out += _after_print(cur, events, [d.serial for d in active])
    rep = log.verify(db)
    mine = [p.line() for p in rep.problems if p.case_id == case_id]
    if store is not None and pf_ev is not None:
        mine += _files(store, events, pf_ev.payload)
    out.append(Condition("trace_verifies", not mine, "; ".join(mine) or f"{len(events)} events verify"))
    facts = {"events": events, "devices": devs, "active": active, "print": pf_ev}
    return out, facts


def _record(case_id: str, conds: list[Condition], facts: dict, user: users.User, now: str,
            until: date, policy: retention.RetentionPolicy, head: tuple[int, str]) -> dict:
    pf = facts["print"].payload
    serials = [d.serial for d in facts["active"]]
    made = facts["devices"]
    return {
        "subject": f"release:{case_id}", "case_id": case_id, "serials": serials, "job_id": pf["job_id"],
        "printer_id": pf["printer_id"], "revision": pf["revision"], "design_sha256": pf["design_sha256"],
        "job_sha256": pf["job_sha256"], "resin_id": pf["resin_id"], "resin_lot": pf["resin_lot"],
        "conditions": [asdict(c) for c in conds],
        "quantity": {"made": len(made), "released": len(serials),
                     "scrapped": sum(d.status == "scrapped" for d in made),
                     "quarantined": sum(d.status == "quarantined" for d in made)},
        "retention_until": until.isoformat(),
        "retention_policy": policy.model_dump(mode="json"),
        "trace_head_case_seq": head[0], "trace_head_sha256": head[1],
        "signed_by": user.user_id, "role": user.role, "meaning": "approval", "signed_utc": now,
    }


def release_case(db: Database, store: CaseStore, case_id: str, user_id: str, credential: Callable[[], str],
                 actor: str) -> dict:
    """Release the case's guides for clinical use, signed by ``user_id`` (role qa). See the module doc."""
    log.check_case_id(case_id)
    users.check_user_id(user_id)
    role = users.role_of(db, user_id)
    if role not in RELEASE_ROLES:
        why = f"user {user_id!r} is not registered" if role is None else \
            f"user {user_id!r} has role {role}; release needs role qa"
        err = devices.Refused(f"release of case {case_id} refused: {why}", [why],
                              hint="a qa user signs releases (`fabctl user add ID --role qa`)")
        raise devices.refuse(db, case_id, SignatureRefused, actor, err, user_id=user_id)
    conds, facts = conditions(db, case_id, store)
    unmet = [c for c in conds if not c.ok]
    if unmet:
        reasons = [f"{c.name}: {c.detail}" for c in unmet]
        n = f"{len(unmet)} condition{'s' if len(unmet) != 1 else ''}"
        err = devices.Refused(f"release refused: {n} unmet: {'; '.join(reasons)}", reasons,
                              hint="each condition names what is missing; `fabctl release CASE --json` lists them")
        err.conditions = conds  # type: ignore[attr-defined]
        raise devices.refuse(db, case_id, ReleaseRefused, actor, err, user_id=user_id)
    secret = credential()
    policy = retention.load_policy()
    with db.write() as cur:
        user, why = users.authorise(cur, user_id, secret, RELEASE_ROLES)
        head = cur.execute("SELECT case_seq, hash FROM trace_heads WHERE case_id = ?", (case_id,)).fetchone()
        if why is None and head[0] != facts["events"][-1].case_seq:
            why = "the case's record changed while signing; run the release again"
        if why is None and user is not None:
            now = devices.now_utc()
            until = retention.retention_until(datetime.fromisoformat(now).date(), policy)
            record = _record(case_id, conds, facts, user, now, until, policy, (head[0], head[1]))
            sig = users.sign(cur, user, "approval", f"release:{case_id}", record, now)
            devices.set_status(cur, record["serials"], "released", now)
            log.append(cur, case_id, ReleaseSigned(user_id=user_id, role="qa", meaning="approval", signed_utc=now,
                                                   record_sha256=sig.record_sha256, record=record,
                                                   retention_until=until.isoformat()), user_id)
            return {"case": case_id, "released": True, "record_sha256": sig.record_sha256, **record}
    err = devices.Refused(f"release of case {case_id} refused: {why}", [str(why)],
                          hint="the signer re-enters their own credential (prompted, or FABCTL_CREDENTIAL)")
    raise devices.refuse(db, case_id, SignatureRefused, actor, err, user_id=user_id)
