"""A case's trace as a self-verifying archive, checked on another machine with no database.

``export`` writes a zip holding:

- ``events.jsonl``: one JSON object per event with every stored field (the payload as its stored text), so
  each hash is recomputed with ``log.event_hash`` exactly as the database verifier does;
- ``files/rev-NNNN/{design.stl,plan.json,skin.stl}``: the case's stored files of every revision;
- ``artifacts/<folder>/<name>``: files of the case's artifact folders whose sha256 an event names (a job
  file, a print mesh) and the pictures (PNG) kept there;
- ``manifest.json``: the format, the case, the trace head, and per member its sha256, size, kind and the
  event field that names its hash (``ref``).

``verify_archive`` re-walks the chain from genesis with the same rules as ``log.verify`` (edited, missing,
reordered, broken link, head mismatch), checks every member against the manifest (and that none is missing
or extra), and checks every ``ref`` against the event it names. It reads members with size caps and refuses
unsafe names (absolute, ``..``, backslashes, links). Like the chain itself the archive is unkeyed: compare
the head hash it reports with the one filed with the device history record.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fabctl import __version__
from fabctl.case import DESIGN_FILE, PLAN_FILE, SKIN_FILE, CaseStore, sha256_file
from fabctl.db import Database
from fabctl.errors import CaseError, InputError
from fabctl.trace import log

FORMAT = "fabctl-trace-archive-v1"
MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 1 << 30  # 1 GiB: a large SL1 job file fits, a zip bomb does not
MAX_TOTAL_BYTES = 4 << 30
MAX_MANIFEST_BYTES = 16 << 20
MAX_RATIO = 200  # uncompressed / compressed; PNG layers and STL compress far less than this
_SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
#: revision file -> the design.registered field that names its hash
REV_FILES = {DESIGN_FILE: "design_sha256", PLAN_FILE: "plan_sha256", SKIN_FILE: "skin_sha256"}
_COLS = "seq, case_id, case_seq, type, at_utc, actor, payload, prev_hash, hash"
_KEYS = ("seq", "case_id", "case_seq", "type", "at_utc", "actor", "payload", "prev_hash", "hash")


@dataclass
class ExportResult:
    path: Path
    case_id: str
    events: int
    head_hash: str
    members: list[dict]
    not_included: list[str]


@dataclass
class ArchiveReport:
    case_id: str | None = None
    events: int = 0
    members: int = 0
    head_hash: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _hashes_in(payload: object, path: str = "") -> list[tuple[str, str]]:
    """``(field path, sha256)`` for every ``*_sha256`` string in a payload (nested dicts too)."""
    out: list[tuple[str, str]] = []
    if isinstance(payload, dict):
        for k, v in payload.items():
            p = f"{path}.{k}" if path else k
            if isinstance(v, str) and k.endswith("sha256") and _HEX64.fullmatch(v):
                out.append((p, v))
            elif isinstance(v, dict):
                out += _hashes_in(v, p)
    return out


def _stored_rows(db: Database, case_id: str) -> tuple[list[tuple], tuple[int, str] | None]:
    with db.read() as cur:
        rows = cur.execute(f"SELECT {_COLS} FROM trace_events WHERE case_id = ? ORDER BY seq",
                           (case_id,)).fetchall()
        head = cur.execute("SELECT case_seq, hash FROM trace_heads WHERE case_id = ?", (case_id,)).fetchone()
    return [tuple(r) for r in rows], (tuple(head) if head else None)


def _members_to_export(store: CaseStore, case_id: str, rows: list[tuple]) -> tuple[list[tuple], list[str]]:
    """``(arcname, source path, kind, ref)`` of every file to include, and what could not be included."""
    out: list[tuple] = []
    missing: list[str] = []
    named: dict[str, tuple[int, str]] = {}
    for r in rows:
        payload = json.loads(r[6])
        for fld, h in _hashes_in(payload):
            named.setdefault(h, (r[2], fld))
        if r[3] == "design.registered":
            rev = int(payload["revision"])
            for name, fld in REV_FILES.items():
                if payload.get(fld) is None:
                    continue
                src = store.rev_dir(case_id, rev) / name
                arc = f"files/rev-{rev:04d}/{name}"
                if src.is_file():
                    out.append((arc, src, "revision-file", {"case_seq": r[2], "field": fld}))
                else:
                    missing.append(f"{arc} (named by event {r[2]} {fld}) is not in the case store")
    art_root = store.case_dir(case_id) / "artifacts"
    if art_root.is_dir():
        for p in sorted(art_root.rglob("*")):
            if not p.is_file() or p.is_symlink() or any(part.startswith(".") for part in
                                                       p.relative_to(art_root).parts):
                continue
            if p.stat().st_size > MAX_MEMBER_BYTES:
                missing.append(f"artifacts/{p.relative_to(art_root).as_posix()} is over the member size cap")
                continue
            is_picture = p.suffix.lower() == ".png"
            h = sha256_file(p) if (is_picture or p.stat().st_size > 0) else None
            ref = named.get(h) if h else None
            if ref is None and not is_picture:
                continue
            kind = "picture" if is_picture and ref is None else "artifact"
            arc = f"artifacts/{p.relative_to(art_root).as_posix()}"
            if safe_member_name(arc):
                missing.append(f"{arc}: name is not archive-safe ({safe_member_name(arc)})")
                continue
            out.append((arc, p, kind,
                        {"case_seq": ref[0], "field": ref[1]} if ref else None))
    return out, missing


def export(db: Database, store: CaseStore, case_id: str, out_path: Path) -> ExportResult:
    """Write ``case_id``'s events, stored files, referenced artifacts and manifest to ``out_path`` (zip)."""
    log.check_case_id(case_id)
    rows, head = _stored_rows(db, case_id)
    if not rows:
        raise CaseError(f"unknown case {case_id!r}: it has no trace events",
                        hint="`fabctl case ls` lists the cases")
    events_bytes = "".join(json.dumps(dict(zip(_KEYS, r, strict=True)), ensure_ascii=False) + "\n"
                           for r in rows).encode("utf-8")
    files, missing = _members_to_export(store, case_id, rows)
    members = [{"name": EVENTS, "sha256": hashlib.sha256(events_bytes).hexdigest(),
                "size": len(events_bytes), "kind": "events", "ref": None}]
    for arc, src, kind, ref in files:
        members.append({"name": arc, "sha256": sha256_file(src), "size": src.stat().st_size, "kind": kind,
                        "ref": ref})
    manifest = {
        "format": FORMAT, "case_id": case_id, "exported_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "fabctl_version": __version__, "events": len(rows),
        "trace_head": {"case_seq": head[0], "hash": head[1]} if head else None,
        "members": members, "not_included": missing,
    }
    out_path = Path(out_path)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".zip", dir=out_path.parent)
        os.close(fd)
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            z.writestr(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
            z.writestr(EVENTS, events_bytes)
            for arc, src, _, _ in files:
                z.write(src, arc)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; an archive is meant to be handed on
        os.replace(tmp, out_path)
    except OSError as err:
        raise InputError(f"cannot write archive {out_path}: {err.strerror or err}",
                         hint="choose a writable folder for -o") from None
    return ExportResult(out_path, case_id, len(rows), head[1] if head else "", members, missing)


def safe_member_name(name: str) -> str | None:
    """Why ``name`` is not a safe archive member name, or None when it is."""
    if not name or "\\" in name or "\0" in name:
        return "empty or holds a backslash or NUL"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "absolute path"
    parts = name.split("/")
    if any(p in ("..", ".") for p in parts):
        return "holds a '..' or '.' path part"
    if not all(_SAFE_PART.fullmatch(p) for p in parts):
        return "a path part is not [A-Za-z0-9._-] (at most 128 characters)"
    return None


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> tuple[bytes | None, str | None]:
    """The member's bytes (hashing as it reads), refusing more than ``cap`` bytes whatever the header says."""
    if info.file_size > cap:
        return None, f"declares {info.file_size} bytes, over the cap of {cap}"
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > (1 << 20):
        return None, f"compression ratio over {MAX_RATIO}:1 (a zip bomb?)"
    buf = bytearray()
    try:
        with z.open(info) as f:
            while chunk := f.read(1 << 20):
                buf += chunk
                if len(buf) > cap:
                    return None, f"holds more than {cap} bytes"
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return None, f"cannot be read ({err})"
    return bytes(buf), None


def _check_chain(rep: ArchiveReport, case_id: str, lines: list[bytes], head: dict | None) -> list[dict]:
    events: list[dict] = []
    rows: list[tuple] = []
    for i, line in enumerate(lines, 1):
        try:
            ev = json.loads(line)
            row = tuple(ev[k] for k in _KEYS)
            if not isinstance(ev["payload"], str):
                raise TypeError("payload is not its stored text")
        except (ValueError, KeyError, TypeError) as err:
            rep.problems.append(f"{EVENTS} line {i}: not an event row ({err})")
            continue
        if row[1] != case_id:
            rep.problems.append(f"{EVENTS} line {i}: event of case {row[1]!r} in the archive of {case_id}")
            continue
        rows.append(row)
        events.append(ev)
    rep.events = len(rows)
    head_t = (head["case_seq"], head["hash"]) if isinstance(head, dict) else None
    rep.problems += [p.line() for p in log._verify_case(case_id, rows, head_t)]
    return events


def _check_refs(rep: ArchiveReport, members: list[dict], events: list[dict]) -> None:
    by_seq: dict[int, dict] = {}
    for ev in events:
        try:
            by_seq[ev["case_seq"]] = json.loads(ev["payload"])
        except ValueError:
            rep.problems.append(f"event {ev['case_seq']}: payload is not JSON")
    present = {m["name"] for m in members}
    for ev in events:
        if ev["type"] != "design.registered" or ev["case_seq"] not in by_seq:
            continue
        p = by_seq[ev["case_seq"]]
        for name, fld in REV_FILES.items():
            arc = f"files/rev-{int(p.get('revision', 0)):04d}/{name}"
            if p.get(fld) is not None and arc not in present:
                rep.problems.append(f"member {arc}: missing, but event {ev['case_seq']} names its {fld}")
    for m in members:
        ref = m.get("ref")
        if not ref:
            continue
        payload = by_seq.get(ref.get("case_seq"))
        value: object = payload
        for part in str(ref.get("field", "")).split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value != m["sha256"]:
            rep.problems.append(f"member {m['name']}: event {ref.get('case_seq')} {ref.get('field')} is "
                                f"{str(value)[:16]}..., the file's sha256 is {m['sha256'][:16]}...")


def verify_archive(path: Path) -> ArchiveReport:
    """Check an exported archive on its own: chain, members against the manifest, files against events."""
    rep = ArchiveReport()
    try:
        z = zipfile.ZipFile(Path(path))
    except (OSError, zipfile.BadZipFile) as err:
        rep.problems.append(f"archive {path}: not a readable zip ({err})")
        return rep
    with z:
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS:
            rep.problems.append(f"archive {path}: {len(infos)} members, over the cap of {MAX_MEMBERS}")
            return rep
        names: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            why = safe_member_name(info.filename)
            mode = info.external_attr >> 16
            if why is None and (info.is_dir() or stat.S_ISLNK(mode)):
                why = "a directory or symbolic link entry"
            if why is None and info.filename in names:
                why = "appears twice"
            if why:
                rep.problems.append(f"member {info.filename!r}: refused: {why}")
                continue
            names[info.filename] = info
        if rep.problems:
            return rep  # never read anything from an archive with an unsafe member
        if MANIFEST not in names:
            rep.problems.append(f"member {MANIFEST}: missing")
            return rep
        raw, why = _read_member(z, names[MANIFEST], MAX_MANIFEST_BYTES)
        try:
            manifest = json.loads(raw) if raw is not None else None
            members = manifest["members"]
            case_id = log.check_case_id(manifest["case_id"])
            if manifest.get("format") != FORMAT:
                raise ValueError(f"format {manifest.get('format')!r} is not {FORMAT}")
        except (ValueError, KeyError, TypeError, InputError) as err:
            rep.problems.append(f"member {MANIFEST}: {why or err}")
            return rep
        rep.case_id, rep.members = case_id, len(members)
        head = manifest.get("trace_head")
        rep.head_hash = head.get("hash") if isinstance(head, dict) else None
        listed = {m.get("name") for m in members if isinstance(m, dict)}
        for extra in sorted(set(names) - listed - {MANIFEST}):
            rep.problems.append(f"member {extra}: in the archive but not in the manifest")
        total, event_lines = 0, None
        for m in members:
            name = m.get("name") if isinstance(m, dict) else None
            if name not in names:
                rep.problems.append(f"member {name}: listed in the manifest but missing from the archive")
                continue
            data, why = _read_member(z, names[name], min(MAX_MEMBER_BYTES, MAX_TOTAL_BYTES - total))
            if data is None:
                rep.problems.append(f"member {name}: {why}")
                continue
            total += len(data)
            if hashlib.sha256(data).hexdigest() != m.get("sha256"):
                rep.problems.append(f"member {name}: sha256 does not match the manifest (the file changed)")
            if name == EVENTS:
                event_lines = [ln for ln in data.splitlines() if ln.strip()]
        if event_lines is None:
            rep.problems.append(f"member {EVENTS}: missing; nothing to verify the chain with")
            return rep
        events = _check_chain(rep, case_id, event_lines, head)
        _check_refs(rep, [m for m in members if isinstance(m, dict) and m.get("name") in names], events)
    return rep
