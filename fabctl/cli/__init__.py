"""The fabctl command line: one typer sub-app per noun. The only place that prints, prompts or exits."""

from __future__ import annotations

import logging
import os
import sys

import click
import typer

from fabctl.cli.allocator import tune_allocator
from fabctl.errors import FabctlError

app = typer.Typer(
    name="fabctl",
    help="From a planned PVP guide-plate design to a sterile, traceable printed guide.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


#: noun -> (module, attribute, "group" for a sub-app or "command" for a single command)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "case": ("fabctl.cli.case", "app", "group"),
    "profile": ("fabctl.cli.profile", "app", "group"),
    "trace": ("fabctl.cli.trace", "app", "group"),
    "mesh": ("fabctl.cli.mesh", "app", "group"),
    "slice": ("fabctl.cli.slice", "slice_cmd", "command"),
    "send": ("fabctl.cli.send", "send", "command"),
    "validate": ("fabctl.cli.validate", "validate_cmd", "command"),
    "repair": ("fabctl.cli.repair", "repair_cmd", "command"),
    "orient": ("fabctl.cli.orient", "orient_cmd", "command"),
    "support": ("fabctl.cli.support", "support_cmd", "command"),
    "print": ("fabctl.cli.print_cmd", "print_cmd", "command"),
    "resin": ("fabctl.cli.resin", "app", "group"),
    "printer": ("fabctl.cli.printer", "app", "group"),
    "report": ("fabctl.cli.report", "report_cmd", "command"),
    "user": ("fabctl.cli.user", "app", "group"),
    "postprocess": ("fabctl.cli.postprocess", "postprocess_cmd", "command"),
    "sterilize": ("fabctl.cli.sterilize", "app", "group"),
    "inspect": ("fabctl.cli.inspect_cmd", "inspect_cmd", "command"),
    "release": ("fabctl.cli.release", "release_cmd", "command"),
    "queue": ("fabctl.cli.queue", "app", "group"),
}


def _register(argv: list[str]) -> None:
    """Attach the sub-apps. Only the one named on the command line is imported (startup stays fast);
    ``fabctl`` alone or ``--help`` imports them all so the help lists every command."""
    import importlib

    wanted = next((a for a in argv if not a.startswith("-") and a in COMMANDS), None)
    names = [wanted] if wanted else list(COMMANDS)
    for name in names:
        module, attr, kind = COMMANDS[name]
        obj = getattr(importlib.import_module(module), attr)
        if kind == "group":
            app.add_typer(obj, name=name)
        else:
            app.command(name)(obj)


@app.callback()
def _root(
    operator: str | None = typer.Option(
        None, "--operator", envvar="FABCTL_OPERATOR", help="Staff ID recorded as the actor of each event."
    ),
) -> None:
    from fabctl.cli import common

    common.STATE.operator = operator


def _fail(message: str, hint: str | None, code: int) -> None:
    sys.stderr.write(f"error: {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")
    sys.exit(code)


def main() -> None:
    """Console entry point: run the app and map every failure to one line and its exit code."""
    tune_allocator()
    _register(sys.argv[1:])
    debug = os.environ.get("FABCTL_DEBUG") == "1"
    if not debug:  # library log records are not CLI output (Python's last-resort handler would print
        logging.getLogger("fabctl").addHandler(logging.NullHandler())  # them); the daemon logs its own
    try:
        code = app(standalone_mode=False)  # typer.Exit(n) comes back as a return value here
    except FabctlError as err:
        if debug:
            raise
        _fail(err.message, err.hint, err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", None, 130)
    except click.ClickException as err:
        if debug:
            raise
        _fail(err.format_message().splitlines()[0], "see --help for usage", 2)
    except Exception as err:  # the CLI boundary: a bug gets exit 1 and a one-line report, not a traceback
        if debug:
            raise
        _fail(
            f"internal error: {type(err).__name__}: {err}",
            "this is a bug in fabctl; rerun with FABCTL_DEBUG=1 for the traceback and report it",
            1,
        )
    sys.exit(code if isinstance(code, int) else 0)
