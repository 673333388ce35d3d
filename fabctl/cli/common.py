"""What every command shares: the session state (operator), the store paths, JSON and table output."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabctl.errors import InputError

_OPERATOR_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass
class State:
    operator: str | None = None


STATE = State()


def home() -> Path:
    """``$FABCTL_HOME``, or the per-user default ``~/.local/share/fabctl`` (``fabctl.case.default_home``)."""
    from fabctl.case import default_home

    return default_home()


def operator() -> str:
    """The acting staff ID; refuses to guess one."""
    op = STATE.operator
    if not op:
        raise InputError(
            "no operator given for an action that is recorded",
            hint="pass --operator ID (before the command) or set FABCTL_OPERATOR",
        )
    if not _OPERATOR_RE.fullmatch(op):
        raise InputError(
            f"operator {op!r} is not a staff ID: use [a-z0-9][a-z0-9._-], at most 64 characters",
            hint="record a pseudonymous staff ID, never a person's full name",
        )
    return op


def emit_json(doc: Any) -> None:
    """Print one JSON document on stdout and nothing else."""
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")


def is_tty() -> bool:
    return sys.stderr.isatty()
