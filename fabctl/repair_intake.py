"""Repaired designs enter the case store as new revisions that need approval; approval is recorded.

``register_repair`` repairs the case's latest revision (``fabctl.mesh.repair``), stores the result as the next
revision with origin ``repair`` and ``needs_approval=True`` (same plan and skin files), and appends
``design.repaired`` (the fixes) and ``design.registered`` in one transaction, exactly as intake does: files
staged, events appended, folder renamed into place before the commit.

``approve`` records ``design.approved`` for a repaired revision. It refuses when the approver is the person
who ran the repair (four eyes), when the revision does not need approval or is already approved, and when the
revision's latest validation did not pass (or there is none): a person approves a repair after seeing it
validate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fabctl import __version__
from fabctl.case import DESIGN_FILE, PLAN_FILE, SKIN_FILE, CaseStore
from fabctl.db import Database
from fabctl.errors import CaseError, CheckFailed
from fabctl.intake import Revision, require_case
from fabctl.mesh.io import read_mesh, write_design_copy
from fabctl.mesh.repair import DEFAULT_MAX_HOLE_EDGES, RepairResult, repair
from fabctl.mesh.types import MeshInput
from fabctl.trace import log
from fabctl.trace.events import DesignApproved, DesignRegistered
from fabctl.trace.validation_events import DesignRepaired, FixSummary, ValidationRecorded


@dataclass(frozen=True)
class RepairOutcome:
    case_id: str
    parent_revision: int
    revision: int | None  # None: nothing needed fixing, no revision made
    design_sha256: str | None
    result: RepairResult
    event_seq: list[int]


def _latest_ok(revs: list[Revision], case_id: str) -> Revision:
    last = revs[-1]
    if not last.files_ok:
        raise CaseError(f"case {case_id} revision {last.revision}: stored files do not match the trace",
                        hint="run `fabctl trace verify`; do not repair a design whose files changed")
    return last


def register_repair(db: Database, store: CaseStore, case_id: str, actor: str,
                    max_hole_edges: int = DEFAULT_MAX_HOLE_EDGES) -> RepairOutcome:
    """Repair the latest revision of ``case_id`` into a new revision that needs approval."""
    revs = require_case(db, store, case_id)
    parent = _latest_ok(revs, case_id)
    src_dir = store.rev_dir(case_id, parent.revision)
    mesh = read_mesh(src_dir / DESIGN_FILE, "mm")
    result = repair(mesh.vertices, mesh.faces, max_hole_edges=max_hole_edges)
    if not result.changed:
        return RepairOutcome(case_id, parent.revision, None, None, result, [])
    fixed = MeshInput(vertices=result.vertices, faces=result.faces, source_sha256=parent.design_sha256,
                      source_format="stl-binary", units="mm", units_source=parent.units_source)
    revision = parent.revision + 1
    staging = store.staging(case_id)
    target = None
    done = False
    try:
        plan_bytes = (src_dir / PLAN_FILE).read_bytes()
        (staging / PLAN_FILE).write_bytes(plan_bytes)
        skin_sha = None
        if parent.skin_sha256 and (src_dir / SKIN_FILE).is_file():
            skin = (src_dir / SKIN_FILE).read_bytes()
            (staging / SKIN_FILE).write_bytes(skin)
            skin_sha = hashlib.sha256(skin).hexdigest()
        design_sha = write_design_copy(fixed, staging / DESIGN_FILE)
        ext = result.vertices.max(axis=0) - result.vertices.min(axis=0)
        repaired = DesignRepaired(
            revision=revision, parent_revision=parent.revision, parent_design_sha256=parent.design_sha256,
            design_sha256=design_sha, fixes=[FixSummary(name=f.name, count=f.count) for f in result.fixes],
            not_fixed=[FixSummary(name=f.name, count=f.count) for f in result.not_fixed],
            fabctl_version=__version__)
        registered = DesignRegistered(
            revision=revision, origin="repair", source_sha256=parent.design_sha256, design_sha256=design_sha,
            source_format="stl-binary", units="mm", units_source=parent.units_source,
            triangles=len(result.faces), vertices=len(result.vertices),
            bbox_mm=[round(float(x), 4) for x in ext], plan_sha256=hashlib.sha256(plan_bytes).hexdigest(),
            skin_sha256=skin_sha, intake_notes=[f"repair: {f.detail}" for f in result.fixes],
            needs_approval=True, fabctl_version=__version__)
        with db.write() as cur:
            seqs = [log.append(cur, case_id, repaired, actor).seq, log.append(cur, case_id, registered, actor).seq]
            target = store.commit(staging, case_id, revision)
        done = True
    finally:
        if not done:
            store.discard(staging)
            if target is not None:
                store.discard(target)
    return RepairOutcome(case_id, parent.revision, revision, design_sha, result, seqs)


def latest_validation(db: Database, case_id: str, design_sha256: str) -> dict | None:
    """The payload of the newest ``validation.recorded`` event for this design, or None."""
    found = None
    for ev in log.events(db, case_id):
        if ev.type == ValidationRecorded.TYPE and ev.payload.get("design_sha256") == design_sha256:
            found = ev.payload
    return found


def approve(db: Database, store: CaseStore, case_id: str, revision: int | None, approver: str,
            actor: str) -> Revision:
    """Record that ``approver`` approved a repaired revision (the latest when ``revision`` is None)."""
    if not log.ACTOR_RE.fullmatch(approver):
        raise CaseError(f"approver {approver!r} is not a staff ID ([a-z0-9][a-z0-9._-], at most 64 characters)")
    revs = require_case(db, store, case_id)
    rev = revs[-1] if revision is None else next((r for r in revs if r.revision == revision), None)
    if rev is None:
        raise CaseError(f"case {case_id} has no revision {revision}",
                        hint=f"revisions: {', '.join(str(r.revision) for r in revs)}")
    if not rev.needs_approval:
        raise CaseError(f"case {case_id} revision {rev.revision} ({rev.origin}) does not need approval")
    if rev.approved_by is not None:
        raise CaseError(f"case {case_id} revision {rev.revision} is already approved by {rev.approved_by}")
    if not rev.files_ok:
        raise CaseError(f"case {case_id} revision {rev.revision}: stored files do not match the trace",
                        hint="run `fabctl trace verify`")
    if approver == rev.actor:
        raise CheckFailed(f"{approver} made revision {rev.revision}; a repair needs a second person to approve it",
                          hint="ask another staff member to run `fabctl repair CASE --approve-by ID`")
    val = latest_validation(db, case_id, rev.design_sha256)
    if val is None:
        raise CheckFailed(f"case {case_id} revision {rev.revision} has not been validated",
                          hint=f"run `fabctl validate {case_id}` and review it before approving")
    if not val["ok"]:
        raise CheckFailed(f"case {case_id} revision {rev.revision} failed validation "
                          f"({', '.join(val['failed'])}); it cannot be approved",
                          hint="fix the design and register it with `fabctl case new --revise`")
    log.record(db, case_id, DesignApproved(revision=rev.revision, design_sha256=rev.design_sha256,
                                           approved_by=approver), actor)
    return next(r for r in require_case(db, store, case_id) if r.revision == rev.revision)
