"""`fabctl print case-42` end to end: real subprocesses, real SQLite, a mock Marlin printer over TCP whose
executed-command log is compared with the job file line for line; the stage cache on reruns and profile
edits; a transport failure. Profiles: a fast test copy (tests/integration/print_fixtures.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabctl.transport.gcode_line import parse_program
from tests.conftest import assert_one_line_error
from tests.integration.print_fixtures import (
    Mock,
    copy_home,
    executed_job,
    fabctl,
    fast_profiles,
    new_case,
    point_printer,
    set_key,
    tcp_mock,
)

pytestmark = pytest.mark.timeout(900)
STAGES = ["revision", "validate", "orient", "support", "slice", "job", "transport"]


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict, list[str]]]:
    """One cold print in a fresh home: (home, profiles, its --json document, the commands the mock ran)."""
    root = tmp_path_factory.mktemp("print")
    prof = fast_profiles(root / "profiles")
    p = prof / "printers" / "sim-laser.toml"
    p.write_text(p.read_text().replace("layer_heights_mm = [0.025, 0.05, 0.1]", "layer_heights_mm = [0.1, 0.3]"))
    r = prof / "resins" / "demo-grey.toml"
    r.write_text(r.read_text().replace("[ifu.layer_heights_mm]\nvalue = [0.1]", "[ifu.layer_heights_mm]\nvalue = [0.3]"))
    home = root / "home"
    new_case(home, prof)
    with tcp_mock() as m:
        point_printer(prof, "sim-laser", m.url)
        run = fabctl(home, prof, "print", "case-42", "--json")
        assert run.code == 0, run.err
        yield home, prof, json.loads(run.out), executed_job(m.sim)


def _profiles_for(tmp: Path, prof: Path, mock: Mock) -> Path:
    dst = tmp / "profiles"
    shutil.copytree(prof, dst)
    point_printer(dst, "sim-laser", mock.url)
    return dst


def _cached(doc: dict) -> list[bool]:
    assert [s["name"] for s in doc["stages"]] == STAGES
    return [s["cached"] for s in doc["stages"]]


def test_print_is_done_and_the_printer_ran_the_job_file(warm) -> None:
    home, prof, doc, executed = warm
    assert doc["state"] == "done" and doc["case"] == "case-42" and doc["printer"] == "sim-laser"
    assert doc["job_id"].startswith("job-") and doc["lot"] == "DEMO"
    assert _cached(doc) == [False] * 7
    job = Path(doc["job_file"])
    assert job.is_file() and len(doc["job_file_sha256"]) == 64
    assert executed == [*parse_program(job.read_text()).commands, "M400"]   # the driver's end-of-job wait
    assert len(executed) > 1000
    assert all(Path(p).is_file() for p in doc["pictures"])
    assert fabctl(home, prof, "trace", "verify").code == 0
    t = json.loads(fabctl(home, prof, "trace", "show", "case-42", "--json").out)
    assert t["head"] == doc["trace_head"]
    stage_events = [e["payload"] for e in t["events"] if e["type"] == "pipeline.stage"]
    assert [e["stage"] for e in stage_events] == STAGES
    for e, s in zip(stage_events, doc["stages"], strict=True):
        assert e["key"] == s["key"] and e["artifact_sha256"] == s["artifact_sha256"] and e["cached"] is False
    assert all(len(e["artifact_sha256"]) == 64 for e in stage_events[:-1])
    fin = [e["payload"] for e in t["events"] if e["type"] == "print.finished"]
    assert [(f["state"], f["job_sha256"], f["resin_lot"]) for f in fin] == [("done", doc["job_file_sha256"], "DEMO")]
    states = [e["payload"]["to_state"] for e in t["events"] if e["type"] == "job.state"]
    assert states == ["preparing", "sending", "printing", "done"]


def test_transport_failure_then_rerun_starts_at_the_transport(warm, tmp_path: Path) -> None:
    home = copy_home(warm[0], tmp_path / "home")
    prof = tmp_path / "profiles"
    shutil.copytree(warm[1], prof)
    point_printer(prof, "sim-laser", "socket://127.0.0.1:9")   # nothing listens on the discard port
    r = fabctl(home, prof, "print", "case-42")
    assert_one_line_error(r, 4, "failed")  # type: ignore[arg-type]
    t = json.loads(fabctl(home, prof, "trace", "show", "case-42", "--json").out)
    last = [e["payload"] for e in t["events"] if e["type"] == "job.state"][-1]
    assert last["to_state"] == "failed" and last["reason"]
    with tcp_mock() as m:
        point_printer(prof, "sim-laser", m.url)
        r = fabctl(home, prof, "print", "case-42", "--json")
        assert r.code == 0, r.err
        doc = json.loads(r.out)
        assert _cached(doc) == [True] * 6 + [False]
        assert doc["state"] == "done" and doc["job_file_sha256"] == warm[2]["job_file_sha256"]
        assert executed_job(m.sim) == [*parse_program(Path(doc["job_file"]).read_text()).commands, "M400"]
    assert fabctl(home, prof, "trace", "verify").code == 0


@pytest.mark.parametrize(("file", "key", "value", "expect"), [
    ("resins/demo-grey.toml", "laser_power_mw", "90", [True] * 5 + [False, False]),
    ("process/default.toml", "pillar_diameter_mm", "1.2", [True] * 3 + [False] * 4),
])
def test_a_profile_edit_reruns_exactly_the_stages_it_affects(warm, tmp_path: Path, file: str, key: str,
                                                           value: str, expect: list[bool]) -> None:
    home = copy_home(warm[0], tmp_path / "home")
    with tcp_mock() as m:
        prof = _profiles_for(tmp_path, warm[1], m)
        set_key(prof / file, key, value)
        r = fabctl(home, prof, "print", "case-42", "--json")
        assert r.code == 0, r.err
        doc = json.loads(r.out)
    assert _cached(doc) == expect
    assert doc["job_file_sha256"] != warm[2]["job_file_sha256"]


def test_print_on_sim_sl1s_through_the_mock_prusalink(warm, tmp_path: Path) -> None:
    """The SL1 path: the archive fabctl uploads is the job file byte for byte and the mock reports done."""
    import sys as _sys

    try:
        from mockprinter.prusalink import MockPrusaLink, MockSL1
    except ImportError:  # the source tree's hardware/ package
        _sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hardware"))
        from mockprinter.prusalink import MockPrusaLink, MockSL1

    home = copy_home(warm[0], tmp_path / "home")
    prof = tmp_path / "profiles"
    shutil.copytree(warm[1], prof)
    p = prof / "printers" / "sim-sl1s.toml"
    p.write_text(p.read_text().replace("layer_heights_mm = [0.025, 0.035, 0.05, 0.1]", "layer_heights_mm = [0.1, 0.3]"))
    mock = MockPrusaLink(password="test-only-password", printer=MockSL1(time_scale=0.0005)).start()
    try:
        set_key(p, "url", f'"{mock.url}"')
        r = fabctl(home, prof, "print", "case-42", "--printer", "sim-sl1s", "--json",
                   env={"FABCTL_PRUSALINK_PASSWORD": "test-only-password"})
        assert r.code == 0, r.err
        doc = json.loads(r.out)
        assert doc["state"] == "done" and doc["printer"] == "sim-sl1s" and doc["job_format"] == "sl1"
        uploaded = list(mock.printer.files.values())
        assert uploaded == [Path(doc["job_file"]).read_bytes()]
    finally:
        mock.vanish()
    assert fabctl(home, prof, "trace", "verify").code == 0
    # the job file is a function of its inputs: built again from scratch, it has the same bytes (the SL1
    # states the design revision's time, not the build's)
    jobs = list((home / "cases" / "case-42" / "artifacts").glob("job-*"))
    assert jobs
    first = Path(doc["job_file"]).read_bytes()
    for d in jobs:
        shutil.rmtree(d)
    r = fabctl(home, prof, "slice", "case-42", "--printer", "sim-sl1s", "--json")
    assert r.code == 0, r.err
    assert list((home / "cases" / "case-42" / "artifacts").glob("job-*"))  # built anew
    again = json.loads(r.out)["job"]
    assert again["sha256"] == doc["job_file_sha256"], _zip_difference(first, Path(again["path"]).read_bytes())


def _zip_difference(a: bytes, b: bytes) -> str:
    """Which entries of two archives differ (for the message of a failed reproducibility check)."""
    import io
    import zipfile

    za, zb = zipfile.ZipFile(io.BytesIO(a)), zipfile.ZipFile(io.BytesIO(b))
    names = sorted(set(za.namelist()) | set(zb.namelist()))
    differ = [n for n in names if n not in za.namelist() or n not in zb.namelist() or za.read(n) != zb.read(n)]
    meta = [n for n in names if n in za.namelist() and n in zb.namelist()
            and za.getinfo(n).date_time != zb.getinfo(n).date_time]
    return f"entries differing: {differ[:10]} ({len(differ)}); entry times differing: {meta[:5]}"


def test_a_print_reuses_what_fabctl_validate_found(warm, tmp_path: Path) -> None:
    """`fabctl validate CASE` stores its report as the print's validate artifact: the next print (here the
    same stages without sending, `fabctl slice CASE`) takes it from the cache instead of validating again."""
    home = copy_home(warm[0], tmp_path / "home")
    arts = home / "cases" / "case-42" / "artifacts"
    for d in arts.glob("validate-*"):
        shutil.rmtree(d)
    r = fabctl(home, warm[1], "validate", "case-42", "--printer", "sim-laser", "--json")
    assert r.code == 0, r.err
    assert len(list(arts.glob("validate-*"))) == 1
    r = fabctl(home, warm[1], "slice", "case-42", "--printer", "sim-laser", "--json")
    assert r.code == 0, r.err
    stages = {s["name"]: s for s in json.loads(r.out)["stages"]}
    assert stages["validate"]["cached"] is True
    assert all(s["cached"] for s in stages.values())
    # a different printer geometry is a different validation: not taken from the cache
    r = fabctl(home, warm[1], "validate", "case-42", "--printer", "sim-sl1s", "--json")
    assert r.code == 0, r.err
    assert len(list(arts.glob("validate-*"))) == 2
