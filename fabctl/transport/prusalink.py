"""PrusaLink (v1 API) transport for Prusa SL1/SL1S printers: upload an SL1 archive by PUT, start, follow.

Written from PrusaLink's OpenAPI description (github:prusa3d/Prusa-Link-Web ``spec/openapi.yaml``, v1 API
with HTTP Digest auth) and the PrusaLink daemon's handlers:

- ``PUT /api/v1/files/{storage}/{path}`` with the raw body, ``Content-Length``, ``Print-After-Upload: ?1`` and
  ``Overwrite: ?1`` (RFC 8941 booleans) → 201; 409 when the file exists without ``Overwrite`` or the printer
  is not in a state to print; 413 "Not enough space in storage" (507 is accepted too); 415 wrong media; 401.
- ``GET /api/v1/status`` (printer state IDLE, BUSY, PRINTING, PAUSED, FINISHED, STOPPED, ERROR, ATTENTION,
  READY; job id and progress in percent), ``GET /api/v1/job`` (204 when there is none; job state PRINTING,
  PAUSED, FINISHED, STOPPED, ERROR).
- ``PUT /api/v1/job/{id}/pause`` / ``resume``, ``DELETE /api/v1/job/{id}`` (stop) → 204, 404, 409.
- ``GET /api/version`` (text, firmware) and ``GET /api/v1/info`` (name, serial, hostname).

A job is ``done`` only when PrusaLink reports our job id FINISHED; a job that vanishes, errors, or whose
printer stops answering for ``lost_after_s`` is ``failed``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from fabctl.errors import InputError, TransportError
from fabctl.transport.base import TERMINAL, JobState, PrinterIdentity, PrinterStatus
from fabctl.transport.http_common import Unreachable, error_text

log = logging.getLogger(__name__)

_JOB_STATES = {
    "PRINTING": JobState.printing,
    "PAUSED": JobState.paused,
    "FINISHED": JobState.done,
    "STOPPED": JobState.cancelled,
    "ERROR": JobState.failed,
}
_READY_STATES = ("IDLE", "READY", "FINISHED", "STOPPED")


def _file_name(job_doc: dict[str, Any]) -> str:
    file = job_doc.get("file") or {}
    return str(file.get("display_name") or file.get("name") or "")


@dataclass
class _Job:
    name: str
    previous_id: Any = None  # the printer's job id before ours: its record is not our job's
    job_id: int | None = None
    state: JobState = JobState.sending
    progress: float = 0.0
    message: str = ""
    printer_state: str = ""
    cancel_requested: bool = False


class PrusaLinkPrinter:
    """An SL1/SL1S behind PrusaLink, implementing ``fabctl.transport.base.Printer`` (digest auth)."""

    def __init__(self, url: str, username: str, password: str, *, storage: str = "local",
                 timeout_s: float = 10.0, lost_after_s: float = 10.0, start_within_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not password:
            raise InputError(f"no password for PrusaLink at {url}", hint="set the profile's password env var")
        self.url = url.rstrip("/")
        self.username = username
        self.storage = storage
        self.timeout_s = timeout_s
        self.lost_after_s = lost_after_s
        self.start_within_s = start_within_s
        self._client = httpx.Client(base_url=self.url, auth=httpx.DigestAuth(username, password),
                                    timeout=timeout_s, transport=transport)
        self._last_ok = time.monotonic()
        self._job: _Job | None = None
        self._last_status = PrinterStatus(JobState.idle)

    @classmethod
    def from_profile(cls, settings: Any, env: dict[str, str] | None = None, **kw: Any) -> PrusaLinkPrinter:
        """From a profile's ``PrusaLinkTransport`` (url, username, password_env)."""
        env = os.environ if env is None else env
        password = env.get(settings.password_env, "")
        if not password:
            raise InputError(f"no PrusaLink password: ${settings.password_env} is not set",
                             hint=f"export {settings.password_env}=<the printer's PrusaLink password>")
        return cls(settings.url, settings.username, password, **kw)

    # --------------------------------------------------------------------------------------- HTTP

    def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 204), **kw: Any) -> httpx.Response:
        what = f"{method} {path}"
        try:
            resp = self._client.request(method, path, **kw)
        except httpx.TimeoutException as err:
            raise Unreachable(f"PrusaLink at {self.url} did not answer {what} within {self.timeout_s:g} s") from err
        except httpx.HTTPError as err:
            raise Unreachable(f"PrusaLink at {self.url} is not reachable for {what}: {err}") from err
        self._last_ok = time.monotonic()
        if resp.status_code not in ok:
            self._raise_for(what, resp)
        return resp

    def _raise_for(self, what: str, resp: httpx.Response) -> None:
        code, text = resp.status_code, error_text(resp)
        if code in (401, 403):
            raise TransportError(
                f"PrusaLink at {self.url} refused the credentials of user {self.username!r} ({code}) for {what}",
                hint="check the user name and the password shown in the printer's settings (digest auth)",
            )
        if code in (413, 507):
            raise TransportError(f"PrusaLink at {self.url}: not enough space in storage {self.storage!r} "
                                 f"({code}) for {what}: {text}", hint="delete old jobs on the printer")
        if code == 409:
            raise TransportError(f"PrusaLink at {self.url} refused {what} (409): printer busy or not ready: {text}")
        if code == 415:
            raise InputError(f"PrusaLink at {self.url} refused the file type for {what} (415): {text}")
        raise TransportError(f"PrusaLink at {self.url} answered {code} to {what}: {text}")

    def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        resp = self._call(method, path, **kw)
        if resp.status_code == 204:
            return {}
        try:
            doc = resp.json()
        except ValueError as err:
            raise TransportError(f"PrusaLink at {self.url} sent no JSON for {method} {path}") from err
        if not isinstance(doc, dict):
            raise TransportError(f"PrusaLink at {self.url} sent {type(doc).__name__} for {method} {path}")
        return doc

    # ------------------------------------------------------------------------------- the printer

    def connect(self) -> PrinterIdentity:
        """PrusaLink owns its printer; connecting is checking it answers and identifying it."""
        return self.identify()

    def identify(self) -> PrinterIdentity:
        version = self._json("GET", "/api/version")
        info = self._json("GET", "/api/v1/info")
        return PrinterIdentity(
            model=str(version.get("text") or "PrusaLink printer"),
            firmware=str(version.get("firmware") or "unknown"),
            serial_number=str(info.get("serial") or "unknown"),
        )

    def printer_state(self) -> str:
        return str((self._json("GET", "/api/v1/status").get("printer") or {}).get("state") or "")

    def send_job(self, job_file: Path, *, start: bool = True) -> str:
        """PUT the archive under its own name (overwriting); started by PrusaLink when ``start``."""
        job_file = Path(job_file)
        if not job_file.is_file():
            raise InputError(f"job file {job_file} does not exist")
        state = self.printer_state()
        if state not in _READY_STATES:
            raise TransportError(f"PrusaLink at {self.url} refused a new job (409): printer is {state}",
                                 hint="wait for the printer's job to end or clear its error on the printer")
        previous_id = self._json("GET", "/api/v1/job").get("id")
        body = job_file.read_bytes()  # digest auth may resend the body after a challenge
        path = f"/api/v1/files/{quote(self.storage, safe='')}/{quote(job_file.name, safe='')}"
        t0 = time.monotonic()
        self._call("PUT", path, ok=(201,), content=body, timeout=httpx.Timeout(
            self.timeout_s, write=max(self.timeout_s, len(body) / 1e6)), headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(len(body)),
            "Print-After-Upload": "?1" if start else "?0", "Overwrite": "?1",
        })
        log.info("PrusaLink at %s: uploaded %s (%d bytes) in %.3f s", self.url, job_file.name, len(body),
                 time.monotonic() - t0)
        self._job = _Job(name=job_file.name, previous_id=previous_id,
                         state=JobState.sending if start else JobState.idle)
        if start:
            self._await_start()
        return f"{self.storage}/{job_file.name}"

    def start(self) -> None:
        if self._job is None:
            raise InputError("no job to start: send_job first")
        previous_id = self._json("GET", "/api/v1/job").get("id")
        self._call("POST", f"/api/v1/files/{quote(self.storage, safe='')}/{quote(self._job.name, safe='')}",
                   ok=(204,))
        self._job = _Job(name=self._job.name, previous_id=previous_id)
        self._await_start()

    def _await_start(self) -> None:
        """The job runs: ``/api/v1/job`` names our file with an id (or it already ended)."""
        job = self._job
        assert job is not None
        deadline = time.monotonic() + self.start_within_s
        while time.monotonic() < deadline:
            doc = self._json("GET", "/api/v1/job")
            if doc and _file_name(doc) == job.name and doc.get("id") != job.previous_id:
                job.job_id = int(doc["id"])
                self._take_job(job, doc)
                log.info("PrusaLink at %s: job %d started (%s)", self.url, job.job_id, job.name)
                return
            time.sleep(0.1)
        job.state = JobState.failed
        raise TransportError(f"PrusaLink at {self.url} accepted {job.name} but no job for it started within "
                             f"{self.start_within_s:g} s")

    # ---------------------------------------------------------------------------- following the job

    def status(self) -> PrinterStatus:
        """Our job's state and progress (0..1); raises ``TransportError`` once PrusaLink is lost mid-job."""
        if self._job is None or self._job.job_id is None:
            return self._last_status
        if self._job.state not in TERMINAL:
            self._refresh()
        return self._snapshot()

    @property
    def last_status(self) -> PrinterStatus:
        return self._snapshot() if self._job is not None else self._last_status

    def follow(self, *, timeout_s: float | None = None, poll_s: float = 0.5,
               on_status: Callable[[PrinterStatus], None] | None = None) -> PrinterStatus:
        """Poll until the job ends; returns its last status. ``TransportError`` when lost or timed out."""
        if self._job is None or self._job.job_id is None:
            raise InputError("no started job to follow: send_job first")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._job.state not in TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                raise TransportError(f"PrusaLink at {self.url}: job {self._job.job_id} did not end within "
                                     f"{timeout_s:g} s ({self._job.state.value}, {self._job.progress:.0%})")
            self._refresh()
            if on_status is not None:
                on_status(self._snapshot())
            if self._job.state not in TERMINAL:
                time.sleep(poll_s)
        return self._snapshot()

    def _refresh(self) -> None:
        job = self._job
        assert job is not None
        try:
            doc = self._json("GET", "/api/v1/job")
        except Unreachable as err:
            self._lost(job, err)
            return
        if not doc or doc.get("id") != job.job_id:
            job.state = JobState.cancelled if job.cancel_requested else JobState.failed
            job.message = "the printer no longer reports the job" + (f" (now job {doc.get('id')})" if doc else "")
            return
        self._take_job(job, doc)

    def _take_job(self, job: _Job, doc: dict[str, Any]) -> None:
        state = str(doc.get("state") or "")
        job.printer_state = state
        progress = doc.get("progress")
        if isinstance(progress, int | float):
            job.progress = progress / 100.0
        if state not in _JOB_STATES:
            job.state, job.message = JobState.failed, f"unknown job state {state!r}"
            return
        job.state = _JOB_STATES[state]
        if job.state is JobState.failed:
            job.message = "the printer reports the job in ERROR"
        elif job.state is JobState.cancelled:
            job.message = "stopped" + ("" if job.cancel_requested else " at the printer")

    def _lost(self, job: _Job, err: TransportError) -> None:
        silent = time.monotonic() - self._last_ok
        if silent < self.lost_after_s:
            job.message = f"no answer from PrusaLink for {silent:.1f} s"
            log.warning("PrusaLink at %s: %s (%s)", self.url, job.message, err.message)
            return
        job.state = JobState.failed
        job.message = f"lost PrusaLink after {silent:.1f} s without an answer: {err.message}"
        raise TransportError(
            f"PrusaLink at {self.url} went away during job {job.job_id}: no answer for {silent:.1f} s "
            f"({err.message}); the job is failed",
            hint="the part cannot be trusted: check the printer, then print it again",
        ) from err

    def _snapshot(self) -> PrinterStatus:
        job = self._job
        assert job is not None
        progress = 1.0 if job.state is JobState.done else min(max(job.progress, 0.0), 1.0)
        self._last_status = PrinterStatus(
            state=job.state, progress=progress, message=job.message,
            extra={"prusalink_state": job.printer_state, "job_id": str(job.job_id), "file": job.name,
                   "at_utc": datetime.now(UTC).isoformat(timespec="milliseconds")},
        )
        return self._last_status

    def _job_path(self) -> str:
        if self._job is None or self._job.job_id is None:
            raise InputError("no started job: send_job first")
        return f"/api/v1/job/{self._job.job_id}"

    def pause(self) -> None:
        self._call("PUT", self._job_path() + "/pause", ok=(204,))

    def resume(self) -> None:
        self._call("PUT", self._job_path() + "/resume", ok=(204,))

    def cancel(self) -> None:
        path = self._job_path()
        assert self._job is not None
        self._job.cancel_requested = True
        self._call("DELETE", path, ok=(204,))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrusaLinkPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
