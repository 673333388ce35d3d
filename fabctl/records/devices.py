"""Device identity: serials (``FAB-2026-000417``), builds, and quantity made / released / scrapped.

``assign_device`` runs inside the print's own write transaction when a print finishes ``done``: serial
numbers come from one global counter read and written under the serialised write lock, so they are unique
and, since device rows are never deleted (a trigger forbids it), never reused. A build is one job on one
printer's platform; it may make several guides of a case (spares), each with its own serial.

Also here: what the later steps read from a case's trace (its finished print, its resin).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fabctl import profiles
from fabctl.db import Database
from fabctl.errors import CaseError, CheckFailed, FabctlError
from fabctl.trace import log
from fabctl.trace.log import TraceEvent
from fabctl.trace.print_events import PrintFinished
from fabctl.trace.record_events import DeviceAssigned, DeviceScrapped

STATUSES = ("made", "quarantined", "released", "scrapped")


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def serial_for(year: int, number: int) -> str:
    return f"FAB-{year:04d}-{number:06d}"


@dataclass(frozen=True)
class Device:
    serial: str
    case_id: str
    build_id: str
    status: str
    created_utc: str
    status_utc: str


def assign_device(cur, case_id: str, job_id: str, printer_id: str, quantity: int = 1, *,
                  actor: str, at_utc: str | None = None) -> list[str]:
    """Give ``quantity`` new serials to the guides of ``case_id`` made by job ``job_id``.

    Call inside ``db.write()`` (the print's transaction). Appends ``device.assigned`` to the case's trace.
    Idempotent per (job, case): a second call returns the serials already assigned and records nothing, so
    a retried finish can never roll back the print's own record.
    """
    if not 1 <= quantity <= 20:
        raise CaseError(f"quantity {quantity} of guides per build is outside 1-20")
    at = at_utc or now_utc()
    if cur.execute("SELECT 1 FROM builds WHERE build_id = ? AND case_id = ?", (job_id, case_id)).fetchone():
        rows = cur.execute("SELECT serial FROM devices WHERE build_id = ? AND case_id = ? ORDER BY serial_no",
                           (job_id, case_id)).fetchall()
        return [r[0] for r in rows]
    cur.execute("INSERT INTO builds (build_id, case_id, printer_id, quantity_made, created_utc)"
                " VALUES (?, ?, ?, ?, ?)", (job_id, case_id, printer_id, quantity, at))
    start = cur.execute("SELECT COALESCE(MAX(serial_no), 0) + 1 FROM devices").fetchone()[0]
    year = datetime.fromisoformat(at).year
    serials = []
    for number in range(start, start + quantity):
        serial = serial_for(year, number)
        cur.execute("INSERT INTO devices (serial, serial_no, case_id, build_id, status, created_utc, status_utc)"
                    " VALUES (?, ?, ?, ?, 'made', ?, ?)", (serial, number, case_id, job_id, at, at))
        serials.append(serial)
    log.append(cur, case_id, DeviceAssigned(build_id=job_id, job_id=job_id, printer_id=printer_id,
                                            serials=serials, quantity_made=quantity), actor)
    return serials


def devices_in(cur, case_id: str) -> list[Device]:
    rows = cur.execute("SELECT serial, case_id, build_id, status, created_utc, status_utc FROM devices"
                       " WHERE case_id = ? ORDER BY serial_no", (case_id,)).fetchall()
    return [Device(*r) for r in rows]


def case_devices(db: Database, case_id: str) -> list[Device]:
    """Every guide made for ``case_id``, in serial order (CLI-free; the release and the report use it)."""
    with db.read() as cur:
        return devices_in(cur, case_id)


def quantities(devices: list[Device]) -> dict[str, int]:
    """``{made, released, scrapped, quarantined}`` for a case's devices (§2 K1)."""
    out = {"made": len(devices)}
    for s in ("released", "scrapped", "quarantined"):
        out[s] = sum(d.status == s for d in devices)
    return out


def set_status(cur, serials: list[str], status: str, at_utc: str) -> None:
    assert status in STATUSES
    for s in serials:
        cur.execute("UPDATE devices SET status = ?, status_utc = ? WHERE serial = ?", (status, at_utc, s))


def scrap_device(db: Database, serial: str, actor: str, ncr_ref: str | None = None) -> Device:
    """Scrap a guide still in production or in quarantine (e.g. an unneeded spare); recorded in its case's
    trace and counted as scrapped. A released guide is not scrapped here (that is a recall)."""
    with db.write() as cur:
        r = cur.execute("SELECT serial, case_id, build_id, status, created_utc, status_utc FROM devices"
                        " WHERE serial = ?", (serial,)).fetchone()
        if r is None:
            raise CaseError(f"no device with serial {serial!r}", hint="serials look like FAB-2026-000417")
        dev = Device(*r)
        if dev.status not in ("made", "quarantined"):
            raise CheckFailed(f"device {serial} is {dev.status}; only a guide in production or quarantine "
                              "is scrapped")
        now = now_utc()
        set_status(cur, [serial], "scrapped", now)
        log.append(cur, dev.case_id, DeviceScrapped(serial=serial, previous_status=dev.status, ncr_ref=ncr_ref),
                   actor)
    return Device(dev.serial, dev.case_id, dev.build_id, "scrapped", dev.created_utc, now)


def active_devices(cur, case_id: str) -> list[Device]:
    """The case's guides still in production (not quarantined, released or scrapped)."""
    devs = devices_in(cur, case_id)
    if not devs:
        raise CheckFailed(f"case {case_id} has no printed guide with a device serial",
                          hint="serials are assigned when a print finishes done (`fabctl print`)")
    active = [d for d in devs if d.status == "made"]
    if not active:
        states = ", ".join(f"{d.serial} {d.status}" for d in devs)
        raise CheckFailed(f"case {case_id} has no guide in production ({states})",
                          hint="a quarantined or scrapped guide needs a new print")
    return active


def events_for(cur, case_id: str) -> list[TraceEvent]:
    """The case's trace read inside the caller's transaction (a consistent view with the tables)."""
    rows = cur.execute(f"SELECT {log._COLS} FROM trace_events WHERE case_id = ? ORDER BY seq",
                       (case_id,)).fetchall()
    if not rows:
        raise CaseError(f"unknown case {case_id!r}", hint="`fabctl case ls` lists the cases")
    return [log._row(r) for r in rows]


def last(events: list[TraceEvent], type_: str, **match) -> TraceEvent | None:
    for ev in reversed(events):
        if ev.type == type_ and all(ev.payload.get(k) == v for k, v in match.items()):
            return ev
    return None


def done_print(events: list[TraceEvent], case_id: str) -> TraceEvent:
    """The case's last ``print.finished`` event, which must be ``done``; ``CheckFailed`` otherwise."""
    ev = last(events, PrintFinished.TYPE)
    if ev is None:
        raise CheckFailed(f"case {case_id} has not been printed (no print.finished event)",
                          hint=f"`fabctl print {case_id}` first")
    if ev.payload["state"] != "done":
        raise CheckFailed(f"case {case_id}: the last print ended {ev.payload['state']!r}, not 'done'",
                          hint="print the case again")
    return ev


def resin_of(print_ev: TraceEvent) -> profiles.ResinProfile:
    return profiles.resin(print_ev.payload["resin_id"])


def case_exists(db: Database, case_id: str) -> bool:
    log.check_case_id(case_id)
    with db.read() as cur:
        return cur.execute("SELECT 1 FROM trace_heads WHERE case_id = ?", (case_id,)).fetchone() is not None


class Refused(CheckFailed):
    """A gate refused (exit 3) for one or more reasons, each recorded in the refusal event."""

    def __init__(self, message: str, reasons: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.reasons = reasons


def refuse(db: Database, case_id: str, event_cls, actor: str, error: FabctlError, **fields) -> FabctlError:
    """Record a refusal event of ``event_cls`` in the case's trace (when the case exists) with the error's
    reasons; return ``error`` for the caller to raise."""
    if case_exists(db, case_id):
        reasons = getattr(error, "reasons", None) or [error.message]
        log.record(db, case_id, event_cls(reasons=[r[:600] for r in reasons], **fields), actor)
    return error
