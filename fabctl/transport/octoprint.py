"""fabctl's own OctoPrint client: REST on httpx, push events on the SockJS raw websocket.

Written from OctoPrint's REST documentation and the exchanges recorded against OctoPrint 1.11.8 (see
shared/research/printer-comms.md §1-§2); OctoPrint's bundled ``octoprint_client`` is AGPL and is not used.

``connect()`` has OctoPrint open the printer's port and waits for ``Operational``. ``send_job()`` opens the push
socket first (no event is missed), uploads with ``select``/``print``, checks ``effectivePrint`` and ``/api/job``.
``status()``/``follow()`` read ``event`` frames (PrintStarted/Done/Failed/Cancelled...) and ``current`` frames
(progress), and poll ``/api/job`` when the socket drops. A job is ``done`` only on OctoPrint's PrintDone for our
file, or when the file's print record (``prints.last``, changed since before the upload) says success. When
OctoPrint stays silent for ``lost_after_s`` the job is ``failed`` with a ``TransportError``: never "done".

``identify``: OctoPrint exposes its version (``/api/version``), the printer profile (``/api/printerprofiles``:
model as typed by the operator, not read from the machine) and the firmware name the printer gave to M115
(``printer.firmware`` in ``/api/system/info``; needs the SYSTEM permission). No serial number: ``"unknown"``.
"""

from __future__ import annotations

import contextlib
import json
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
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect as ws_connect

from fabctl.errors import InputError, TransportError
from fabctl.transport.base import TERMINAL, JobState, PrinterIdentity, PrinterStatus
from fabctl.transport.http_common import Unreachable, error_text

log = logging.getLogger(__name__)

EVENTS = ("PrintStarted", "PrintDone", "PrintFailed", "PrintCancelled", "PrintPaused", "PrintResumed",
          "Disconnected", "Error")
_BUSY = ("Printing", "Starting", "Pausing", "Paused", "Resuming", "Cancelling", "Finishing")
_BROKEN = ("Offline", "Error", "Closed", "Offline after error")


def _raise_for(url: str, what: str, resp: httpx.Response) -> None:
    code, text = resp.status_code, error_text(resp)
    if code in (401, 403):
        raise TransportError(f"OctoPrint at {url} refused the API key ({code}) for {what}",
                             hint="check the key and that its user has the permission in OctoPrint")
    if code == 409:
        raise TransportError(f"OctoPrint at {url} refused {what} (409): printer not operational or busy: {text}",
                             hint="check the printer is connected and idle in OctoPrint")
    if code == 415:
        raise InputError(f"OctoPrint at {url} refused the file type for {what} (415): {text}")
    raise TransportError(f"OctoPrint at {url} answered {code} to {what}: {text}")


class OctoPrintRest:
    """The REST half: one httpx client, the API key on every request, errors mapped to fabctl's."""

    def __init__(self, url: str, api_key: str, *, timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not api_key:
            raise InputError(f"no API key for OctoPrint at {url}", hint="pass --api-key or set the key's env var")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.last_ok = time.monotonic()
        self._client = httpx.Client(
            base_url=self.url, headers={"X-Api-Key": api_key}, timeout=timeout_s, transport=transport
        )

    def call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 204), **kw: Any) -> httpx.Response:
        what = f"{method} {path}"
        try:
            resp = self._client.request(method, path, **kw)
        except httpx.TimeoutException as err:
            raise Unreachable(
                f"OctoPrint at {self.url} did not answer {what} within {self.timeout_s:g} s ({type(err).__name__})"
            ) from err
        except httpx.HTTPError as err:
            raise Unreachable(f"OctoPrint at {self.url} is not reachable for {what}: {err}") from err
        self.last_ok = time.monotonic()
        if resp.status_code not in ok:
            _raise_for(self.url, what, resp)
        return resp

    def json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        resp = self.call(method, path, **kw)
        try:
            doc = resp.json()
        except ValueError as err:
            raise TransportError(f"OctoPrint at {self.url} sent no JSON for {method} {path}") from err
        if not isinstance(doc, dict):
            raise TransportError(f"OctoPrint at {self.url} sent {type(doc).__name__} for {method} {path}")
        return doc

    def close(self) -> None:
        self._client.close()


class PushSocket:
    """OctoPrint's push channel: the SockJS raw websocket ``/sockjs/websocket`` (plain JSON frames).

    Authenticates with a passive login's session (``{"auth": "user:session"}``), subscribes to the job events
    and to ``current`` state frames without logs or messages. Reads never block longer than asked.
    """

    def __init__(self, rest: OctoPrintRest, *, open_timeout_s: float = 5.0, ping_s: float = 5.0) -> None:
        login = rest.json("POST", "/api/login", json={"passive": True})
        user, session = login.get("name"), login.get("session")
        if not user or not session:
            raise TransportError(f"OctoPrint at {rest.url} gave no session on passive login")
        ws_url = "ws" + rest.url[len("http"):] + "/sockjs/websocket"
        self._stack = contextlib.ExitStack()
        try:
            self._ws = self._stack.enter_context(ws_connect(
                ws_url, open_timeout=open_timeout_s, ping_interval=ping_s, ping_timeout=ping_s, close_timeout=1,
                max_queue=256,
            ))
        except (OSError, WebSocketException) as err:
            raise Unreachable(f"OctoPrint at {rest.url}: push socket {ws_url} failed: {err}") from err
        self.alive = True
        self.last_frame = time.monotonic()
        self._send({"auth": f"{user}:{session}"})
        self._send({"subscribe": {
            "state": {"logs": False, "messages": False}, "events": list(EVENTS), "plugins": False,
        }})

    def _send(self, doc: dict[str, Any]) -> None:
        try:
            self._ws.send(json.dumps(doc))
        except (ConnectionClosed, OSError) as err:
            self.alive = False
            log.warning("OctoPrint push socket closed while sending: %s", err)

    def read(self, timeout_s: float) -> list[dict[str, Any]]:
        """Frames that arrived: waits up to ``timeout_s`` for the first, then takes what is queued."""
        frames: list[dict[str, Any]] = []
        wait = timeout_s
        while self.alive:
            try:
                raw = self._ws.recv(timeout=wait)
            except TimeoutError:
                break
            except (ConnectionClosed, OSError) as err:
                self.alive = False
                log.warning("OctoPrint push socket closed: %s", err)
                break
            wait = 0
            self.last_frame = time.monotonic()
            try:
                doc = json.loads(raw)
            except ValueError:
                log.debug("OctoPrint push socket: not JSON: %.80r", raw)
                continue
            if isinstance(doc, dict):
                frames.append(doc)
        return frames

    def close(self) -> None:
        self.alive = False
        with contextlib.suppress(OSError, WebSocketException):
            self._stack.close()


@dataclass
class _Job:
    """What fabctl knows of the one job it sent."""

    path: str
    state: JobState = JobState.sending
    started: bool = False
    progress: float = 0.0
    message: str = ""
    octoprint_state: str = ""
    cancel_requested: bool = False
    baseline: dict[str, Any] | None = None  # the file's newest print record before this job
    check_record_at: float = float("inf")  # when to read the file's print record (monotonic)


class OctoPrintPrinter:
    """A printer behind OctoPrint, implementing ``fabctl.transport.base.Printer``.

    ``port``/``baudrate`` are what ``connect()`` asks OctoPrint to open (None: OctoPrint's saved preference).
    ``lost_after_s``: how long OctoPrint may stay silent during a job before the job is failed.
    """

    def __init__(self, url: str, api_key: str, *, port: str | None = None, baudrate: int | None = None,
                 timeout_s: float = 10.0, connect_timeout_s: float = 30.0, lost_after_s: float = 10.0,
                 push: bool = True, transport: httpx.BaseTransport | None = None) -> None:
        self.rest = OctoPrintRest(url, api_key, timeout_s=timeout_s, transport=transport)
        self.url = self.rest.url
        self.port, self.baudrate = port, baudrate
        self.connect_timeout_s = connect_timeout_s
        self.lost_after_s = lost_after_s
        self._quiet_s = min(max(lost_after_s / 2, 1.0), 5.0)  # a silent socket is checked over REST after this
        self.use_push = push
        self._push: PushSocket | None = None
        self._job: _Job | None = None
        self._last_status = PrinterStatus(JobState.idle)

    @classmethod
    def from_profile(cls, settings: Any, env: dict[str, str] | None = None, **kw: Any) -> OctoPrintPrinter:
        """From a profile's ``OctoPrintTransport`` (url, api_key_env)."""
        key = (os.environ if env is None else env).get(settings.api_key_env, "")
        if not key:
            raise InputError(f"no OctoPrint API key: ${settings.api_key_env} is not set",
                             hint=f"export {settings.api_key_env}=<key> (an application key: request_app_key)")
        return cls(settings.url, key, **kw)

    # ----------------------------------------------------------------------------------- connection

    def connect(self) -> PrinterIdentity:
        """Ask OctoPrint to open the printer's port unless it is open; wait for Operational."""
        state = self._connection_state()
        if state not in ("Operational", *_BUSY):
            body = {"command": "connect", "autoconnect": False, "port": self.port, "baudrate": self.baudrate}
            self.rest.call("POST", "/api/connection", json={k: v for k, v in body.items() if v is not None}, ok=(204,))
            deadline = time.monotonic() + self.connect_timeout_s
            while state != "Operational":
                if time.monotonic() > deadline:
                    raise TransportError(
                        f"OctoPrint at {self.url}: the printer did not become operational within "
                        f"{self.connect_timeout_s:g} s (state {state!r})",
                        hint="check the port and baud rate in OctoPrint's connection panel",
                    )
                time.sleep(0.2)
                state = self._connection_state()
        log.info("OctoPrint at %s: printer %s", self.url, state)
        return self.identify()

    def _connection_state(self) -> str:
        doc = self.rest.json("GET", "/api/connection")
        return str((doc.get("current") or {}).get("state") or "")

    def disconnect_printer(self) -> None:
        """Ask OctoPrint to close the printer's port (service work and tests; not part of ``close``)."""
        self.rest.call("POST", "/api/connection", json={"command": "disconnect"}, ok=(204,))

    def identify(self) -> PrinterIdentity:
        version = self.rest.json("GET", "/api/version")
        server = str(version.get("server") or version.get("text") or "unknown")
        profile_id = str((self.rest.json("GET", "/api/connection").get("current") or {}).get("printerProfile")
                         or "_default")
        profile = self.rest.json("GET", f"/api/printerprofiles/{quote(profile_id, safe='')}", ok=(200,))
        model = str(profile.get("model") or profile.get("name") or profile_id)
        firmware = "unknown"
        try:
            info = self.rest.json("GET", "/api/system/info")
            firmware = str((info.get("systeminfo") or {}).get("printer.firmware") or "unknown")
        except Unreachable:
            raise
        except TransportError as err:  # 403 without the SYSTEM permission: the rest still identifies
            log.info("OctoPrint at %s: no firmware name: %s", self.url, err)
        return PrinterIdentity(model=f"{model} (OctoPrint {server}, profile {profile_id})", firmware=firmware,
                               serial_number="unknown")

    def close(self) -> None:
        if self._push is not None:
            self._push.close()
            self._push = None
        self.rest.close()

    def __enter__(self) -> OctoPrintPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- jobs

    def send_job(self, job_file: Path, *, start: bool = True) -> str:
        """Upload ``job_file`` under its own name to OctoPrint's local storage; start it when ``start``.

        Refuses (409) before uploading when the printer is not operational or already has a job. Returns the
        file's path on OctoPrint, the job reference for ``start``.
        """
        job_file = Path(job_file)
        if not job_file.is_file():
            raise InputError(f"job file {job_file} does not exist")
        self._require_idle()
        baseline = self._record(job_file.name)
        if start and self.use_push:
            self._open_push()
        size = job_file.stat().st_size
        timeout = httpx.Timeout(self.rest.timeout_s, write=max(self.rest.timeout_s, size / 1e6))
        t0 = time.monotonic()
        with job_file.open("rb") as fh:
            resp = self.rest.call(
                "POST", "/api/files/local", ok=(200, 201), timeout=timeout,
                files={"file": (job_file.name, fh, "application/octet-stream")},
                data={"select": "true", "print": "true" if start else "false"},
            )
        doc = resp.json()
        path = str(((doc.get("files") or {}).get("local") or {}).get("path") or job_file.name)
        log.info("OctoPrint at %s: uploaded %s (%d bytes) in %.3f s", self.url, path, size, time.monotonic() - t0)
        self._job = _Job(path=path, baseline=baseline)
        if not start:
            self._job.state = JobState.idle
            return path
        if not doc.get("effectivePrint"):
            self._job.state = JobState.failed
            raise TransportError(f"OctoPrint at {self.url} stored {path} but did not start it (effectivePrint "
                                 "false): printer not operational or busy", hint="check the printer in OctoPrint")
        self._job.started, self._job.state = True, JobState.printing
        self._verify_started()
        return path

    def start(self) -> None:
        """Select and print the job uploaded with ``send_job(..., start=False)``."""
        if self._job is None:
            raise InputError("no job to start: send_job first")
        self._require_idle()
        baseline = self._record(self._job.path)
        if self.use_push:
            self._open_push()
        self.rest.call(
            "POST", f"/api/files/local/{quote(self._job.path, safe='/')}",
            json={"command": "select", "print": True}, ok=(204,),
        )
        self._job = _Job(path=self._job.path, started=True, state=JobState.printing, baseline=baseline)
        self._verify_started()

    def _require_idle(self) -> None:
        """409 unless the printer is operational with no job (``/api/printer`` answers 409 itself when not)."""
        state = ((self.rest.json("GET", "/api/printer").get("state") or {}).get("text")) or ""
        if not str(state).startswith("Operational"):
            raise TransportError(
                f"OctoPrint at {self.url} refused a new job (409): printer not operational or busy: {state}",
                hint="wait for the printer's job to end, or connect it in OctoPrint",
            )

    def _open_push(self) -> None:
        if self._push is not None and self._push.alive:
            return
        try:
            self._push = PushSocket(self.rest, ping_s=self._quiet_s)
        except Unreachable:
            raise
        except TransportError as err:
            log.warning("OctoPrint at %s: no push socket, polling /api/job instead: %s", self.url, err)
            self._push = None

    def _verify_started(self, within_s: float = 5.0) -> None:
        """The print really runs: ``/api/job`` shows OctoPrint busy with it, or it already ended."""
        job = self._job
        assert job is not None
        deadline = time.monotonic() + within_s
        try:
            while True:
                self._refresh(wait_s=0)  # events first: a tiny job may be over already
                if job.state not in TERMINAL:
                    self._poll(job)
                if job.state in TERMINAL or job.octoprint_state.startswith(_BUSY):
                    return
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        except TransportError:
            job.state = JobState.failed
            raise
        job.state = JobState.failed
        raise TransportError(
            f"OctoPrint at {self.url} accepted {job.path} but /api/job shows {job.octoprint_state!r}, not printing",
        )

    def status(self) -> PrinterStatus:
        """The job's state and progress (0..1); raises ``TransportError`` once OctoPrint is lost mid-job."""
        if self._job is None:
            return self._last_status
        if self._job.state not in TERMINAL:
            self._refresh(wait_s=0)
        return self._snapshot()

    @property
    def last_status(self) -> PrinterStatus:
        """The last status computed, without asking OctoPrint (still ``failed`` after a lost job)."""
        return self._snapshot() if self._job is not None else self._last_status

    def follow(self, *, timeout_s: float | None = None, poll_s: float = 0.5,
               on_status: Callable[[PrinterStatus], None] | None = None) -> PrinterStatus:
        """Block until the job ends (done, failed or cancelled) and return its last status.

        Raises ``TransportError`` when OctoPrint is lost mid-job (the job is then ``failed``) or when
        ``timeout_s`` passes first (the job keeps running on the printer).
        """
        if self._job is None:
            raise InputError("no job to follow: send_job first")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._job.state not in TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                raise TransportError(
                    f"OctoPrint at {self.url}: job {self._job.path} did not end within {timeout_s:g} s "
                    f"(state {self._job.state.value}, {self._job.progress:.0%})",
                )
            self._refresh(wait_s=poll_s)
            if on_status is not None:
                on_status(self._snapshot())
        return self._snapshot()

    def pause(self) -> None:
        self.rest.call("POST", "/api/job", json={"command": "pause", "action": "pause"}, ok=(204,))

    def resume(self) -> None:
        self.rest.call("POST", "/api/job", json={"command": "pause", "action": "resume"}, ok=(204,))

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel_requested = True
        self.rest.call("POST", "/api/job", json={"command": "cancel"}, ok=(204,))

    def _snapshot(self) -> PrinterStatus:
        job = self._job
        assert job is not None
        progress = 1.0 if job.state is JobState.done else min(max(job.progress, 0.0), 1.0)
        self._last_status = PrinterStatus(
            state=job.state, progress=progress, message=job.message,
            extra={"octoprint_state": job.octoprint_state, "path": job.path,
                   "at_utc": datetime.now(UTC).isoformat(timespec="milliseconds")},
        )
        return self._last_status

    # ------------------------------------------------------------------------------ tracking the job

    def _refresh(self, wait_s: float) -> None:
        """Take in what the push socket sent (waiting up to ``wait_s``), or poll ``/api/job`` without it."""
        job = self._job
        assert job is not None
        try:
            push = self._push
            if push is not None and push.alive:
                for frame in push.read(wait_s):
                    self._apply_frame(job, frame)
                if time.monotonic() - max(push.last_frame, self.rest.last_ok) > self._quiet_s:
                    self._poll(job)  # OctoPrint sends state every 0.5 s: is it still there?
            else:
                self._poll(job)
                if wait_s and job.state not in TERMINAL:
                    time.sleep(wait_s)
            if job.state not in TERMINAL and job.check_record_at <= time.monotonic():
                self._check_record(job)
        except Unreachable as err:
            self._lost(job, err, wait_s)

    def _lost(self, job: _Job, err: TransportError, wait_s: float) -> None:
        silent = time.monotonic() - max(self.rest.last_ok, self._push.last_frame if self._push else 0.0)
        if silent < self.lost_after_s:
            job.message = f"no answer from OctoPrint for {silent:.1f} s"
            log.warning("OctoPrint at %s: %s (%s)", self.url, job.message, err.message)
            time.sleep(min(max(wait_s, 0.05), 0.5))
            return
        job.state = JobState.failed
        job.message = f"lost OctoPrint after {silent:.1f} s without an answer: {err.message}"
        raise TransportError(
            f"OctoPrint at {self.url} went away during job {job.path}: no answer for {silent:.1f} s "
            f"({err.message}); the job is failed",
            hint="the part cannot be trusted: check the printer and OctoPrint, then print it again",
        ) from err

    def _apply_frame(self, job: _Job, frame: dict[str, Any]) -> None:
        if "event" in frame:
            event = frame["event"] or {}
            self._apply_event(job, str(event.get("type")), event.get("payload") or {})
        for key in ("current", "history"):  # state text and flags, progress of our file
            if isinstance(frame.get(key), dict):
                self._take_state(job, str((frame[key].get("state") or {}).get("text") or ""), frame[key])
        if "reauthRequired" in frame and self._push is not None:
            log.warning("OctoPrint at %s refused the push socket's session; polling instead", self.url)
            self._push.close()

    def _apply_event(self, job: _Job, etype: str, payload: dict[str, Any]) -> None:
        if job.state in TERMINAL:
            return
        if etype.startswith("Print") and payload.get("path") != job.path:
            return
        log.debug("OctoPrint event %s %s", etype, payload)
        if etype == "PrintStarted":
            job.started = True
            job.state = JobState.printing
        elif etype == "PrintDone":
            job.state, job.progress = JobState.done, 1.0
            job.message = f"PrintDone after {float(payload.get('time') or 0):.3f} s"
        elif etype == "PrintCancelled" or (etype == "PrintFailed" and payload.get("reason") == "cancelled"):
            job.state = JobState.cancelled
            job.message = etype
        elif etype == "PrintFailed":
            job.state = JobState.cancelled if job.cancel_requested else JobState.failed
            job.message = f"PrintFailed ({payload.get('reason', 'error')})"
        elif etype == "PrintPaused":
            job.state = JobState.paused
        elif etype == "PrintResumed":
            job.state = JobState.printing
        elif etype in ("Disconnected", "Error") and job.started:
            job.state = JobState.failed
            job.message = f"{etype}: {payload.get('error', '')}".rstrip(": ")

    def _poll(self, job: _Job) -> None:
        doc = self.rest.json("GET", "/api/job")
        self._take_state(job, str(doc.get("state") or ""), doc)

    def _take_state(self, job: _Job, text: str, doc: dict[str, Any]) -> None:
        if job.state in TERMINAL:
            return
        job.octoprint_state = text
        file_path = ((doc.get("job") or {}).get("file") or {}).get("path")
        completion = (doc.get("progress") or {}).get("completion")
        if file_path == job.path and isinstance(completion, int | float):
            job.progress = completion / 100.0
        if text.startswith(_BUSY):
            job.check_record_at = float("inf")
            if text.startswith("Paused"):
                job.state = JobState.paused
            elif not text.startswith(("Pausing", "Cancelling")):  # in between: keep what the events said
                job.state = JobState.printing
        elif text.startswith(_BROKEN) and job.started:
            job.state = JobState.failed
            job.message = f"OctoPrint state {text!r}"
        elif text.startswith("Operational") and job.started and job.check_record_at == float("inf"):
            job.check_record_at = time.monotonic()  # not printing: the file's record tells how it ended

    def _record(self, path: str) -> dict[str, Any] | None:
        resp = self.rest.call("GET", f"/api/files/local/{quote(path, safe='/')}", ok=(200, 404))
        if resp.status_code == 404:
            return None
        last = ((resp.json().get("prints") or {}).get("last")) or None
        return last if isinstance(last, dict) else None

    def _check_record(self, job: _Job) -> None:
        """Resolve a job OctoPrint no longer runs from the file's newest print record (fallback to events)."""
        if not job.started or job.state in TERMINAL:
            return
        job.check_record_at = time.monotonic() + 1.0
        last = self._record(job.path)
        if last is None or last == job.baseline:  # require_idle ran before the baseline: a new record is ours
            return
        if last.get("success") is True:
            job.state, job.progress, job.message = JobState.done, 1.0, "print record: success"
        else:
            job.state = JobState.cancelled if job.cancel_requested else JobState.failed
            job.message = "print record: failure"


def request_app_key(url: str, app_name: str, user: str | None = None, *, timeout_s: float = 120.0,
                    poll_s: float = 1.0, on_pending: Callable[[str], None] | None = None,
                    transport: httpx.BaseTransport | None = None) -> str:
    """Ask OctoPrint for an application key (appkeys plugin) and wait until a user decides.

    ``on_pending`` gets the URL of the dialog where the user approves. Returns the key; raises
    ``TransportError`` when denied, expired, rate-limited or not decided within ``timeout_s``.
    OctoPrint drops a request not polled for 5 s, so ``poll_s`` must stay below that.
    """
    base = url.rstrip("/")
    with httpx.Client(base_url=base, timeout=10.0, transport=transport) as client:
        try:
            if client.get("/plugin/appkeys/probe").status_code != 204:
                raise TransportError(f"OctoPrint at {base} does not offer application keys (appkeys plugin)")
            body = {"app": app_name, **({"user": user} if user else {})}
            resp = client.post("/plugin/appkeys/request", json=body)
            if resp.status_code != 201:
                raise TransportError(f"OctoPrint at {base} refused the key request ({resp.status_code}): "
                                     f"{error_text(resp)}")
            doc = resp.json()
            if on_pending is not None:
                on_pending(str(doc.get("auth_dialog") or f"{base}/plugin/appkeys/auth/{doc['app_token']}"))
            return _poll_app_key(client, base, str(doc["app_token"]), timeout_s, min(poll_s, 4.0))
        except httpx.HTTPError as err:
            raise TransportError(f"OctoPrint at {base} is not reachable for an application key: {err}") from err


def _poll_app_key(client: httpx.Client, base: str, token: str, timeout_s: float, poll_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        resp = client.get(f"/plugin/appkeys/request/{token}")
        if resp.status_code == 200:
            return str(resp.json()["api_key"])
        if resp.status_code == 404:
            raise TransportError(f"OctoPrint at {base}: the application key request was denied or expired")
        if resp.status_code != 202:
            raise TransportError(f"OctoPrint at {base} answered {resp.status_code} while waiting for a key")
        time.sleep(poll_s)
    raise TransportError(f"OctoPrint at {base}: nobody approved the application key within {timeout_s:g} s")
