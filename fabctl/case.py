"""The case store on disk: ``$FABCTL_HOME/cases/<case>/rev-NNNN/`` holds each design revision's files.

A revision folder is written whole into a temporary sibling and renamed into place, so a reader never sees
half a revision. What a revision *is* (its hashes, origin, approval) lives in the trace; this module only
owns the files and their names.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from fabctl.errors import CaseError


def default_home() -> Path:
    """Where fabctl's data lives: ``$FABCTL_HOME``, or the per-user ``~/.local/share/fabctl``."""
    env = os.environ.get("FABCTL_HOME")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return (Path(base) / "fabctl").resolve()

DESIGN_FILE = "design.stl"
PLAN_FILE = "plan.json"
SKIN_FILE = "skin.stl"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class CaseStore:
    """Files of every case under ``home/cases``. Case ids are checked by the caller (``trace.log``)."""

    def __init__(self, home: Path) -> None:
        self.root = Path(home) / "cases"

    def case_dir(self, case_id: str) -> Path:
        d = (self.root / case_id).resolve()
        if d.parent != self.root.resolve():
            raise CaseError(f"case id {case_id!r} escapes the case store")
        return d

    def rev_dir(self, case_id: str, revision: int) -> Path:
        return self.case_dir(case_id) / f"rev-{revision:04d}"

    def revisions_on_disk(self, case_id: str) -> list[int]:
        d = self.case_dir(case_id)
        if not d.is_dir():
            return []
        return sorted(int(p.name[4:]) for p in d.glob("rev-[0-9][0-9][0-9][0-9]") if p.is_dir())

    def staging(self, case_id: str) -> Path:
        """A fresh temporary folder beside the case's revisions, to be ``commit``-ed or ``discard``-ed."""
        d = self.case_dir(case_id)
        d.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".staging-", dir=d))

    def commit(self, staging: Path, case_id: str, revision: int) -> Path:
        """Rename a staged folder into revision ``revision``; refuses to overwrite one."""
        target = self.rev_dir(case_id, revision)
        if target.exists():
            raise CaseError(f"case {case_id} revision {revision} already exists on disk",
                            hint="the store and the trace disagree; run `fabctl trace verify`")
        for f in staging.iterdir():
            os.chmod(f, 0o444)
        os.rename(staging, target)
        return target

    @staticmethod
    def discard(path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
