"""`fabctl release CASE --by ID [--json]`: the release gate and the signer's approval.

The signer (role qa) re-enters the credential at signing: prompted (hidden), or ``FABCTL_CREDENTIAL`` for
automation. Refused (exit 3) with every unmet condition; with ``--json`` the conditions are also printed.
"""

from __future__ import annotations

import typer

from fabctl.case import CaseStore
from fabctl.cli.common import emit_json, home, operator
from fabctl.cli.user import credential
from fabctl.db import open_db


def release_cmd(
    case_id: str = typer.Argument(..., metavar="CASE"),
    by: str = typer.Option(..., "--by", metavar="ID", help="The qa user who signs the release."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Release a case's inspected, sterilized guide for clinical use with a signed approval."""
    from fabctl.records import devices, release

    actor = operator()
    db = open_db(home())
    try:
        out = release.release_case(db, CaseStore(home()), case_id, by,
                                   lambda: credential("FABCTL_CREDENTIAL", f"credential of {by} (signing)"),
                                   actor)
    except devices.Refused as err:
        if json_out:
            conds = getattr(err, "conditions", None)
            emit_json({"case": case_id, "released": False, "reasons": err.reasons,
                       "conditions": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in conds or []]})
        raise
    if json_out:
        emit_json(out)
    else:
        typer.echo(f"{case_id}: released {', '.join(out['serials'])} by {out['signed_by']} at {out['signed_utc']} "
                   f"(meaning approval, record sha256 {out['record_sha256'][:16]}); retain until "
                   f"{out['retention_until']}")
