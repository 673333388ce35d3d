"""`fabctl validate (CASE | --mesh PATH [--units U] [--plan PLAN.json]) [--resin ID] [--printer ID]
[--render DIR] [--json]`.

Exit 0 when every error check passes, 3 when one fails (the report is printed first, then one ``error:``
line on stderr), 2 for unreadable input.
With a CASE the latest revision's stored design and plan are validated and a ``validation.recorded`` event
is appended to the case's trace (an operator is required); with ``--mesh`` nothing is recorded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fabctl import __version__, profiles
from fabctl.case import DESIGN_FILE, PLAN_FILE, CaseStore
from fabctl.cli.common import emit_json, home, is_tty, operator
from fabctl.errors import CaseError, CheckFailed, InputError
from fabctl.mesh.report import ValidationReport
from fabctl.mesh.types import MeshInput
from fabctl.plan import Plan, load_plan
from fabctl.units import CLI_UNITS


def _load_case(case_id: str) -> tuple[MeshInput, Plan, dict]:
    from fabctl.db import open_db
    from fabctl.intake import require_case
    from fabctl.mesh.io import read_mesh

    db = open_db(home())
    store = CaseStore(home())
    revs = require_case(db, store, case_id)
    rev = revs[-1]
    if not rev.files_ok:
        raise CaseError(f"case {case_id} revision {rev.revision}: stored files do not match the trace",
                        hint="run `fabctl trace verify`; a design whose files changed is not validated")
    d = store.rev_dir(case_id, rev.revision)
    mesh = read_mesh(d / DESIGN_FILE, "mm")
    plan = load_plan(d / PLAN_FILE)
    plan_sha = hashlib.sha256((d / PLAN_FILE).read_bytes()).hexdigest()
    return mesh, plan, {"db": db, "revision": rev.revision, "design_sha256": rev.design_sha256,
                        "plan_sha256": plan_sha, "rev": rev, "case_dir": store.case_dir(case_id)}


def _keep_for_print(case_id: str, ctx: dict, report: ValidationReport, resin, printer) -> None:
    """Store the report where ``fabctl print`` looks for its validation (the validate stage's artifact), so a
    print of this revision with the same resin and printer geometry does not validate again."""
    from fabctl.artifacts import ArtifactCache
    from fabctl.pipeline.stages import validate_key

    key = validate_key(case_id, ctx["rev"], resin, printer)
    ArtifactCache(ctx["case_dir"]).put("validate", key, {"validation.json": report.model_dump_json(indent=2).encode()})


def _record(case_id: str, ctx: dict, report: ValidationReport, actor: str) -> int:
    from fabctl.trace import log
    from fabctl.trace.validation_events import ValidationRecorded

    ev = ValidationRecorded.from_report(report, ctx["revision"], ctx["design_sha256"], ctx["plan_sha256"],
                                        __version__)
    return log.record(ctx["db"], case_id, ev, actor).seq


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _print_table(report: ValidationReport, title: str) -> None:
    con = Console(width=140)
    t = Table(title=title, show_lines=False)
    for col, kw in (("check", {}), ("result", {}), ("value", {"justify": "right"}), ("limit", {"justify": "right"}),
                    ("details", {"overflow": "fold"})):
        t.add_column(col, **kw)
    for c in report.checks:
        if c.passed:
            res = "[green]pass[/]"
        else:
            res = {"error": "[bold red]FAIL[/]", "warning": "[yellow]warn[/]", "info": "[blue]info[/]"}[c.severity]
        msg = c.message
        if c.locations_mm and not c.passed:
            where = "; ".join("(" + ", ".join(f"{x:.1f}" for x in p) + ")" for p in c.locations_mm[:3])
            more = f" +{c.locations_total - 3} more" if c.locations_total > 3 else ""
            msg += f"\n  at {where}{more}"
        t.add_row(c.name, res, _fmt(c.value), _fmt(c.limit), msg)
    con.print(t)
    m = report.mesh
    con.print(f"mesh {m.triangles} triangles, {m.bodies} shell(s), {m.volume_mm3:.1f} mm³, "
              f"{' x '.join(f'{x:.1f}' for x in m.bbox_mm)} mm · resin {report.settings.resin} · printer "
              f"{report.settings.printer}")
    for p in report.thin_patches[:10]:
        con.print(f"  thin patch: {p.min_thickness_mm:.3f} mm (limit {p.limit_mm:g}), {p.area_mm2:.1f} mm² around "
                  f"({', '.join(f'{x:.1f}' for x in p.centroid_mm)})")
    verdict = "[bold green]PASS[/]: every error check passed" if report.ok else (
        "[bold red]FAIL[/]: " + ", ".join(c.name for c in report.failed))
    con.print(verdict)


def validate_cmd(
    case_id: str | None = typer.Argument(None, metavar="[CASE]", help="Validate this case's latest revision."),
    mesh: Path | None = typer.Option(None, "--mesh", help="Validate a mesh file instead (nothing is recorded)."),
    units: str | None = typer.Option(None, "--units", help=f"Unit of --mesh ({'|'.join(CLI_UNITS)})."),
    plan: Path | None = typer.Option(None, "--plan", help="plan.json for --mesh: enables the channel checks."),
    resin: str = typer.Option(profiles.DEFAULT_RESIN, "--resin", help="Resin profile id."),
    printer: str = typer.Option(profiles.DEFAULT_PRINTER, "--printer", help="Printer profile id."),
    render: Path | None = typer.Option(None, "--render", metavar="DIR",
                                       help="Write a thickness PNG (three views) and a coloured PLY here."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Check a design: topology, self-intersections, wall thickness, needle channel, build volume."""
    from fabctl.mesh.io import read_mesh
    from fabctl.mesh.validate import validate_details

    if (case_id is None) == (mesh is None):
        raise InputError("give a CASE or --mesh PATH (exactly one)", hint="fabctl validate case-42, or "
                         "fabctl validate --mesh guide.stl --units mm")
    if case_id is not None and (units is not None or plan is not None):
        raise InputError("--units and --plan go with --mesh; a case uses its stored design and plan")
    if units is not None and units not in CLI_UNITS:
        raise InputError(f"--units {units!r} is not one of {', '.join(CLI_UNITS)}")
    rp = profiles.resin(resin)
    pp = profiles.printer(printer)
    ctx = None
    if case_id is not None:
        actor = operator()  # refuse before the work, not after
        m, pl, ctx = _load_case(case_id)
        title = f"{case_id} revision {ctx['revision']}"
    else:
        m = read_mesh(mesh, units)
        pl = load_plan(plan) if plan is not None else None
        title = str(mesh.name)
    show = is_tty() and not json_out
    if show:
        con = Console(stderr=True)
        with con.status("validating ...") as st:
            report, details = validate_details(m, pl, rp, pp, progress=lambda s: st.update(f"validating: {s}"))
    else:
        report, details = validate_details(m, pl, rp, pp)
    files: list[str] = []
    if render is not None:
        from fabctl.mesh.render import render_validation

        stem = f"{case_id}-r{ctx['revision']}" if ctx else Path(mesh.name).stem
        try:
            files = [str(p) for p in render_validation(render, report, details, stem=stem)]
        except OSError as err:
            raise InputError(f"--render {render}: cannot write ({err.strerror or err})") from None
    seq = None
    if ctx is not None:
        seq = _record(case_id, ctx, report, actor)
        _keep_for_print(case_id, ctx, report, rp, pp)
    if json_out:
        doc = report.model_dump(mode="json")
        if ctx is not None:
            doc = {"case": case_id, "revision": ctx["revision"], "trace_seq": seq, **doc}
        if files:
            doc["rendered"] = files
        emit_json(doc)
    else:
        _print_table(report, title)
        for f in files:
            typer.echo(f"wrote {f}")
        if seq is not None:
            typer.echo(f"recorded validation.recorded in {case_id}'s trace (event {seq})")
    if not report.ok:
        # the report is out; the one-line error and exit 3 come from the CLI boundary (fabctl.cli.main)
        names = [c.name for c in report.failed]
        raise CheckFailed(f"validation failed: {len(names)} error check(s): {', '.join(names)}",
                          hint="the report above says where; --render DIR draws it")
