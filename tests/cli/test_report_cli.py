"""`fabctl report CASE -o DIR`: PDF, HTML and label through the real CLI; draft, tampered, unknown case."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import assert_one_line_error
from tests.unit.report import casebuild as cb

pytestmark = pytest.mark.db


def test_report_of_released_case(fabctl, fabctl_home: Path, tmp_path: Path) -> None:
    cb.full_case(fabctl_home, tmp_path)
    pics = tmp_path / "pics"
    pics.mkdir()
    Image.new("RGB", (320, 200), (200, 60, 30)).save(pics / "case-42-r1.png")
    out = tmp_path / "out"
    r = fabctl("report", "case-42", "-o", str(out), "--pictures", str(pics), "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["status"] == "RELEASED" and doc["released"] and doc["trace_ok"] and doc["serial"] == cb.SERIAL
    assert doc["fields"] == 58 and "A2" not in doc["na"] and "K2" not in doc["na"]
    assert doc["missing_pictures"] == ["supports", "layers"]
    files = {k: Path(v) for k, v in doc["files"].items()}
    assert files == {"pdf": out / "case-42-dhr.pdf", "html": out / "case-42-dhr.html",
                     "label": out / "case-42-label.png"}
    assert all(p.stat().st_size > 1000 for p in files.values())
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(files["pdf"]), str(tmp_path / "pg")], check=True)
    assert len(list(tmp_path.glob("pg-*.png"))) >= 3
    head = json.loads(fabctl("trace", "show", "case-42", "--json").out)["head"]
    assert doc["head"] == head and head in files["html"].read_text()
    plain = fabctl("report", "case-42", "-o", str(out))
    assert plain.code == 0 and "picture supports: MISSING" in plain.out


def test_draft_report_and_errors(fabctl, fabctl_home: Path, tmp_path: Path, store) -> None:
    cb.full_case(fabctl_home, tmp_path, release=False)
    r = fabctl("report", "case-42", "-o", str(tmp_path / "o"), "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["status"] == "DRAFT / NOT RELEASED"
    assert "DRAFT / NOT RELEASED" in (tmp_path / "o" / "case-42-dhr.html").read_text()
    assert_one_line_error(fabctl("report", "case-9", "-o", str(tmp_path / "o")), 2, "unknown case")
    store.raw("UPDATE trace_events SET at_utc = '2020-01-01T00:00:00.000000+00:00' WHERE case_seq = 3")
    bad = fabctl("report", "case-42", "-o", str(tmp_path / "t"))
    assert_one_line_error(bad, 5, "case case-42", "does not verify")
    assert "TRACE DOES NOT VERIFY" in (tmp_path / "t" / "case-42-dhr.html").read_text()
