"""An append-only, hash-chained event log per case, and its verifier.

Each event row is ``(seq, case_id, case_seq, type, at_utc, actor, payload, prev_hash, hash)``. ``seq`` is
global and increasing; ``case_seq`` counts 1, 2, 3... within a case; ``prev_hash`` is the hash of the case's
previous event (a fixed genesis value for the first); ``hash`` is sha256 over all of these with the payload's
stored bytes as they are. ``trace_heads`` holds each case's last ``case_seq`` and hash, written in the same
transaction, so a deleted last event is found too.

``verify`` names every break: an edited field or payload byte (hash mismatch), a deleted row (gap in
``case_seq`` or a ``prev_hash`` that points nowhere), an inserted row (duplicate or unexpected ``case_seq``,
broken link), reordered rows (``case_seq`` out of order against ``seq``), a truncated tail (head mismatch).
The chain is unkeyed: someone who rewrites every later row *and* the head with raw SQL can forge it, which is
why reports print the head hash for filing outside the database.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fabctl.db import Database
from fabctl.errors import InputError
from fabctl.trace.events import Event

CASE_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
ACTOR_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
HASH_VERSION = "fabctl-trace-v1"


def genesis_hash(case_id: str) -> str:
    return hashlib.sha256(f"{HASH_VERSION}:genesis:{case_id}".encode()).hexdigest()


def event_hash(seq: int, case_id: str, case_seq: int, type_: str, at_utc: str, actor: str,
               payload: str, prev_hash: str) -> str:
    """sha256 of an unambiguous JSON list of every field; the payload enters as its stored text."""
    doc = json.dumps([HASH_VERSION, seq, case_id, case_seq, type_, at_utc, actor, payload, prev_hash],
                     ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()


def canonical(payload: Event) -> str:
    return json.dumps(payload.model_dump(mode="json"), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class TraceEvent:
    seq: int
    case_id: str
    case_seq: int
    type: str
    at_utc: str
    actor: str
    payload: dict
    prev_hash: str
    hash: str

    def as_dict(self) -> dict:
        return {
            "seq": self.seq, "case": self.case_id, "case_seq": self.case_seq, "type": self.type,
            "at_utc": self.at_utc, "actor": self.actor, "payload": self.payload,
            "prev_hash": self.prev_hash, "hash": self.hash,
        }


def check_case_id(case_id: str) -> str:
    if not CASE_ID_RE.fullmatch(case_id):
        raise InputError(
            f"case id {case_id!r} is not valid: use [a-z0-9][a-z0-9-], at most 64 characters",
            hint="case ids are pseudonymous, e.g. case-42; never a patient's name",
        )
    return case_id


def append(cur, case_id: str, event: Event, actor: str, at: datetime | None = None) -> TraceEvent:
    """Append ``event`` to ``case_id``'s chain inside the caller's write transaction (``db.write()``)."""
    check_case_id(case_id)
    if not ACTOR_RE.fullmatch(actor):
        raise InputError(f"actor {actor!r} is not a staff ID ([a-z0-9][a-z0-9._-], at most 64 characters)")
    at_utc = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
    payload = canonical(event)
    head = cur.execute("SELECT case_seq, hash FROM trace_heads WHERE case_id = ?", (case_id,)).fetchone()
    case_seq, prev = (head[0] + 1, head[1]) if head else (1, genesis_hash(case_id))
    seq = cur.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM trace_events").fetchone()[0]
    h = event_hash(seq, case_id, case_seq, event.TYPE, at_utc, actor, payload, prev)
    cur.execute(
        "INSERT INTO trace_events (seq, case_id, case_seq, type, at_utc, actor, payload, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, case_id, case_seq, event.TYPE, at_utc, actor, payload, prev, h),
    )
    cur.execute(
        "INSERT INTO trace_heads (case_id, case_seq, hash) VALUES (?, ?, ?)"
        " ON CONFLICT (case_id) DO UPDATE SET case_seq = excluded.case_seq, hash = excluded.hash",
        (case_id, case_seq, h),
    )
    return TraceEvent(seq, case_id, case_seq, event.TYPE, at_utc, actor, json.loads(payload), prev, h)


def record(db: Database, case_id: str, event: Event, actor: str) -> TraceEvent:
    """Append one event in its own transaction."""
    with db.write() as cur:
        return append(cur, case_id, event, actor)


_COLS = "seq, case_id, case_seq, type, at_utc, actor, payload, prev_hash, hash"


def _row(r: tuple) -> TraceEvent:
    try:
        payload = json.loads(r[6])
    except json.JSONDecodeError:
        payload = {"_unparseable": r[6]}
    return TraceEvent(r[0], r[1], r[2], r[3], r[4], r[5], payload, r[7], r[8])


def events(db: Database, case_id: str) -> list[TraceEvent]:
    """A case's events in order."""
    with db.read() as cur:
        rows = cur.execute(f"SELECT {_COLS} FROM trace_events WHERE case_id = ? ORDER BY seq",
                           (case_id,)).fetchall()
    return [_row(r) for r in rows]


def cases(db: Database) -> list[str]:
    with db.read() as cur:
        return [r[0] for r in cur.execute("SELECT case_id FROM trace_heads ORDER BY case_id").fetchall()]


@dataclass
class Problem:
    case_id: str
    seq: int | None
    case_seq: int | None
    kind: str
    detail: str

    def line(self) -> str:
        where = f"case {self.case_id}"
        if self.case_seq is not None:
            where += f" event {self.case_seq}"
        if self.seq is not None:
            where += f" (row seq {self.seq})"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass
class VerifyReport:
    cases: int = 0
    events: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(db: Database) -> VerifyReport:
    """Re-walk every case's chain from genesis; report every break with where it is and what it means."""
    rep = VerifyReport()
    with db.read() as cur:
        rows = cur.execute(f"SELECT {_COLS} FROM trace_events ORDER BY seq").fetchall()
        heads = {r[0]: (r[1], r[2]) for r in cur.execute("SELECT case_id, case_seq, hash FROM trace_heads")}
    by_case: dict[str, list[tuple]] = {}
    for r in rows:
        by_case.setdefault(r[1], []).append(r)
    rep.events = len(rows)
    for case_id in sorted(set(by_case) | set(heads)):
        rep.cases += 1
        rep.problems += _verify_case(case_id, by_case.get(case_id, []), heads.get(case_id))
    return rep


def _verify_case(case_id: str, rows: list[tuple], head: tuple[int, str] | None) -> list[Problem]:
    out: list[Problem] = []
    prev_hash, expect = genesis_hash(case_id), 1
    for r in rows:
        seq, _, case_seq, type_, at, actor, payload, prev, h = r
        recomputed = event_hash(seq, case_id, case_seq, type_, at, actor, payload, prev)
        if recomputed != h:
            out.append(Problem(case_id, seq, case_seq, "edited",
                               "stored hash does not match the row's contents (a field or payload byte changed)"))
        if case_seq != expect:
            kind = "reordered" if case_seq < expect else "missing"
            detail = (f"expected event {expect} here, found event {case_seq}"
                      + (" (an earlier event was deleted)" if case_seq > expect else
                         " (rows swapped or a row inserted)"))
            out.append(Problem(case_id, seq, case_seq, kind, detail))
        if prev != prev_hash:
            out.append(Problem(case_id, seq, case_seq, "broken link",
                               "prev_hash does not match the previous event's hash "
                               "(a row before it was deleted, inserted or reordered)"))
        prev_hash, expect = h, case_seq + 1
    if head is None:
        out.append(Problem(case_id, None, None, "head missing", "events exist but the case's head row is gone"))
    elif head != (expect - 1, prev_hash):
        out.append(Problem(case_id, None, head[0], "head mismatch",
                           f"head says event {head[0]}, the chain ends at event {expect - 1} "
                           "(events deleted from or added to the end behind fabctl's back, or the head edited)"))
    return out
