"""Resin lots and printer due dates in a real SQLite store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fabctl import inventory
from fabctl.db import open_db
from fabctl.errors import InputError


def test_lots_and_dues_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FABCTL_DB_URL", raising=False)
    db = open_db(tmp_path)
    lot = inventory.add_lot(db, "formlabs-sg-v1", "SG-2207", date(2027, 6, 30), "tech1")
    assert (lot.resin_id, lot.lot, lot.expires_on, lot.added_by) == ("formlabs-sg-v1", "SG-2207", "2027-06-30", "tech1")
    assert inventory.add_lot(db, "formlabs-sg-v1", "SG-2207", date(2027, 6, 30), "tech2").added_by == "tech1"
    with pytest.raises(InputError, match="already registered expiring 2027-06-30"):
        inventory.add_lot(db, "formlabs-sg-v1", "SG-2207", date(2028, 1, 1), "tech1")
    with pytest.raises(InputError, match="not a lot number"):
        inventory.add_lot(db, "formlabs-sg-v1", "bad lot;", date(2028, 1, 1), "tech1")
    assert inventory.get_lot(db, "nextdent-sg", "SG-2207") is None
    assert [x.lot for x in inventory.list_lots(db)] == ["SG-2207"]
    inventory.record_due(db, "moai-laser", "calibration", date(2026, 12, 1), "tech1")
    inventory.record_due(db, "moai-laser", "calibration", date(2027, 3, 1), "tech1")
    inventory.record_due(db, "moai-laser", "maintenance", date(2026, 1, 1), "tech1")
    d = inventory.dues(db, "moai-laser")
    assert d["calibration"].due_on == "2027-03-01" and d["maintenance"].due_on == "2026-01-01"
    assert inventory.dues(db, "sim-laser") == {}
    assert set(inventory.all_dues(db)) == {"moai-laser"}
    with pytest.raises(InputError, match="kind"):
        inventory.record_due(db, "moai-laser", "oil-change", date(2027, 1, 1), "tech1")
    with pytest.raises(InputError, match="not a date"):
        inventory.parse_date("30/06/2027", "--expires")
