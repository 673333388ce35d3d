"""The gate function is pure: facts in, the first refusal (or None) out, in a fixed order."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from fabctl.pipeline import gates
from fabctl.pipeline.gates import Facts, calibration_problem, check

TODAY = date(2026, 11, 25)
SHA = "a" * 64


def ok_facts(**kw) -> Facts:
    base = Facts(case="case-42", printer_id="sim-laser", printer_technology="laser-gcode", printer_simulated=True,
                 resin_id="demo-grey", resin_technologies=["lcd", "laser-gcode"], today=TODAY, resin_demo=True,
                 revision=1, registered_design_sha256=SHA, disk_design_sha256=SHA, lot="L1",
                 lot_expires_on="2026-11-25", printer_layer_heights_mm=[0.025, 0.05, 0.1],
                 resin_layer_heights_mm=[0.05, 0.1], dues={}, fits=True, validation_ok=True,
                 protected_contacts=0, unsupported_islands=0)
    return replace(base, **kw)


def test_all_facts_good_passes_final() -> None:
    assert check(ok_facts(), final=True) is None


@pytest.mark.parametrize(("change", "gate", "words"), [
    ({"disk_design_sha256": "b" * 64}, "design_revision", "differ"),
    ({"awaiting_approval": True}, "design_revision", "awaits approval"),
    ({"resin_technologies": ["lcd"]}, "resin_technology", "not for laser-gcode"),
    ({"lot_expires_on": None}, "resin_lot", "not registered"),
    ({"lot_expires_on": "2026-11-24"}, "resin_lot", "expired on 2026-11-24"),
    ({"lot": None}, "resin_lot", "no lot"),
    ({"resin_layer_heights_mm": [0.3]}, "layer_height", "0.3"),
    ({"dues": {"calibration": "2026-11-24"}}, "printer_calibration", "overdue"),
    ({"dues": {"calibration": "2027-01-01", "maintenance": "2026-01-01"}}, "printer_calibration", "maintenance"),
    ({"printer_simulated": False}, "printer_calibration", "no calibration recorded"),
    ({"fits": False, "fit_detail": "130 x 130 x 180 mm"}, "part_fit", "does not fit"),
    ({"validation_ok": False, "validation_failed": ["min_wall_thickness"]}, "validation", "min_wall_thickness"),
    ({"protected_contacts": 2}, "protected_faces", "2 protected contacts"),
    ({"unsupported_islands": 1}, "protected_faces", "1 unsupported"),
])
def test_each_gate_fires_alone(change: dict, gate: str, words: str) -> None:
    r = check(ok_facts(**change))
    assert r is not None and r.gate == gate, r
    assert words in r.message and "\n" not in r.message and r.hint


def test_lot_valid_through_its_expiry_day_and_demo_lot_only_for_demo_resin() -> None:
    assert check(ok_facts(lot_expires_on=TODAY.isoformat())) is None
    assert check(ok_facts(lot=gates.DEMO_LOT, lot_expires_on=None)) is None
    r = check(ok_facts(lot=gates.DEMO_LOT, lot_expires_on=None, resin_demo=False))
    assert r is not None and r.gate == "resin_lot" and "not registered" in r.message


def test_simulated_printer_may_lack_a_record_but_not_be_overdue() -> None:
    assert calibration_problem("sim-laser", True, {}, TODAY) is None
    assert calibration_problem("sim-laser", True, {"calibration": TODAY.isoformat()}, TODAY) is None
    assert "overdue" in calibration_problem("sim-laser", True, {"calibration": "2026-11-24"}, TODAY)
    assert "no calibration" in calibration_problem("moai", False, {}, TODAY)
    assert calibration_problem("moai", False, {"calibration": "2026-12-01"}, TODAY) is None


def test_order_is_fixed_and_unknown_facts_skip_until_final() -> None:
    r = check(ok_facts(disk_design_sha256="b" * 64, lot_expires_on=None, validation_ok=False))
    assert r is not None and r.gate == "design_revision"
    early = ok_facts(fits=None, validation_ok=None, protected_contacts=None, unsupported_islands=None)
    assert check(early) is None
    r = check(early, final=True)
    assert r is not None and r.gate == "part_fit" and "not evaluated" in r.message
    assert list(gates.GATES) == ["design_revision", "resin_technology", "resin_lot", "layer_height",
                                 "printer_calibration", "part_fit", "validation", "protected_faces"]
