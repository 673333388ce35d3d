"""`fabctl repair CASE [--max-hole-edges N] [--json]` and `fabctl repair CASE --approve-by ID [--revision N]`.

The first repairs the case's latest revision with the safe fixes only (``fabctl.mesh.repair``), lists every
fix and what was left alone, and stores the result as a new revision that needs approval (exit 0; exit 3 when
nothing could be fixed and problems remain; a clean design makes no revision). The second records a second
person's approval of a repaired revision after it has been validated (``fabctl validate CASE``).
"""

from __future__ import annotations

import typer

from fabctl.case import CaseStore
from fabctl.cli.common import emit_json, home, operator
from fabctl.db import open_db
from fabctl.errors import CheckFailed
from fabctl.mesh.repair import DEFAULT_MAX_HOLE_EDGES


def repair_cmd(
    case_id: str = typer.Argument(..., metavar="CASE"),
    max_hole_edges: int = typer.Option(DEFAULT_MAX_HOLE_EDGES, "--max-hole-edges", min=3, max=1000,
                                       help="Fill holes with at most this many edges."),
    approve_by: str | None = typer.Option(None, "--approve-by", metavar="ID",
                                          help="Approve a repaired revision (staff ID of the approver)."),
    revision: int | None = typer.Option(None, "--revision", min=1,
                                        help="With --approve-by: the revision to approve (default: latest)."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Repair a case's design into a new revision that needs approval, or approve one (--approve-by)."""
    from fabctl import repair_intake

    actor = operator()
    db = open_db(home())
    store = CaseStore(home())
    if approve_by is not None:
        rev = repair_intake.approve(db, store, case_id, revision, approve_by, actor)
        if json_out:
            emit_json({"case": case_id, "revision": rev.revision, "approved_by": rev.approved_by,
                       "printable": rev.printable, "design_sha256": rev.design_sha256})
        else:
            typer.echo(f"{case_id}: revision {rev.revision} approved by {rev.approved_by} (recorded by {actor})")
        return
    if revision is not None:
        raise typer.BadParameter("--revision goes with --approve-by; repair always starts from the latest")
    out = repair_intake.register_repair(db, store, case_id, actor, max_hole_edges=max_hole_edges)
    res = out.result
    if json_out:
        emit_json({
            "case": case_id, "parent_revision": out.parent_revision, "revision": out.revision,
            "design_sha256": out.design_sha256, "needs_approval": out.revision is not None,
            "fixes": [{"name": f.name, "count": f.count, "detail": f.detail} for f in res.fixes],
            "not_fixed": [{"name": f.name, "count": f.count, "detail": f.detail} for f in res.not_fixed],
            "events": out.event_seq,
        })
    else:
        if out.revision is None:
            typer.echo(f"{case_id}: revision {out.parent_revision} needs none of the safe fixes; no new revision")
        else:
            typer.echo(f"{case_id}: revision {out.revision} made from revision {out.parent_revision}:")
            for f in res.fixes:
                typer.echo(f"  fixed    {f.name}: {f.detail}")
        for f in res.not_fixed:
            typer.echo(f"  NOT fixed {f.name}: {f.detail}")
        if out.revision is not None:
            typer.echo(f"revision {out.revision} needs approval before it can print: `fabctl validate {case_id}`, "
                       f"then `fabctl repair {case_id} --approve-by ID` (someone other than {actor})")
    if out.revision is None and res.not_fixed:
        raise CheckFailed(f"case {case_id}: nothing safe to fix, and {len(res.not_fixed)} problem(s) remain: "
                          f"{', '.join(f.name for f in res.not_fixed)}", hint="these need the designer")
