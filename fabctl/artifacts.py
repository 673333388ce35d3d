"""Stage artifacts keyed by what produced them: input hashing and a per-case cache directory.

An artifact's key is the sha256 of its inputs and settings (``input_hash``): canonical JSON for documents,
dtype + shape + bytes for arrays. The cache stores each artifact in
``<case dir>/artifacts/<stage>-<key>/``, written whole into a temporary sibling and renamed into place, so a
reader never sees half an artifact and no hand-kept invalidation list exists: new inputs, new key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fabctl.errors import InputError

STAGE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
KEY_RE = re.compile(r"[0-9a-f]{64}")
COMPLETE = ".complete"


def canonical_json(doc: Any) -> bytes:
    """UTF-8 JSON with sorted keys and no spaces; floats as Python's shortest round-trip repr."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _feed(h: Any, part: Any) -> None:
    if isinstance(part, np.ndarray):
        a = np.ascontiguousarray(part)
        h.update(b"A" + canonical_json([a.dtype.str, list(a.shape)]) + b"\0")
        h.update(a.tobytes())
    elif isinstance(part, bytes | bytearray):
        h.update(b"B" + str(len(part)).encode() + b"\0" + bytes(part))
    else:
        body = canonical_json(part)
        h.update(b"J" + str(len(body)).encode() + b"\0" + body)


def input_hash(*parts: Any) -> str:
    """sha256 over ``parts`` in order: arrays by dtype/shape/bytes, bytes as they are, the rest as JSON."""
    h = hashlib.sha256(b"fabctl-artifact-v1\0")
    for part in parts:
        _feed(h, part)
    return h.hexdigest()


class ArtifactCache:
    """The artifact folders of one case: ``<case_dir>/artifacts/<stage>-<key>/``."""

    def __init__(self, case_dir: Path) -> None:
        self.root = Path(case_dir) / "artifacts"

    def path(self, stage: str, key: str) -> Path:
        if not STAGE_RE.fullmatch(stage):
            raise InputError(f"artifact stage {stage!r} is not a stage name ([a-z][a-z0-9_]*)")
        if not KEY_RE.fullmatch(key):
            raise InputError(f"artifact key {key!r} is not a sha256 hex digest")
        return self.root / f"{stage}-{key}"

    def get(self, stage: str, key: str) -> Path | None:
        """The folder of a complete artifact, or None."""
        d = self.path(stage, key)
        return d if (d / COMPLETE).is_file() else None

    def put(self, stage: str, key: str, files: dict[str, bytes]) -> Path:
        """Write ``files`` (name -> bytes) as the artifact; an existing complete one is kept as it is."""
        target = self.path(stage, key)
        if (target / COMPLETE).is_file():
            return target
        for name in files:
            if "/" in name or name.startswith(".") or not name:
                raise InputError(f"artifact file name {name!r} is not a plain file name")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{stage}-", dir=self.root))
        try:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
            (tmp / COMPLETE).write_text(key + "\n")
            if target.exists() and not (target / COMPLETE).is_file():  # leftover of an interrupted run
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.rename(tmp, target)
            except OSError:
                if not (target / COMPLETE).is_file():  # not a concurrent writer that finished first
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def list(self, stage: str | None = None) -> list[Path]:
        """Complete artifact folders, optionally of one stage, sorted by name."""
        if not self.root.is_dir():
            return []
        pat = f"{stage}-*" if stage else "*-*"
        return sorted(p for p in self.root.glob(pat) if (p / COMPLETE).is_file())
