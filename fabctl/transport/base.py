"""The Printer interface every transport implements, and the values it returns.

A driver is created from a printer profile's transport settings (see ``fabctl.transport.registry``), owns
its port or HTTP session, and reports progress through ``PrinterStatus``. A job that dies half way must never
look finished: only a driver that saw the printer say so reports ``JobState.done``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


class JobState(enum.Enum):
    idle = "idle"
    sending = "sending"
    printing = "printing"
    paused = "paused"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL = frozenset({JobState.done, JobState.failed, JobState.cancelled})


@dataclass(frozen=True, slots=True)
class PrinterIdentity:
    model: str
    firmware: str
    serial_number: str


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """A snapshot of the printer and its job. ``progress`` is 0..1 of the job, by lines or layers."""

    state: JobState
    progress: float = 0.0
    layer: int | None = None
    layers_total: int | None = None
    message: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Printer(Protocol):
    """What fabctl needs from any printer, whatever the wire."""

    def connect(self) -> PrinterIdentity: ...

    def identify(self) -> PrinterIdentity: ...

    def send_job(self, job_file: Path, *, start: bool = True) -> str:
        """Stream or upload ``job_file``; start it when ``start``. Returns the printer-side job reference."""
        ...

    def start(self) -> None: ...

    def status(self) -> PrinterStatus: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...
