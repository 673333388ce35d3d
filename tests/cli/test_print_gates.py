"""Every gate of `fabctl print` refuses with exit 3, one line naming the gate and the limit, a
``print.refused`` trace event, the job marked failed, and nothing sent: the mock printer the profile points
at never sees a connection."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error
from tests.integration.print_fixtures import ROOT, Mock, fabctl, new_case, point_printer, set_key, tcp_mock

pytestmark = pytest.mark.timeout(180)


def _variant(profiles: Path, kind: str, src: str, dst: str, edits: dict[str, str]) -> None:
    p = profiles / kind / f"{dst}.toml"
    shutil.copy(profiles / kind / f"{src}.toml", p)
    for k, v in edits.items():
        set_key(p, k, v)


@pytest.fixture(scope="module")
def mock() -> Iterator[Mock]:
    with tcp_mock() as m:
        yield m


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, mock: Mock) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("gates")
    prof = root / "profiles"
    shutil.copytree(ROOT / "profiles", prof)
    point_printer(prof, "sim-laser", mock.url)
    _variant(prof, "resins", "demo-grey", "lcd-only", {"compatible_technologies": '["lcd"]'})
    _variant(prof, "resins", "demo-grey", "thick-grey", {})
    p = prof / "resins" / "thick-grey.toml"
    p.write_text(p.read_text().replace("[ifu.min_wall_mm]\nvalue = 1.0", "[ifu.min_wall_mm]\nvalue = 8.0"))
    _variant(prof, "resins", "demo-grey", "coarse-grey", {})
    p = prof / "resins" / "coarse-grey.toml"
    p.write_text(p.read_text().replace("[ifu.layer_heights_mm]\nvalue = [0.025, 0.05, 0.1]",
                                       "[ifu.layer_heights_mm]\nvalue = [0.3]"))
    _variant(prof, "printers", "sim-laser", "real-laser", {"simulated": "false"})
    _variant(prof, "printers", "sim-laser", "tiny-laser", {"x_mm": "20", "y_mm": "20", "z_mm": "20"})
    home = root / "home"
    new_case(home, prof)
    return home, prof


@pytest.fixture
def env(base: tuple[Path, Path], tmp_path: Path, mock: Mock) -> Iterator[tuple[Path, Path]]:
    home = tmp_path / "home"
    shutil.copytree(base[0], home)
    yield home, base[1]
    assert mock.sim.executed == [], "a refused print reached the printer"


def _refused(home: Path, prof: Path, gate: str, *args: str, words: tuple[str, ...] = (), verify: int = 0) -> None:
    r = fabctl(home, prof, "print", "case-42", *args)
    assert_one_line_error(r, 3, f"gate {gate}", *words)  # type: ignore[arg-type]
    t = json.loads(fabctl(home, prof, "trace", "show", "case-42", "--json").out)
    refusals = [e["payload"] for e in t["events"] if e["type"] == "print.refused"]
    assert [x["gate"] for x in refusals] == [gate]
    states = [e["payload"].get("to_state") for e in t["events"] if e["type"] == "job.state"]
    assert states[-1] == "failed", states
    assert not any(e["type"] == "print.started" for e in t["events"])
    assert fabctl(home, prof, "trace", "verify").code == verify


def test_unknown_lot(env: tuple[Path, Path]) -> None:
    _refused(*env, "resin_lot", "--lot", "NOPE-1", words=("NOPE-1", "not registered"))


def test_expired_lot(env: tuple[Path, Path]) -> None:
    home, prof = env
    r = fabctl(home, prof, "resin", "lot", "add", "demo-grey", "OLD-1", "--expires", "2020-01-01", "--json")
    assert r.code == 0 and json.loads(r.out)["expired"] is True, r.err
    _refused(home, prof, "resin_lot", "--lot", "OLD-1", words=("expired on 2020-01-01",))


def test_calibration_overdue(env: tuple[Path, Path]) -> None:
    home, prof = env
    assert fabctl(home, prof, "printer", "calibrate", "sim-laser", "--due", "2020-01-01").code == 0
    st = json.loads(fabctl(home, prof, "printer", "status", "sim-laser", "--json").out)
    assert st["calibration"]["overdue"] is True and st["ready"] is False
    _refused(home, prof, "printer_calibration", words=("overdue", "2020-01-01"))


def test_real_printer_never_calibrated(env: tuple[Path, Path]) -> None:
    _refused(*env, "printer_calibration", "--printer", "real-laser", words=("no calibration recorded",))


def test_resin_for_another_technology(env: tuple[Path, Path]) -> None:
    _refused(*env, "resin_technology", "--resin", "lcd-only", words=("laser-gcode",))


def test_no_layer_height_allowed_by_resin(env: tuple[Path, Path]) -> None:
    _refused(*env, "layer_height", "--resin", "coarse-grey", words=("0.3",))


def test_design_bytes_changed(env: tuple[Path, Path]) -> None:
    home, prof = env
    design = home / "cases" / "case-42" / "rev-0001" / "design.stl"
    os.chmod(design, 0o644)
    with design.open("ab") as f:
        f.write(b"\0")
    _refused(home, prof, "design_revision", words=("differ from the registered revision",), verify=5)


def test_part_does_not_fit(env: tuple[Path, Path]) -> None:
    _refused(*env, "part_fit", "--printer", "tiny-laser", words=("does not fit",))


def test_validation_failed(env: tuple[Path, Path]) -> None:
    _refused(*env, "validation", "--resin", "thick-grey", words=("min_wall_thickness",))


def test_clinical_resin_needs_a_lot(env: tuple[Path, Path]) -> None:
    home, prof = env
    r = fabctl(home, prof, "print", "case-42", "--resin", "formlabs-sg-v1")
    assert_one_line_error(r, 2, "--lot is required")  # type: ignore[arg-type]


def test_inventory_commands(env: tuple[Path, Path]) -> None:
    home, prof = env
    assert fabctl(home, prof, "resin", "lot", "add", "formlabs-sg-v1", "SG-1", "--expires", "2099-01-31").code == 0
    r = fabctl(home, prof, "resin", "lot", "ls", "--json")
    lots = json.loads(r.out)["lots"]
    assert [(x["resin_id"], x["lot"], x["expires_on"], x["expired"]) for x in lots] == [
        ("formlabs-sg-v1", "SG-1", "2099-01-31", False)]
    assert_one_line_error(fabctl(home, prof, "resin", "lot", "add", "no-such-resin", "X", "--expires",  # type: ignore[arg-type]
                                 "2099-01-01"), 2)
    assert_one_line_error(fabctl(home, prof, "printer", "calibrate", "sim-laser", "--due", "soon"), 2,  # type: ignore[arg-type]
                          "not a date")
    printers = {p["id"]: p for p in json.loads(fabctl(home, prof, "printer", "ls", "--json").out)["printers"]}
    assert printers["sim-laser"]["ready"] is True and printers["real-laser"]["ready"] is False
