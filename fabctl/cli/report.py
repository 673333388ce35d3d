"""`fabctl report CASE -o DIR [--pictures DIR] [--json]`: device history record (PDF + HTML) and label.

Writes ``DIR/<case>-dhr.pdf``, ``DIR/<case>-dhr.html`` and ``DIR/<case>-label.png``. A case that is not
released gets DRAFT / NOT RELEASED on every page and on the label. When the trace does not verify the files
are still written (marked so) and the command exits 5.
"""

from __future__ import annotations

from pathlib import Path

import typer

from fabctl.case import CaseStore
from fabctl.cli.common import emit_json, home
from fabctl.db import open_db
from fabctl.errors import InputError, TraceIntegrityError


def report_cmd(
    case_id: str = typer.Argument(..., metavar="CASE"),
    out: Path = typer.Option(..., "-o", "--output", metavar="DIR",
                             help="Folder for the PDF, HTML and label."),
    pictures: list[Path] = typer.Option([], "--pictures", metavar="DIR",
                                        help="Folder(s) holding the pictures of validate/support/slice."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Write the device history record (PDF and HTML) and the label of a case."""
    from fabctl.report import dhr, html, label, pdf

    db = open_db(home())
    store = CaseStore(home())
    rec = dhr.collect(db, store, case_id, list(pictures))
    try:
        out.mkdir(parents=True, exist_ok=True)
        files = {"pdf": pdf.write_pdf(rec, out / f"{case_id}-dhr.pdf"),
                 "html": html.write_html(rec, out / f"{case_id}-dhr.html"),
                 "label": label.write_label(rec.label, out / f"{case_id}-label.png")}
    except OSError as err:
        raise InputError(f"cannot write the report into {out}: {err.strerror or err}",
                         hint="choose a writable folder for -o") from None
    fields = rec.fields()
    na = [f.id for f in fields if f.value is None]
    missing = [p.key for p in rec.pictures if p.path is None]
    if json_out:
        emit_json({"case": case_id, "status": rec.status, "released": rec.released, "trace_ok": rec.trace_ok,
                   "head": rec.head_hash, "record_sha256": dhr.record_sha256(rec),
                   "files": {k: str(v) for k, v in files.items()}, "fields": len(fields), "na": na,
                   "missing_pictures": missing, "serial": rec.label.serial})
    else:
        typer.echo(f"{case_id}: {rec.status}; {len(fields)} record fields ({len(na)} n/a with a reason); "
                   f"trace head {rec.head_hash[:16]}")
        for v in files.values():
            typer.echo(f"wrote {v}")
        for p in rec.pictures:
            if p.missing:
                typer.echo(f"picture {p.key}: {p.missing}")
    if not rec.trace_ok:
        raise TraceIntegrityError(f"case {case_id}: the trace does not verify ({rec.trace_problems[0]}); the "
                                  "report was written and says so", hint="report to QA; do not release")
