"""Case intake: a design file and its plan become a stored, hashed design revision and trace events.

Everything is read and checked before anything is written. The revision's files are staged, the events are
appended inside one write transaction, and the staged folder is renamed into place before that transaction
commits: either both the files and the record exist, or neither does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from fabctl import __version__
from fabctl.case import DESIGN_FILE, PLAN_FILE, SKIN_FILE, CaseStore, sha256_file
from fabctl.db import Database
from fabctl.errors import CaseError, FabctlError
from fabctl.mesh.io import read_mesh, write_design_copy
from fabctl.plan import Plan, load_plan
from fabctl.trace import log
from fabctl.trace.events import CaseCreated, DesignApproved, DesignRegistered, IntakeRefused


@dataclass(frozen=True)
class Revision:
    """A design revision as the trace records it, with whether its files on disk still match."""

    revision: int
    origin: str
    design_sha256: str
    source_sha256: str
    plan_sha256: str
    skin_sha256: str | None
    triangles: int
    bbox_mm: list[float]
    units: str
    units_source: str
    needs_approval: bool
    approved_by: str | None
    registered_utc: str
    actor: str
    files_ok: bool
    notes: list[str]

    @property
    def printable(self) -> bool:
        return self.files_ok and (not self.needs_approval or self.approved_by is not None)


@dataclass(frozen=True)
class IntakeResult:
    case_id: str
    revision: int
    created: bool
    unchanged: bool
    event_seq: list[int]


def _plan_bytes(plan: Plan) -> bytes:
    return (json.dumps(plan.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode()


def register(db: Database, store: CaseStore, case_id: str, mesh_path: Path, plan_path: Path,
             units: str | None, actor: str, revise: bool = False) -> IntakeResult:
    """Register ``mesh_path`` + ``plan_path`` as the next design revision of ``case_id``."""
    log.check_case_id(case_id)
    history = revisions(db, store, case_id)
    try:
        mesh = read_mesh(Path(mesh_path), units)
        plan = load_plan(Path(plan_path))
        skin = None
        if plan.skin_surface:
            skin = read_mesh(Path(plan_path).parent / plan.skin_surface, units or mesh.units, check_extent=False)
    except FabctlError as err:
        if history:  # the case exists: the refusal belongs in its record
            src = sha256_file(mesh_path) if Path(mesh_path).is_file() else None
            log.record(db, case_id, IntakeRefused(source_sha256=src, reason=err.message[:300]), actor)
        raise
    if skin is not None:
        plan = plan.model_copy(update={"skin_surface": SKIN_FILE})
    plan_bytes = _plan_bytes(plan)
    plan_sha = hashlib.sha256(plan_bytes).hexdigest()
    if history:
        last = history[-1]
        same = last.source_sha256 == mesh.source_sha256 and last.plan_sha256 == plan_sha
        if same:
            return IntakeResult(case_id, last.revision, created=False, unchanged=True, event_seq=[])
        if not revise:
            raise CaseError(
                f"case {case_id} already has revision {last.revision} with a different design or plan",
                hint="pass --revise to register it as a new revision",
            )
    revision = (history[-1].revision + 1) if history else 1
    staging = store.staging(case_id)
    target: Path | None = None
    done = False
    try:
        (staging / PLAN_FILE).write_bytes(plan_bytes)
        design_sha = write_design_copy(mesh, staging / DESIGN_FILE)
        skin_sha = write_design_copy(skin, staging / SKIN_FILE) if skin is not None else None
        event = DesignRegistered(
            revision=revision, origin="intake", source_sha256=mesh.source_sha256, design_sha256=design_sha,
            source_format=mesh.source_format, units=mesh.units, units_source=mesh.units_source,
            triangles=len(mesh.faces), vertices=len(mesh.vertices),
            bbox_mm=[round(float(x), 4) for x in mesh.extents_mm], plan_sha256=plan_sha, skin_sha256=skin_sha,
            intake_notes=list(mesh.notes), needs_approval=False, fabctl_version=__version__,
        )
        seqs = []
        with db.write() as cur:
            if not history:
                seqs.append(log.append(cur, case_id, CaseCreated(fabctl_version=__version__), actor).seq)
            seqs.append(log.append(cur, case_id, event, actor).seq)
            target = store.commit(staging, case_id, revision)
        done = True
    finally:
        if not done:  # the transaction rolled back: leave no files the trace does not know
            store.discard(staging)
            if target is not None:
                store.discard(target)
    return IntakeResult(case_id, revision, created=not history, unchanged=False, event_seq=seqs)


def revisions(db: Database, store: CaseStore, case_id: str) -> list[Revision]:
    """The case's design revisions from its trace, each checked against its files on disk."""
    approvals: dict[int, str] = {}
    regs = []
    for ev in log.events(db, case_id):
        if ev.type == DesignRegistered.TYPE:
            regs.append(ev)
        elif ev.type == DesignApproved.TYPE:
            approvals[ev.payload["revision"]] = ev.payload["approved_by"]
    out = []
    for ev in regs:
        p = ev.payload
        d = store.rev_dir(case_id, p["revision"])
        files_ok = _files_match(d, p)
        out.append(Revision(
            revision=p["revision"], origin=p["origin"], design_sha256=p["design_sha256"],
            source_sha256=p["source_sha256"], plan_sha256=p["plan_sha256"], skin_sha256=p.get("skin_sha256"),
            triangles=p["triangles"], bbox_mm=p["bbox_mm"], units=p["units"], units_source=p["units_source"],
            needs_approval=p["needs_approval"], approved_by=approvals.get(p["revision"]),
            registered_utc=ev.at_utc, actor=ev.actor, files_ok=files_ok, notes=p.get("intake_notes", []),
        ))
    return out


def _files_match(d: Path, p: dict) -> bool:
    want = {DESIGN_FILE: p["design_sha256"], PLAN_FILE: p["plan_sha256"]}
    if p.get("skin_sha256"):
        want[SKIN_FILE] = p["skin_sha256"]
    return all((d / name).is_file() and sha256_file(d / name) == sha for name, sha in want.items())


def require_case(db: Database, store: CaseStore, case_id: str) -> list[Revision]:
    """The case's revisions; ``CaseError`` (exit 2) for an unknown case."""
    log.check_case_id(case_id)
    revs = revisions(db, store, case_id)
    if not revs:
        raise CaseError(f"unknown case {case_id!r}", hint="`fabctl case ls` lists the cases; "
                        "`fabctl case new` registers one")
    return revs


def store_problems(db: Database, store: CaseStore) -> list[str]:
    """Disagreements between the files on disk and the trace: folders with no record, files that changed."""
    out = []
    recorded = set(log.cases(db))
    on_disk = {p.name for p in store.root.iterdir() if p.is_dir()} if store.root.is_dir() else set()
    for cid in sorted(on_disk - recorded):
        revs = store.revisions_on_disk(cid)
        if revs:
            out.append(f"case {cid}: {len(revs)} revision folder(s) on disk but no trace events")
    for cid in sorted(recorded):
        revs = revisions(db, store, cid)
        known = {r.revision for r in revs}
        for r in revs:
            if not r.files_ok:
                out.append(f"case {cid} revision {r.revision}: stored files are missing or differ from the "
                           "hashes in the trace")
        for n in store.revisions_on_disk(cid):
            if n not in known:
                out.append(f"case {cid} revision {n}: folder on disk has no design.registered event")
    return out
