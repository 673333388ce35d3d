"""Inventory the print gates read: resin lots and their expiry, printer calibration and maintenance due dates.

Rows live in the same database as the trace (``fabctl/schema/002_inventory.sql``), written through
``Database.write()`` with portable SQL. A lot is ``(resin id, lot number)`` with the date it expires; a lot is
usable up to and including that date. A printer's calibration or maintenance is due on the date of its latest
entry of that kind; it is overdue from the next day. Recording a due date in the past is allowed (a missed
calibration entered after the fact) and makes the printer overdue at once.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from fabctl.errors import InputError

# ``db`` arguments are ``fabctl.db.Database``; it sits in this module's own layer (an independent sibling),
# so it is used through its interface (``read()``/``write()``) without being imported.
Database = Any

LOT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KINDS = ("calibration", "maintenance")


@dataclass(frozen=True, slots=True)
class Lot:
    resin_id: str
    lot: str
    expires_on: str
    added_utc: str
    added_by: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Due:
    printer_id: str
    kind: str
    due_on: str
    recorded_utc: str
    recorded_by: str

    def as_dict(self) -> dict:
        return asdict(self)


def today_utc() -> date:
    return datetime.now(UTC).date()


def parse_date(text: str, what: str) -> date:
    """An ISO date ``YYYY-MM-DD``; ``InputError`` naming ``what`` otherwise."""
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise InputError(f"{what} {text!r} is not a date (YYYY-MM-DD)", hint="e.g. --expires 2027-06-30") from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_lot(lot: str) -> str:
    if not LOT_RE.fullmatch(lot):
        raise InputError(f"resin lot {lot!r} is not a lot number ([A-Za-z0-9][A-Za-z0-9._-], at most 64)",
                         hint="enter the lot number printed on the bottle")
    return lot


def add_lot(db: Database, resin_id: str, lot: str, expires: date, actor: str) -> Lot:
    """Register a lot; the same lot again with the same expiry is a no-op, with another one refused."""
    check_lot(lot)
    with db.write() as cur:
        row = cur.execute("SELECT expires_on FROM resin_lots WHERE resin_id = ? AND lot = ?",
                          (resin_id, lot)).fetchone()
        if row is not None and row[0] != expires.isoformat():
            raise InputError(f"resin {resin_id} lot {lot} is already registered expiring {row[0]}",
                             hint="a lot's expiry never changes; check the bottle's label")
        if row is None:
            cur.execute("INSERT INTO resin_lots (resin_id, lot, expires_on, added_utc, added_by)"
                        " VALUES (?, ?, ?, ?, ?)", (resin_id, lot, expires.isoformat(), _now(), actor))
    found = get_lot(db, resin_id, lot)
    assert found is not None
    return found


_LOT_COLS = "resin_id, lot, expires_on, added_utc, added_by"


def get_lot(db: Database, resin_id: str, lot: str) -> Lot | None:
    with db.read() as cur:
        row = cur.execute(f"SELECT {_LOT_COLS} FROM resin_lots WHERE resin_id = ? AND lot = ?",
                          (resin_id, lot)).fetchone()
    return Lot(*row) if row else None


def list_lots(db: Database, resin_id: str | None = None) -> list[Lot]:
    with db.read() as cur:
        if resin_id is None:
            rows = cur.execute(f"SELECT {_LOT_COLS} FROM resin_lots ORDER BY resin_id, lot").fetchall()
        else:
            rows = cur.execute(f"SELECT {_LOT_COLS} FROM resin_lots WHERE resin_id = ? ORDER BY lot",
                               (resin_id,)).fetchall()
    return [Lot(*r) for r in rows]


def record_due(db: Database, printer_id: str, kind: str, due: date, actor: str) -> Due:
    """Record that ``printer_id``'s next ``kind`` (calibration or maintenance) is due on ``due``."""
    if kind not in KINDS:
        raise InputError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    with db.write() as cur:
        entry = cur.execute("SELECT COALESCE(MAX(entry_id), 0) + 1 FROM printer_dues").fetchone()[0]
        cur.execute("INSERT INTO printer_dues (entry_id, printer_id, kind, due_on, recorded_utc, recorded_by)"
                    " VALUES (?, ?, ?, ?, ?, ?)", (entry, printer_id, kind, due.isoformat(), _now(), actor))
    return dues(db, printer_id)[kind]


def dues(db: Database, printer_id: str) -> dict[str, Due]:
    """The latest entry of each kind for ``printer_id`` (kinds never recorded are absent)."""
    with db.read() as cur:
        rows = cur.execute("SELECT printer_id, kind, due_on, recorded_utc, recorded_by FROM printer_dues"
                           " WHERE printer_id = ? ORDER BY entry_id", (printer_id,)).fetchall()
    return {r[1]: Due(*r) for r in rows}


def all_dues(db: Database) -> dict[str, dict[str, Due]]:
    """printer id -> kind -> latest entry, for every printer with any entry."""
    with db.read() as cur:
        rows = cur.execute("SELECT printer_id, kind, due_on, recorded_utc, recorded_by FROM printer_dues"
                           " ORDER BY entry_id").fetchall()
    out: dict[str, dict[str, Due]] = {}
    for r in rows:
        out.setdefault(r[0], {})[r[1]] = Due(*r)
    return out
