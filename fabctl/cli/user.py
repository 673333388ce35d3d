"""`fabctl user add ID --role technician|qa|admin [--by ADMIN]` and `fabctl user ls [--json]`.

Credentials are prompted (hidden, typed twice) or read from ``FABCTL_CREDENTIAL`` (the new user's) and
``FABCTL_ADMIN_CREDENTIAL`` (the approving admin's) for automation. The very first user must be an admin and
needs no ``--by``; every later user is added by an admin who re-enters their credential.
"""

from __future__ import annotations

import os
import sys

import typer

from fabctl.cli.common import emit_json, home, operator
from fabctl.db import open_db
from fabctl.errors import InputError

app = typer.Typer(help="Users, roles and credentials (technician, qa, admin).", no_args_is_help=True)


def credential(env: str, prompt: str, confirm: bool = False) -> str:
    """The credential from ``env`` when set, else a hidden prompt on the terminal."""
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise InputError(f"no credential: {env} is not set and there is no terminal to ask on",
                         hint=f"run on a terminal to be prompted, or set {env} for automation")
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)


@app.command("add")
def add_cmd(
    user_id: str = typer.Argument(..., metavar="ID", help="Pseudonymous staff id, e.g. qa-002."),
    role: str = typer.Option(..., "--role", help="technician, qa or admin."),
    by: str | None = typer.Option(None, "--by", metavar="ADMIN", help="The admin adding the user."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Add a user with a role; the credential is stored only as a salted scrypt hash."""
    from fabctl.records import users

    actor = operator()
    db = open_db(home())
    users.check_user_id(user_id)
    admin_cred = None
    if by is not None:
        admin_cred = credential("FABCTL_ADMIN_CREDENTIAL", f"credential of admin {by}")
    new_cred = credential("FABCTL_CREDENTIAL", f"new credential for {user_id}", confirm=True)
    user = users.add_user(db, user_id, role, new_cred, actor, admin_id=by, admin_credential=admin_cred)
    if json_out:
        emit_json({"user": user.user_id, "role": user.role, "created_utc": user.created_utc,
                   "created_by": user.created_by})
    else:
        typer.echo(f"user {user.user_id} added with role {user.role} (by {user.created_by})")


@app.command("ls")
def ls_cmd(json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """List users and roles (never credentials)."""
    from fabctl.records import users

    rows = users.list_users(open_db(home()))
    if json_out:
        emit_json([{"user": u.user_id, "role": u.role, "created_utc": u.created_utc, "created_by": u.created_by}
                   for u in rows])
        return
    for u in rows:
        typer.echo(f"{u.user_id:<20} {u.role:<11} added {u.created_utc[:19]}Z by {u.created_by}")
