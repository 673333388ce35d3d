"""The plan model refuses what would otherwise be guessed: non-unit directions, mismatched needles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabctl.errors import InputError
from fabctl.plan import load_plan, parse_plan

GOOD = {
    "vertebral_level": "L3", "side": "left", "needle_gauge": 11, "needle_od_mm": 3.048,
    "entry_point_mm": [60.0, 0.0, 10.0], "direction": [-0.6, 0.0, -0.8], "target_depth_mm": 90.0,
    "channel_diameter_mm": 3.3, "slot_length_mm": 10.0, "slot_direction": [0.0, 1.0, 0.0],
}


def test_good_plan_and_target() -> None:
    p = parse_plan(GOOD)
    assert p.target_point_mm == pytest.approx([6.0, 0.0, -62.0])


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"direction": [0.0, 0.0, -2.0]}, ["direction", "unit vector", "|d| = 2"]),
        ({"needle_od_mm": 2.413}, ["needle_od_mm 2.413", "11G", "3.048"]),
        ({"channel_diameter_mm": 3.0}, ["channel_diameter_mm 3.0", "must exceed"]),
        ({"slot_direction": [0.6, 0.0, 0.8]}, ["slot_direction", "normal"]),
        ({"vertebral_level": "L6"}, ["vertebral_level"]),
        ({"entry_point_mm": [1.0, 2.0]}, ["entry_point_mm"]),
        ({"entry_point_mm": [float("nan"), 0, 0]}, ["entry_point_mm", "non-finite"]),
        ({"patient_name": "x"}, ["patient_name", "Extra inputs"]),
        ({"needle_gauge": 9}, ["needle_gauge 9"]),
    ],
)
def test_bad_plans_name_the_field(change: dict, words: list[str]) -> None:
    with pytest.raises(InputError) as exc:
        parse_plan({**GOOD, **change}, "plan.json")
    msg = str(exc.value)
    assert msg.startswith("plan.json: ") and "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_load_plan_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_plan(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not readable JSON"):
        load_plan(bad)
    ok = tmp_path / "plan.json"
    ok.write_text(json.dumps(GOOD))
    assert load_plan(ok).needle_gauge == 11
