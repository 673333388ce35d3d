"""The device history record: every §2 field from a real store, the PDF pages, the HTML, the label's QR."""

from __future__ import annotations

import re
import subprocess
from html import escape
from pathlib import Path

import numpy as np
import pytest
import segno
from PIL import Image

from fabctl.report import dhr, html, label, pdf
from fabctl.trace import log
from fabctl.trace.record_events import DeviceScrapped, LoadItem, SterilizationLoadResult
from tests.unit.report import casebuild as cb

pytestmark = pytest.mark.db


def _labels() -> list[tuple[str, str]]:
    return [(fid, lab) for _, _, rows in dhr.CHECKLIST for fid, _, lab, _ in rows]


def _pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True, check=True)
    return re.sub(r"\s+", " ", out.stdout)


def _pages(path: Path, tmp: Path) -> list[np.ndarray]:
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(path), str(tmp / "pg")], check=True)
    return [np.asarray(Image.open(p).convert("L")) for p in sorted(tmp.glob("pg-*.png"))]


def test_released_record_holds_every_field(fabctl_home: Path, tmp_path: Path) -> None:
    db, store, reg = cb.full_case(fabctl_home, tmp_path)
    rec = dhr.collect(db, store, "case-42")
    fields = {f.id: f for f in rec.fields()}
    assert [fid for fid, _ in _labels()] == list(fields)  # every checklist row, in order
    assert len(fields) == 58
    for f in fields.values():  # a value with where it came from, or n/a with why: never blank
        assert (f.value is not None) != (f.na_reason is not None), f
        assert f.value is None or f.value.strip()
    assert rec.released and rec.status == "RELEASED" and rec.trace_ok
    assert fields["A2"].value == cb.SERIAL and fields["A4"].value == "L3, left"
    assert reg["design_sha256"] in fields["B5"].value
    assert fields["C8"].value == f"sha256 {cb.H['job']} (gcode)"
    assert "SIM-0001" in fields["D1"].value and fields["D2"].value == "mock-1.2.3"
    assert fields["E2"].value == "sg-lot-2607-114" and "2027-08-31" in fields["E3"].value
    assert fields["F2"].value == "done" and "2026-11-25T09:00:00+00:00" in fields["F1"].value
    assert "60 °C" in fields["G3"].value and "limit 60-60 °C, verified" in fields["G3"].value
    assert cb.LOAD in fields["J1"].value and "121 °C" in fields["J1"].value
    assert "cycle 8812" in fields["J1"].value
    assert fields["J2"].value == "CI pass; BI negative; processed"
    assert "qa1" in fields["J3"].value
    assert fields["H2"].value.startswith("needle go/no-go pass; fit pass; channel 3.25 mm (min 3.1 mm")
    assert fields["K1"].value == "made 1; released 1"
    assert fields["K2"].value == (f"qa1 (qa) at 2026-11-26T07:40:00+00:00; meaning approval; signed record "
                                  f"sha256 {cb.H['rec']}")
    assert fields["K4"].value == "2036-11-26"
    assert rec.head_hash == log.events(db, "case-42")[-1].hash and rec.head_hash in fields["L2"].value
    ev_types = {e.case_seq: e.type for e in rec.events}
    assert ev_types[fields["K2"].source[0]] == "release.signed"
    assert ev_types[fields["D1"].source[0]] == "print.started"
    assert [c.name for c in rec.checks] == ["watertight", "min_wall_thickness"]
    assert [(g.what, g.user_id, g.meaning, g.signed_sha256) for g in rec.signatures] == [
        (f"sterilization load {cb.LOAD}", "qa1", "approval", cb.H["sig"]),
        ("release for clinical use", "qa1", "approval", cb.H["rec"])]
    assert rec.label.sterile_status == f"STERILE: steam-gravity 121 °C, load {cb.LOAD}"
    assert [p.key for p in rec.pictures if p.missing] == ["thickness", "supports", "layers"]
    assert all("MISSING" in p.missing and "fabctl " in p.missing for p in rec.pictures)


def test_pdf_html_label_of_released_case(fabctl_home: Path, tmp_path: Path) -> None:
    db, store, _ = cb.full_case(fabctl_home, tmp_path)
    pics = tmp_path / "pics"
    pics.mkdir()
    Image.new("RGB", (400, 300), (30, 120, 200)).save(pics / "case-42-support.png")
    rec = dhr.collect(db, store, "case-42", [pics])
    out = pdf.write_pdf(rec, tmp_path / "case-42-dhr.pdf")
    pages = _pages(out, tmp_path)
    assert 3 <= len(pages) <= 8
    for page in pages:  # rendered, A4 at 50 dpi, with ink on it
        assert page.shape == (585, 414)
        assert (page < 128).mean() > 0.01
    text = _pdf_text(out)
    for fid, lab in _labels():
        assert f"{fid} {lab}" in text, (fid, lab)
    assert "RELEASED" in text and "DRAFT" not in text
    assert cb.SERIAL in text and rec.head_hash[:16] in text
    assert "Signatures (who, when, meaning, the hash signed)" in text
    assert "release for clinical use qa1 (qa)" in text
    assert "MISSING: no case-42-r1.png" in text and "fabctl validate case-42 --render DIR" in text
    imgs = subprocess.run(["pdfimages", "-list", str(out)], capture_output=True, text=True, check=True).stdout
    assert len(imgs.strip().splitlines()) - 2 == 1  # the one picture given is embedded

    page = html.write_html(rec, tmp_path / "case-42-dhr.html").read_text()
    for f in rec.fields():
        assert f'<tr id="{f.key}"><td>{f.id}</td><td>{f.label}</td>' in page
        assert escape(f.value if f.value is not None else f"n/a: {f.na_reason}") in page
    assert page.count("data:image/png;base64,") == 1 and "DRAFT" not in page

    png = label.write_label(rec.label, tmp_path / "label.png")
    img = Image.open(png)
    assert img.size == (label.WIDTH_PX, label.HEIGHT_PX) and round(img.info["dpi"][0]) == 300
    g = label.qr_geometry(cb.SERIAL)
    gray = np.asarray(img.convert("L"))
    n = g.modules.shape[0]
    centres = g.y0 + np.arange(n) * g.module_px + g.module_px // 2
    read = gray[np.ix_(centres, g.x0 + np.arange(n) * g.module_px + g.module_px // 2)] < 128
    ref = np.array([[bool(v) for v in row] for row in segno.make(cb.SERIAL, error="m", micro=False).matrix])
    assert read.shape == (21, 21) and (read == ref).all()  # version 1-Q symbol of the serial, pixel for pixel
    ring = gray[g.y0 - 4 * g.module_px: g.y0 - 1, g.x0: g.x0 + n * g.module_px]
    assert (ring > 200).all()  # the quiet zone is clear


def test_not_released_case_says_draft_everywhere(fabctl_home: Path, tmp_path: Path) -> None:
    db, store, _ = cb.full_case(fabctl_home, tmp_path, release=False)
    rec = dhr.collect(db, store, "case-42")
    assert not rec.released and rec.status == "DRAFT / NOT RELEASED"
    k = {f.id: f for f in rec.fields()}
    assert k["K2"].value is None and k["K2"].na_reason == "NOT RELEASED"
    assert k["K1"].value == "made 1; released 0 (not released)"
    out = pdf.write_pdf(rec, tmp_path / "d.pdf")
    text = _pdf_text(out)
    pages = _pages(out, tmp_path)
    assert text.count("DRAFT / NOT RELEASED") >= len(pages) + 1  # banner + every page's header
    page = html.write_html(rec, tmp_path / "d.html").read_text()
    assert 'class="banner draft">DRAFT / NOT RELEASED' in page
    gray = np.asarray(Image.open(label.write_label(rec.label, tmp_path / "l.png")).convert("RGB"))
    band = gray[label.HEIGHT_PX - 40, 5:label.WIDTH_PX - 5]
    assert ((band[:, 0] > 150) & (band[:, 1] < 60)).mean() > 0.5  # the red DRAFT band is there


def test_quarantine_after_release_and_tampering_are_not_released(fabctl_home: Path, tmp_path: Path,
                                                                  store) -> None:
    db, cases, _ = cb.full_case(fabctl_home, tmp_path)
    facts = dict(load_id=cb.LOAD, method="steam-gravity", temp_c=121, hold_min=30,
                 sterilizer_id="autoclave-a3",
                 cycle_no=8812, load_created_utc="2026-11-25T10:00:00+00:00", load_created_by="spd1",
                 contents=[LoadItem(case_id="case-42", serial=cb.SERIAL)])
    log.record(db, "case-42", SterilizationLoadResult(
        **facts, ci="pass", bi="positive", status="quarantined",
        quarantined=[LoadItem(case_id="case-42", serial=cb.SERIAL)]), "spd1")
    log.record(db, "case-42", DeviceScrapped(serial=cb.SERIAL, previous_status="quarantined"), "qa1")
    rec = dhr.collect(db, cases, "case-42")
    assert not rec.released and rec.label.sterile_status.startswith("QUARANTINED")
    assert {f.id: f for f in rec.fields()}["K1"].value == f"made 1; released 0; scrapped 1 ({cb.SERIAL})"

    db2, store2, _ = cb.full_case(fabctl_home, tmp_path, case_id="case-7")
    store.raw("UPDATE trace_events SET actor = 'qa9' WHERE type = 'inspection.recorded' "
              "AND case_id = 'case-7'")
    rec2 = dhr.collect(db2, store2, "case-7")
    assert not rec2.released and not rec2.trace_ok
    assert rec2.status == "DRAFT / NOT RELEASED: TRACE DOES NOT VERIFY"
    assert "edited" in rec2.trace_problems[0]
    assert {f.id: f for f in rec2.fields()}["L2"].value.startswith("TRACE DOES NOT VERIFY: 1 problem(s)")


def test_queue_and_pipeline_events_fill_fields_and_the_job_preview(fabctl_home: Path, tmp_path: Path) -> None:
    from fabctl.trace.print_events import PrintRefused, StageRecorded
    from fabctl.trace.queue_events import JobStateChanged

    db, store, reg = cb.new_case(fabctl_home, tmp_path)
    log.record(db, "case-42", PrintRefused(
        gate="resin_lot", message="lot sg-1 expired 2026-01-01 (limit: in date)", printer_id="sim-laser",
        resin_id="formlabs-sg-v1", fabctl_version="0.1.0"), "tech1")
    rec = dhr.collect(db, store, "case-42")
    f = {x.id: x for x in rec.fields()}
    assert f["F2"].value.startswith("refused before printing at gate resin_lot: lot sg-1 expired")
    assert f["F1"].value is None and f["F1"].na_reason == "not printed"

    key = "7" * 64
    job_dir = store.case_dir("case-42") / "artifacts" / f"job-{key}"
    job_dir.mkdir(parents=True)
    Image.new("RGB", (200, 100), (0, 0, 0)).save(job_dir / "preview.png")
    log.record(db, "case-42", JobStateChanged(job_id="job-000007", kind="case", printer_id="sim-laser",
                                              from_state=None, to_state="queued"), "tech1")
    log.record(db, "case-42", StageRecorded(stage="job", key=key, cached=False, seconds=1.5, revision=1,
                                            printer_id="sim-laser", job_id="job-000007",
                                            fabctl_version="0.1.0"), "tech1")
    cb.prepared(db, "case-42", reg)
    cb.printed(db, "case-42", reg)
    rec = dhr.collect(db, store, "case-42")
    f = {x.id: x for x in rec.fields()}
    queued = next(e for e in rec.events if e.type == "job.state")
    assert f["F1"].value == (f"queued {queued.at_utc}; started 2026-11-25T08:00:00+00:00; "
                             "finished 2026-11-25T09:00:00+00:00")
    assert f["F2"].value == "done"
    layers = next(p for p in rec.pictures if p.key == "layers")
    assert layers.path == str(job_dir / "preview.png") and layers.missing is None
