"""``HotFolderPrinter``: hand a job file to a machine that watches a folder (industrial laser SLA, CLI files).

Delivery is atomic: the file is written under a hidden temporary name in the same folder, flushed to disk,
then renamed into place, so the machine never picks up half a file. After delivery the machine's own
controller runs the job and fabctl cannot see it: the state stays ``printing`` with a message saying so,
and never becomes ``done`` (the outcome must be recorded from the machine itself).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from fabctl.errors import InputError, TransportError
from fabctl.transport.base import JobState, PrinterIdentity, PrinterStatus

log = logging.getLogger(__name__)

DELIVERED = ("delivered to the hot folder; the machine's own controller runs the job and fabctl cannot "
             "see its progress or outcome: record the result from the machine")


class HotFolderPrinter:
    """A printer reached only by dropping files into ``folder``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.delivered: Path | None = None
        self._status = PrinterStatus(JobState.idle)

    @classmethod
    def from_profile(cls, settings: Any, **overrides: Any) -> HotFolderPrinter:
        return cls(overrides.pop("path", settings.path))

    def connect(self) -> PrinterIdentity:
        if not self.folder.is_dir():
            raise TransportError(f"hot folder {self.folder} does not exist or is not a folder",
                                 hint="mount the machine's share or fix the profile's transport.path")
        if not os.access(self.folder, os.W_OK):
            raise TransportError(f"hot folder {self.folder} is not writable")
        return self.identify()

    def identify(self) -> PrinterIdentity:
        return PrinterIdentity(model="hot-folder machine", firmware="unknown (not reported by a hot folder)",
                               serial_number="unknown")

    def send_job(self, job_file: Path, *, start: bool = True) -> str:
        """Copy ``job_file`` into the folder atomically; refuses to replace a file of the same name."""
        src = Path(job_file)
        if not src.is_file():
            raise InputError(f"job file {src} does not exist or is not a file")
        target = self.folder / src.name
        if target.exists():
            raise TransportError(f"{target} already exists in the hot folder: not replacing it",
                                 hint="the machine may not have taken the previous job yet")
        tmp = self.folder / f".{src.name}.part-{os.getpid()}"
        self._status = PrinterStatus(JobState.sending, message=f"copying to {self.folder}")
        try:
            with src.open("rb") as fin, tmp.open("xb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
                fout.flush()
                os.fsync(fout.fileno())
            os.replace(tmp, target)
        except OSError as err:
            self._status = PrinterStatus(JobState.failed, message=f"delivery failed: {err}")
            raise TransportError(f"cannot write {target}: {err.strerror or err}") from None
        finally:
            if tmp.exists():
                tmp.unlink()
        self.delivered = target
        self._status = PrinterStatus(JobState.printing, message=DELIVERED, extra={"path": str(target)})
        log.info("delivered %s to %s", src.name, self.folder)
        return str(target)

    def start(self) -> None:
        """Nothing to do: the machine starts jobs it finds in its folder."""

    def status(self) -> PrinterStatus:
        return self._status

    def follow(self, *, timeout_s: float | None = None, on_status: Any = None) -> PrinterStatus:
        return self._status

    def pause(self) -> None:
        raise TransportError("a hot folder cannot pause a job: use the machine's own console")

    def resume(self) -> None:
        raise TransportError("a hot folder cannot resume a job: use the machine's own console")

    def cancel(self) -> None:
        """Withdraw the file if the machine has not taken it yet; otherwise the machine must cancel."""
        if self.delivered is not None and self.delivered.exists():
            self.delivered.unlink()
            self._status = PrinterStatus(JobState.cancelled, message="withdrawn before the machine took it")
            return
        raise TransportError("the machine has taken the job: cancel it on the machine's own console")

    def close(self) -> None:
        """Nothing held open."""
