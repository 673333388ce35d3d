"""`fabctl trace export` / `trace verify --archive`: a self-verifying archive, checked with no database;
every tampering (event byte, artifact byte, removed member, traversal name, rewritten manifest) exits 5."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from fabctl.case import CaseStore
from tests.conftest import assert_one_line_error
from tests.unit.report import casebuild as cb

pytestmark = pytest.mark.db

JOB = b"; fabctl job\nG28\nG1 Z0.05\nM2\n"


@pytest.fixture
def archive(fabctl, fabctl_home: Path, tmp_path: Path) -> Path:
    """A printed and released case whose job file and a picture sit in its artifact folder, exported."""
    db, store, reg = cb.new_case(fabctl_home, tmp_path)
    art = CaseStore(fabctl_home).case_dir("case-42") / "artifacts" / f"job-{'9' * 64}"
    art.mkdir(parents=True)
    (art / "job.gcode").write_bytes(JOB)
    (art / "case-42-layers.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (art / "unrelated.bin").write_bytes(b"not named by any event")
    job_sha = hashlib.sha256(JOB).hexdigest()
    cb.prepared(db, "case-42", reg, job_sha)
    cb.printed(db, "case-42", reg, job_sha)
    cb.finished(db, "case-42")
    out = tmp_path / "export" / "case-42.zip"
    r = fabctl("trace", "export", "case-42", "-o", str(out), "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["events"] == 14 and doc["not_included"] == []
    return out


def _rewrite(src: Path, dst: Path, change: dict[str, bytes | None], fix_manifest: bool = False,
             extra: dict[str, bytes] | None = None) -> Path:
    """Copy ``src`` with members replaced (None: removed); optionally recompute the manifest's hashes."""
    with zipfile.ZipFile(src) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    for name, data in change.items():
        if data is None:
            members.pop(name)
        else:
            members[name] = data
    if fix_manifest:
        man = json.loads(members["manifest.json"])
        for m in man["members"]:
            if m["name"] in members:
                m["sha256"] = hashlib.sha256(members[m["name"]]).hexdigest()
        man["members"] = [m for m in man["members"] if m["name"] in members]
        members["manifest.json"] = json.dumps(man).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in {**members, **(extra or {})}.items():
            z.writestr(name, data)
    return dst


def _flip(data: bytes, needle: bytes) -> bytes:
    i = data.index(needle)
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


def _verify(fabctl, path: Path, tmp_path: Path):
    """Verify on "another machine": an empty FABCTL_HOME that must stay without a database."""
    other = tmp_path / "other-machine"
    r = fabctl("trace", "verify", "--archive", str(path), "--json", env={"FABCTL_HOME": str(other)})
    assert not (other / "fabctl.db").exists()
    return r


def test_export_then_verify_ok(fabctl, archive: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        man = json.loads(z.read("manifest.json"))
        events = [json.loads(x) for x in z.read("events.jsonl").splitlines()]
    art = f"artifacts/job-{'9' * 64}"
    assert names == {"manifest.json", "events.jsonl", "files/rev-0001/design.stl", "files/rev-0001/plan.json",
                     f"{art}/job.gcode", f"{art}/case-42-layers.png"}  # not the unrelated file
    job = next(m for m in man["members"] if m["name"].endswith("job.gcode"))
    assert job["ref"] == {"case_seq": 5, "field": "job_sha256"}
    assert job["sha256"] == hashlib.sha256(JOB).hexdigest()
    assert man["trace_head"]["case_seq"] == 14 and man["trace_head"]["hash"] == events[-1]["hash"]
    assert isinstance(events[0]["payload"], str)  # the payload exactly as stored
    r = _verify(fabctl, archive, tmp_path)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["ok"] and doc["events"] == 14 and doc["members"] == 5 and doc["head"] == events[-1]["hash"]
    plain = fabctl("trace", "verify", "--archive", str(archive))
    assert plain.code == 0 and plain.out.startswith("ok: archive of case-42: 14 events")


def test_one_byte_of_an_event_changed_fails(fabctl, archive: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(archive) as z:
        ev = z.read("events.jsonl")
    bad = _flip(ev, b"sg-lot-2607-114")  # the resin lot in print.started
    r = _verify(fabctl, _rewrite(archive, tmp_path / "a.zip", {"events.jsonl": bad}), tmp_path)
    assert_one_line_error(r, 5, "events.jsonl", "sha256")
    # the forger also fixes the manifest: the chain still names the edited event
    r2 = _verify(fabctl, _rewrite(archive, tmp_path / "b.zip", {"events.jsonl": bad}, fix_manifest=True),
                 tmp_path)
    assert_one_line_error(r2, 5, "event 6", "edited")
    assert json.loads(r2.out)["problems"] == [
        "case case-42 event 6 (row seq 6): edited: stored hash does not match the row's contents "
        "(a field or payload byte changed)"]


def test_one_byte_of_an_artifact_changed_fails(fabctl, archive: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(archive) as z:
        design = z.read("files/rev-0001/design.stl")
        job_name = next(n for n in z.namelist() if n.endswith("job.gcode"))
    bad = bytearray(design)
    bad[200] ^= 0x01
    r = _verify(fabctl, _rewrite(archive, tmp_path / "a.zip", {"files/rev-0001/design.stl": bytes(bad)}),
                tmp_path)
    assert_one_line_error(r, 5, "member files/rev-0001/design.stl", "sha256 does not match")
    r2 = _verify(fabctl, _rewrite(archive, tmp_path / "b.zip", {job_name: _flip(JOB, b"G28")},
                                  fix_manifest=True), tmp_path)
    assert_one_line_error(r2, 5, f"member {job_name}", "event 5 job_sha256")


def test_removed_member_and_unsafe_names_fail(fabctl, archive: Path, tmp_path: Path) -> None:
    r = _verify(fabctl, _rewrite(archive, tmp_path / "a.zip", {"files/rev-0001/plan.json": None}), tmp_path)
    assert_one_line_error(r, 5, "member files/rev-0001/plan.json", "missing from the archive")
    # removed from the manifest too: the design.registered event still names the file
    r2 = _verify(fabctl, _rewrite(archive, tmp_path / "b.zip", {"files/rev-0001/plan.json": None},
                                  fix_manifest=True), tmp_path)
    assert_one_line_error(r2, 5, "member files/rev-0001/plan.json", "event 2 names its plan_sha256")
    r3 = _verify(fabctl, _rewrite(archive, tmp_path / "c.zip", {}, extra={"../evil.txt": b"x"}), tmp_path)
    assert_one_line_error(r3, 5, "member '../evil.txt': refused", "'..'")
    assert not (tmp_path / "evil.txt").exists()
    from fabctl.trace.archive import verify_archive

    for evil, why in (("/etc/evil", "absolute"), ("files/..\\x", "backslash")):
        rep = verify_archive(_rewrite(archive, tmp_path / "c.zip", {}, extra={evil: b"x"}))
        assert len(rep.problems) == 1 and rep.problems[0].startswith(f"member {evil!r}: refused") and why in \
            rep.problems[0], rep.problems
    r4 = _verify(fabctl, _rewrite(archive, tmp_path / "d.zip", {}, extra={"files/extra.txt": b"x"}), tmp_path)
    assert_one_line_error(r4, 5, "member files/extra.txt", "not in the manifest")
    (tmp_path / "not.zip").write_bytes(b"plain text")
    assert_one_line_error(_verify(fabctl, tmp_path / "not.zip", tmp_path), 5, "not a readable zip")
    r5 = fabctl("trace", "verify", "--archive", str(tmp_path / "nope.zip"))
    assert_one_line_error(r5, 2, "does not exist")


def test_export_unknown_case_is_exit_2(fabctl, fabctl_home: Path, tmp_path: Path) -> None:
    r = fabctl("trace", "export", "case-9", "-o", str(tmp_path / "x.zip"))
    assert_one_line_error(r, 2, "unknown case")


def test_zip_safety_caps_and_links(archive: Path, tmp_path: Path) -> None:
    from fabctl.trace import archive as arc

    link = tmp_path / "link.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(link, "w") as z:
        for i in src.infolist():
            z.writestr(i, src.read(i))
        info = zipfile.ZipInfo("files/evil-link")
        info.external_attr = (0o120777 << 16)  # a symbolic link entry
        z.writestr(info, "/etc/passwd")
    rep = arc.verify_archive(link)
    assert rep.problems == ["member 'files/evil-link': refused: a directory or symbolic link entry"]

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for i in src.infolist():
            z.writestr(i.filename, src.read(i))
        z.writestr("files/zeros.bin", b"\0" * (8 << 20))  # 8 MiB of zeros compresses ~1000:1
    rep = arc.verify_archive(bomb)
    assert "member files/zeros.bin: in the archive but not in the manifest" in rep.problems
    with zipfile.ZipFile(bomb) as z:
        data, why = arc._read_member(z, z.getinfo("files/zeros.bin"), arc.MAX_MEMBER_BYTES)
        assert data is None and "compression ratio over 200:1" in why
        data, why = arc._read_member(z, z.getinfo("manifest.json"), 100)
        assert data is None and why.startswith("declares") and "over the cap of 100" in why
    names = ("files/rev-0001/design.stl", "a/../b", "C:/x", "a//b", "a/.hidden")
    assert [arc.safe_member_name(n) for n in names] == [
        None, "holds a '..' or '.' path part", "absolute path",
        *["a path part is not [A-Za-z0-9._-] (at most 128 characters)"] * 2]
