"""Sterilization loads (clinical-traceability.md §3.2), linked both ways to the guides in them.

A load lives in ``sterilization_loads`` and ``load_items`` (load id, sterilizer, cycle number, cycle type,
actual temperature and hold, contents with every device serial, CI and BI results, who created, recorded and
released it, when). Every action on a load is also written to the trace of every case it touches, so the
case's record names the load and the load lists the cases and their serials.

Rules: a guide joins a load only after its post-processing, only when its resin's IFU allows the load's
method, temperature and hold time and it has cycles left; a failed CI or a positive BI quarantines every
guide in the load; a load is released only with CI pass and BI negative, by a ``qa`` user who signs
(credential re-entered; meaning ``approval``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from fabctl.db import Database
from fabctl.errors import CheckFailed, InputError
from fabctl.records import devices, privacy, users
from fabctl.trace import log
from fabctl.trace.record_events import (
    Limit,
    LoadItem,
    PostprocessRecorded,
    SignatureRefused,
    SterilizationLoadAdded,
    SterilizationLoadReleased,
    SterilizationLoadResult,
    SterilizationRefused,
)

METHODS = ("steam-gravity", "steam-prevac", "h2o2-plasma", "eto")
ALIASES = {"steam": "steam-gravity", "h2o2": "h2o2-plasma"}
#: plausible set-point ranges per method (CDC 2008 Table 7 and §3.1): catches a typo, not an IFU limit
TEMP_RANGE_C = {"steam-gravity": (105.0, 140.0), "steam-prevac": (105.0, 140.0), "h2o2-plasma": (20.0, 65.0),
                "eto": (25.0, 65.0)}
LOAD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RELEASE_ROLES = ("qa",)
_LOAD_COLS = ("load_id, method, temp_c, hold_min, sterilizer_id, cycle_no, status, ci, bi, created_utc, "
              "created_by, result_utc, result_by, released_utc, released_by")


@dataclass(frozen=True)
class Load:
    load_id: str
    method: str
    temp_c: float
    hold_min: float
    sterilizer_id: str
    cycle_no: int
    status: str
    ci: str | None
    bi: str | None
    created_utc: str
    created_by: str
    result_utc: str | None
    result_by: str | None
    released_utc: str | None
    released_by: str | None
    contents: tuple[tuple[str, str], ...] = ()

    def facts(self) -> dict:
        """The §3.2 fields every load event repeats."""
        return {"load_id": self.load_id, "method": self.method, "temp_c": self.temp_c,
                "hold_min": self.hold_min, "sterilizer_id": self.sterilizer_id, "cycle_no": self.cycle_no,
                "load_created_utc": self.created_utc, "load_created_by": self.created_by,
                "contents": [LoadItem(case_id=c, serial=s) for c, s in self.contents]}

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in _LOAD_COLS.split(", ")}
        d["contents"] = [{"case_id": c, "serial": s} for c, s in self.contents]
        d["cases"] = sorted({c for c, _ in self.contents})
        return d


def normalise_method(method: str) -> str:
    m = ALIASES.get(method, method)
    if m not in METHODS:
        raise InputError(f"sterilization method {method!r} is not one of steam, h2o2, eto, {', '.join(METHODS)}",
                         hint="'steam' means a gravity-displacement cycle; use steam-prevac for a prevacuum one")
    return m


def get_load(cur, load_id: str) -> Load:
    r = cur.execute(f"SELECT {_LOAD_COLS} FROM sterilization_loads WHERE load_id = ?", (load_id,)).fetchone()
    if r is None:
        raise InputError(f"unknown sterilization load {load_id!r}", hint="`fabctl sterilize load new` creates one")
    items = cur.execute("SELECT case_id, serial FROM load_items WHERE load_id = ? ORDER BY case_id, serial",
                        (load_id,)).fetchall()
    return Load(*r, contents=tuple((c, s) for c, s in items))


def show_load(db: Database, load_id: str) -> Load:
    with db.read() as cur:
        return get_load(cur, load_id)


def new_load(db: Database, load_id: str, method: str, temp_c: float, hold_min: float, sterilizer_id: str,
             cycle_no: int, actor: str) -> Load:
    """Create an open load (no guides yet)."""
    if not LOAD_RE.fullmatch(load_id):
        raise InputError("load id: not an id ([A-Za-z0-9][A-Za-z0-9._-], at most 64 characters)",
                         hint="the lot control number on the load's label, e.g. SPD-A3-2026-11-26-004")
    privacy.check_id("load id", load_id, allow_dates=True)
    privacy.check_id("--sterilizer", sterilizer_id)
    m = normalise_method(method)
    lo, hi = TEMP_RANGE_C[m]
    if not lo <= temp_c <= hi:
        raise InputError(f"--temp-c {temp_c:g} is implausible for a {m} cycle ({lo:g}-{hi:g} C)")
    if not 1 <= hold_min <= 720 or cycle_no < 0:
        raise InputError(f"--hold-min {hold_min:g} must be 1-720 and --cycle {cycle_no} at least 0")
    now = devices.now_utc()
    with db.write() as cur:
        if cur.execute("SELECT 1 FROM sterilization_loads WHERE load_id = ?", (load_id,)).fetchone():
            raise InputError(f"sterilization load {load_id} already exists", hint="load ids are never reused")
        if cur.execute("SELECT load_id FROM sterilization_loads WHERE sterilizer_id = ? AND cycle_no = ?",
                       (sterilizer_id, cycle_no)).fetchone():
            raise InputError(f"sterilizer {sterilizer_id} cycle {cycle_no} already belongs to another load")
        cur.execute("INSERT INTO sterilization_loads (load_id, method, temp_c, hold_min, sterilizer_id, cycle_no,"
                    " status, created_utc, created_by) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                    (load_id, m, temp_c, hold_min, sterilizer_id, cycle_no, now, actor))
        return get_load(cur, load_id)


def _case_reasons(cur, load: Load, case_id: str) -> tuple[list[str], dict]:
    """Why ``case_id`` may not join ``load`` (empty when it may), and the facts the event records."""
    events = devices.events_for(cur, case_id)
    pf = devices.done_print(events, case_id)
    active = devices.active_devices(cur, case_id)
    resin = devices.resin_of(pf)
    reasons = []
    pp = devices.last(events, PostprocessRecorded.TYPE)
    if pp is None or pp.seq < pf.seq:
        reasons.append(f"case {case_id}: no post-processing recorded after the print (`fabctl postprocess`)")
    ster = resin.ifu.sterilization
    entry = next((e for e in ster.value if e.method == load.method), None)
    facts = {"serials": [d.serial for d in active], "resin_id": resin.id, "resin_max_temp_c": 0.0,
             "resin_hold_min_limit": Limit(min=0, max=0, status=ster.status, source=ster.source),
             "resin_max_cycles": 0, "previous_cycles": 0}
    if entry is None:
        allowed = ", ".join(f"{e.method} <= {e.max_temp_c:g} C" for e in ster.value) or "none"
        reasons.append(f"case {case_id}: resin {resin.id} does not allow {load.method} (allowed: {allowed})")
        return reasons, facts
    if load.temp_c > entry.max_temp_c:
        reasons.append(f"case {case_id}: {load.temp_c:g} C exceeds resin {resin.id}'s validated maximum "
                       f"{entry.max_temp_c:g} C for {load.method} ({ster.status})")
    if not entry.hold_min.contains(load.hold_min):
        reasons.append(f"case {case_id}: hold {load.hold_min:g} min outside resin {resin.id}'s "
                       f"{entry.hold_min.min:g}-{entry.hold_min.max:g} min for {load.method}")
    marks = ",".join("?" * len(active))
    rows = cur.execute(f"SELECT i.serial, l.status, l.load_id FROM load_items i JOIN sterilization_loads l"
                       f" ON l.load_id = i.load_id WHERE i.serial IN ({marks})",
                       tuple(facts["serials"])).fetchall()
    busy = sorted({lid for _, st, lid in rows if st in ("open", "processed")})
    if busy:
        reasons.append(f"case {case_id}: already in load {', '.join(busy)}")
    cycles = max((sum(1 for s, st, _ in rows if s == d and st != "open") for d in facts["serials"]), default=0)
    if cycles >= entry.max_cycles:
        reasons.append(f"case {case_id}: {cycles} sterilization cycle(s) done, resin {resin.id} allows "
                       f"{entry.max_cycles}")
    facts.update(resin_max_temp_c=entry.max_temp_c, resin_max_cycles=entry.max_cycles, previous_cycles=cycles,
                 resin_hold_min_limit=Limit(min=entry.hold_min.min, max=entry.hold_min.max, status=ster.status,
                                            source=ster.source))
    return reasons, facts


def add_cases(db: Database, load_id: str, case_ids: list[str], actor: str) -> Load:
    """Add every active guide of each case to an open load; all or nothing (exit 3 names each reason)."""
    if not case_ids or len(set(case_ids)) != len(case_ids):
        raise InputError("name each case to add once", hint="fabctl sterilize load add LOAD CASE...")
    refused: dict[str, list[str]] = {}
    try:
        with db.write() as cur:
            load = get_load(cur, load_id)
            if load.status != "open":
                raise CheckFailed(f"load {load_id} is {load.status}; guides join only an open load",
                                  hint="start a new load for another cycle")
            per_case = {}
            for cid in case_ids:
                try:
                    reasons, facts = _case_reasons(cur, load, cid)
                except CheckFailed as err:
                    reasons, facts = [err.message], {}
                if reasons:
                    refused[cid] = reasons
                per_case[cid] = facts
            if refused:
                every = [r for rs in refused.values() for r in rs]
                raise devices.Refused(f"load {load_id}: {len(every)} refusal(s): {'; '.join(every)}", every,
                                      hint="check the resins' allowed methods (`fabctl profile show RESIN`)")
            now = devices.now_utc()
            for cid in case_ids:
                for s in per_case[cid]["serials"]:
                    cur.execute("INSERT INTO load_items (load_id, serial, case_id, added_utc, added_by)"
                                " VALUES (?, ?, ?, ?, ?)", (load_id, s, cid, now, actor))
            load = get_load(cur, load_id)
            for cid in case_ids:
                log.append(cur, cid, SterilizationLoadAdded(**load.facts(), **per_case[cid]), actor)
            return load
    except devices.Refused as err:
        for cid, reasons in refused.items():
            devices.refuse(db, cid, SterilizationRefused, actor, devices.Refused(err.message, reasons),
                           load_id=load_id)
        raise


def record_result(db: Database, load_id: str, ci: str, bi: str, actor: str) -> tuple[Load, list[LoadItem]]:
    """Record the load's indicators. CI fail or BI positive quarantines every guide in it: the load is
    stored, then ``CheckFailed`` (exit 3) names every quarantined guide."""
    if ci not in ("pass", "fail") or bi not in ("negative", "positive", "pending"):
        raise InputError(f"--ci {ci!r} / --bi {bi!r}: use --ci pass|fail and --bi negative|positive|pending")
    with db.write() as cur:
        load = get_load(cur, load_id)
        if not load.contents:
            raise CheckFailed(f"load {load_id} holds no guides", hint="`fabctl sterilize load add` first")
        if not (load.status == "open" or (load.status == "processed" and load.bi == "pending")):
            raise CheckFailed(f"load {load_id} is {load.status} (CI {load.ci}, BI {load.bi}); its result is final")
        quarantine = ci == "fail" or bi == "positive"
        status = "quarantined" if quarantine else "processed"
        now = devices.now_utc()
        cur.execute("UPDATE sterilization_loads SET status = ?, ci = ?, bi = ?, result_utc = ?, result_by = ?"
                    " WHERE load_id = ?", (status, ci, bi, now, actor, load_id))
        quarantined = [LoadItem(case_id=c, serial=s) for c, s in load.contents] if quarantine else []
        if quarantine:
            devices.set_status(cur, [q.serial for q in quarantined], "quarantined", now)
        load = get_load(cur, load_id)
        for cid in sorted({c for c, _ in load.contents}):
            log.append(cur, cid, SterilizationLoadResult(**load.facts(), ci=ci, bi=bi, status=status,
                                                         quarantined=quarantined), actor)
    if quarantine:
        which = ", ".join(f"{q.case_id} {q.serial}" for q in quarantined)
        raise CheckFailed(f"load {load_id}: CI {ci}, BI {bi}: {len(quarantined)} guide(s) quarantined: {which}",
                          hint="quarantined guides are never released; reprint, post-process and sterilize again")
    return load, quarantined


def release_load(db: Database, load_id: str, user_id: str, credential: str | Callable[[], str],
                 actor: str) -> Load:
    """Release a processed load (CI pass, BI negative) with a signed approval by a ``qa`` user.

    The role and the load's state are checked first; ``credential`` (a callable prompts) is asked for only
    when they allow the release."""
    with db.read() as cur:
        load = get_load(cur, load_id)
        signer = users.get(cur, user_id)
    cases = sorted({c for c, _ in load.contents})
    if signer is None or signer.role not in RELEASE_ROLES:
        why = f"user {user_id!r} is not registered" if signer is None else \
            f"user {user_id!r} has role {signer.role}; releasing a load needs role qa"
        err = devices.Refused(f"load {load_id} release refused: {why}", [why],
                              hint="a qa user releases a load and re-enters the credential")
        for cid in cases:
            devices.refuse(db, cid, SignatureRefused, actor, err, load_id=load_id, user_id=user_id)
        raise err
    problems = []
    if load.status != "processed":
        problems.append(f"load {load_id} is {load.status}, not processed")
    if load.ci != "pass":
        problems.append(f"CI is {load.ci or 'not recorded'}, needs pass")
    if load.bi != "negative":
        problems.append(f"BI is {load.bi or 'not recorded'}, needs negative")
    if problems:
        err = devices.Refused(f"load {load_id} release refused: {'; '.join(problems)}", problems,
                              hint="record the results with `fabctl sterilize load result`")
        for cid in cases:
            devices.refuse(db, cid, SterilizationRefused, actor, err, load_id=load_id, user_id=user_id)
        raise err
    secret = credential() if callable(credential) else credential
    with db.write() as cur:
        user, why = users.authorise(cur, user_id, secret, RELEASE_ROLES)
        load = get_load(cur, load_id)  # under the write lock: what is signed is what is stored
        if why is None and (load.status, load.ci, load.bi) != ("processed", "pass", "negative"):
            why = f"load {load_id} changed while signing (now {load.status}, CI {load.ci}, BI {load.bi})"
        if why is None and user is not None:
            now = devices.now_utc()
            record = {"subject": f"sterilization-load:{load_id}", **load.as_dict(), "released_by": user_id,
                      "released_utc": now, "meaning": "approval"}
            sig = users.sign(cur, user, "approval", f"sterilization-load:{load_id}", record, now)
            cur.execute("UPDATE sterilization_loads SET status = 'released', released_utc = ?, released_by = ?"
                        " WHERE load_id = ?", (now, user_id, load_id))
            for cid in cases:
                log.append(cur, cid, SterilizationLoadReleased(**load.facts(), ci="pass", bi="negative",
                                                               released_by=user_id, released_utc=now,
                                                               signature_sha256=sig.record_sha256), user_id)
            return get_load(cur, load_id)
    err = devices.Refused(f"load {load_id} release refused: {why}", [str(why)],
                          hint="a qa user releases a load and re-enters the credential")
    for cid in cases:
        devices.refuse(db, cid, SignatureRefused, actor, err, load_id=load_id, user_id=user_id)
    raise err


def load_of(cur, serials: list[str]) -> Load | None:
    """The most recent load holding any of ``serials``."""
    if not serials:
        return None
    marks = ",".join("?" * len(serials))
    r = cur.execute(f"SELECT i.load_id FROM load_items i JOIN sterilization_loads l ON l.load_id = i.load_id"
                    f" WHERE i.serial IN ({marks}) ORDER BY i.added_utc DESC, l.created_utc DESC",
                    tuple(serials)).fetchone()
    return get_load(cur, r[0]) if r else None

