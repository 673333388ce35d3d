"""One way to read a TOML profile into a strict pydantic model, with errors that name file, key and limit.

Used by the printer/resin profiles and the process profiles alike. A profile's id is its file name.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from fabctl.errors import ProfileError

ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
M = TypeVar("M", bound=BaseModel)


def format_validation_error(path: Path, err: ValidationError) -> str:
    """``file: dotted.key: what is wrong (the limit)`` for the first error, and how many more there are."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-after"))
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "missing":
        msg = "required key is missing"
    msg = msg.removeprefix("Value error, ")
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{path}: {loc or '(top level)'}: {msg}{more}"


def load_model(path: Path, model: type[M], hint: str) -> M:
    """Parse ``path`` and validate it as ``model`` with ``id`` set from the file name."""
    path = Path(path)
    pid = path.stem
    if not ID_RE.fullmatch(pid):
        raise ProfileError(f"{path}: file name {pid!r} is not a profile id ([a-z0-9][a-z0-9-]*)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ProfileError(f"{path}: cannot read ({err.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ProfileError(f"{path}: not valid TOML ({err})") from None
    if "id" in raw:
        raise ProfileError(f"{path}: id: unknown key (a profile's id is its file name)")
    try:
        return model.model_validate({"id": pid, **raw})
    except ValidationError as err:
        raise ProfileError(format_validation_error(path, err), hint=hint) from None
