"""A print on a hot-folder machine (industrial-cli): delivered, handed over, its outcome recorded by a person.

fabctl cannot see such a machine run, so the job stays ``printing`` (owner ``hot-folder machine``) until
someone records what the machine reports with ``fabctl queue outcome``; crash recovery of later prints leaves
it alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.conftest import assert_one_line_error
from tests.integration.print_fixtures import fabctl, fast_profiles, new_case, set_key


def _events(home: Path, prof: Path) -> list[dict]:
    r = fabctl(home, prof, "trace", "show", "case-42", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    return doc["events"] if isinstance(doc, dict) else doc


def test_hot_folder_print_then_the_recorded_outcome(tmp_path: Path) -> None:
    prof = fast_profiles(tmp_path / "profiles")
    folder = tmp_path / "hot"
    folder.mkdir()
    set_key(prof / "printers" / "industrial-cli.toml", "path", f'"{folder}"')
    home = tmp_path / "home"
    new_case(home, prof)
    assert fabctl(home, prof, "printer", "calibrate", "industrial-cli", "--due", "2099-01-01").code == 0

    r = fabctl(home, prof, "print", "case-42", "--printer", "industrial-cli", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["state"] == "printing" and doc["job_format"] == "cli"
    job = doc["job_id"]
    delivered = [p for p in folder.iterdir()]
    assert [p.name for p in delivered] == ["case-42.cli"]  # no temporary file left behind
    assert hashlib.sha256(delivered[0].read_bytes()).hexdigest() == doc["job_file_sha256"]

    # a later print runs crash recovery first: the handed-over job is not "interrupted", it still blocks the case
    again = fabctl(home, prof, "print", "case-42", "--printer", "industrial-cli")
    assert_one_line_error(again, 3, job)
    st = json.loads(fabctl(home, prof, "queue", "status", job, "--json").out)
    assert st["state"] == "printing" and st["owner"] == "hot-folder machine"
    assert any(e["payload"].get("detail", {}).get("handed_over") for e in st["events"])

    # fabctl cannot stop the machine, and a person's word needs a reason unless the part is done
    assert_one_line_error(fabctl(home, prof, "queue", "cancel", job), 3, "hot folder")
    assert_one_line_error(fabctl(home, prof, "queue", "outcome", job, "--state", "failed"), 2, "--reason")
    assert_one_line_error(fabctl(home, prof, "queue", "outcome", job, "--state", "failed", "--reason",
                                 "seen by Dr Miller"), 2, "--reason")
    assert_one_line_error(fabctl(home, prof, "queue", "outcome", job, "--state", "paused"), 2, "paused")
    assert not [e for e in _events(home, prof) if e["type"] == "print.finished"]

    r = fabctl(home, prof, "queue", "outcome", job, "--state", "done", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["state"] == "done"
    events = _events(home, prof)
    finished = [e["payload"] for e in events if e["type"] == "print.finished"]
    assert len(finished) == 1 and finished[0]["state"] == "done" and finished[0]["job_id"] == job
    assert finished[0]["job_sha256"] == doc["job_file_sha256"]
    serials = [e["payload"] for e in events if e["type"] == "device.assigned"]
    assert len(serials) == 1 and serials[0]["job_id"] == job
    # recorded once only; the trace verifies
    assert_one_line_error(fabctl(home, prof, "queue", "outcome", job, "--state", "done"), 3, "done")
    assert fabctl(home, prof, "trace", "verify").code == 0
