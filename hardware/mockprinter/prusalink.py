"""A PrusaLink-style (v1 API) network printer for SL1 archives: stdlib HTTP on 127.0.0.1 with digest auth.

It imports nothing from fabctl: an independent second side, so a parsing bug on either side shows up.

What it does, after PrusaLink's OpenAPI description (Prusa-Link-Web ``spec/openapi.yaml``) and daemon:

- HTTP Digest auth (realm ``Administrator``, MD5, qop ``auth``); wrong credentials → 401.
- ``PUT /api/v1/files/{local|usb}/{name}``: needs ``Content-Length`` (411), honours ``Overwrite`` (409 when
  the file exists) and ``Print-After-Upload`` (409 when the printer is not ready); refuses a body that is not a
  zip holding ``config.ini`` with consistent layer counts (415); 413 "Not enough space in storage" when the
  body exceeds ``free_space_bytes`` (what the PrusaLink daemon answers).
- ``POST`` the same path starts a stored file; ``GET /api/v1/status``, ``GET /api/v1/job`` (204 without a
  job), ``PUT /api/v1/job/{id}/pause|resume``, ``DELETE /api/v1/job/{id}``; ``GET /api/version``,
  ``GET /api/v1/info``, ``GET /api/v1/storage``.
- "Prints" layer by layer: layers = numFast + numSlow; the first numFade layers fade from expTimeFirst to
  expTime; each layer takes (exposure + tilt_s) * time_scale seconds.
- Faults: ``fail_at_layer`` (job and printer go to ERROR there), ``free_space_bytes`` (413), ``vanish()``
  (the server goes away: listening socket and open connections closed).

Run standalone: ``python -m mockprinter.prusalink --port 8081 --password secret [--time-scale 0.01]``.
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import hmac
import io
import json
import logging
import re
import secrets
import socket
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

REALM = "Administrator"
STORAGES = ("local", "usb")
_AUTH_FIELD = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]+))')


class ArchiveError(ValueError):
    """The upload is not an SL1 archive this printer can print."""


@dataclass(frozen=True)
class Sl1Job:
    """What the printer reads from an archive's config.ini."""

    layers: int
    exp_time_s: float
    exp_time_first_s: float
    num_fade: int

    def exposure_s(self, layer: int) -> float:
        """Layer ``layer`` (0-based): the first ``num_fade`` layers fade linearly from first to normal."""
        if layer >= self.num_fade or self.num_fade <= 1:
            return self.exp_time_s if layer >= self.num_fade else self.exp_time_first_s
        frac = layer / (self.num_fade - 1)
        return self.exp_time_first_s + (self.exp_time_s - self.exp_time_first_s) * frac


def read_sl1(data: bytes) -> Sl1Job:
    """Parse an SL1 archive: a zip with config.ini (``key = value``) and one PNG per layer."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
        text = archive.read("config.ini").decode("utf-8")
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError) as err:
        raise ArchiveError(f"not an SL1 archive: {err}") from err
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.optionxform = str  # type: ignore[assignment, method-assign]
    try:
        cfg.read_string("[sl1]\n" + text)
        ini = cfg["sl1"]
        layers = int(ini.get("numFast", "0")) + int(ini.get("numSlow", "0"))
        job = Sl1Job(layers=layers, exp_time_s=float(ini["expTime"]),
                     exp_time_first_s=float(ini.get("expTimeFirst", ini["expTime"])),
                     num_fade=int(ini.get("numFade", "0")))
    except (configparser.Error, KeyError, ValueError) as err:
        raise ArchiveError(f"config.ini: {err}") from err
    pngs = [n for n in names if n.endswith(".png") and "/" not in n]
    if layers <= 0 or len(pngs) != layers:
        raise ArchiveError(f"config.ini says {layers} layers (numFast + numSlow), the archive has {len(pngs)} PNGs")
    return job


@dataclass
class PrintJob:
    id: int
    storage: str
    name: str
    size: int
    spec: Sl1Job
    state: str = "PRINTING"
    layer: int = 0
    started: float = field(default_factory=time.monotonic)
    pause_requested: bool = False
    stop_requested: bool = False

    def doc(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        progress = 100.0 * self.layer / self.spec.layers
        left = elapsed / max(progress, 1e-3) * (100.0 - progress) if progress > 0 else None
        return {
            "id": self.id, "state": self.state, "progress": round(progress, 2),
            "time_printing": int(elapsed), "time_remaining": None if left is None else int(left),
            "file": {"name": self.name, "display_name": self.name, "path": f"/{self.storage}",
                     "display_path": f"/{self.storage.upper()}", "size": self.size,
                     "m_timestamp": int(time.time())},
        }


class MockSL1:
    """The printer: stored files, one job at a time, a thread that exposes layers."""

    def __init__(self, *, time_scale: float = 0.01, tilt_s: float = 0.0, fail_at_layer: int | None = None,
                 free_space_bytes: int = 1 << 30) -> None:
        self.time_scale = time_scale
        self.tilt_s = tilt_s
        self.fail_at_layer = fail_at_layer
        self.free_space_bytes = free_space_bytes
        self.files: dict[tuple[str, str], bytes] = {}
        self.job: PrintJob | None = None
        self.error: str = ""
        self._next_id = secrets.randbelow(900) + 100
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)

    @property
    def state(self) -> str:
        if self.error:
            return "ERROR"
        if self.job is None:
            return "IDLE"
        return self.job.state

    def ready(self) -> bool:
        return self.state in ("IDLE", "READY", "FINISHED", "STOPPED")

    def store(self, storage: str, name: str, data: bytes, overwrite: bool) -> tuple[int, str]:
        """(HTTP status, message) for an upload; the file is kept only when it is a printable archive."""
        with self._lock:
            if (storage, name) in self.files and not overwrite:
                return 409, "File already exists."
            used = sum(len(v) for v in self.files.values())
            if len(data) >= self.free_space_bytes - used:
                return 413, "Not enough space in storage."
            try:
                read_sl1(data)
            except ArchiveError as err:
                return 415, f"Unsupported Media Type: {err}"
            self.files[(storage, name)] = data
        return 201, ""

    def start(self, storage: str, name: str) -> tuple[int, str]:
        with self._lock:
            data = self.files.get((storage, name))
            if data is None:
                return 404, "File not found."
            if not self.ready():
                return 409, "Printer is not in state to print."
            self.job = PrintJob(id=self._next_id, storage=storage, name=name, size=len(data),
                                spec=read_sl1(data))
            self._next_id += 1
            job = self.job
        threading.Thread(target=self._run, args=(job,), name=f"mock-sl1-job-{job.id}", daemon=True).start()
        log.info("mock SL1: job %d %s, %d layers", job.id, name, job.spec.layers)
        return 204, ""

    def control(self, job_id: int, action: str) -> tuple[int, str]:
        with self._wake:
            job = self.job
            if job is None or job.id != job_id:
                return 404, "Job not found."
            if action == "stop" and job.state in ("PRINTING", "PAUSED"):
                job.stop_requested = True
            elif action == "pause" and job.state == "PRINTING":
                job.pause_requested = True
            elif action == "resume" and job.state == "PAUSED":
                job.pause_requested = False
                job.state = "PRINTING"
            else:
                return 409, f"Cannot {action} a job that is {job.state}."
            self._wake.notify_all()
        return 204, ""

    def _run(self, job: PrintJob) -> None:
        for layer in range(job.spec.layers):
            if not self._expose(job, layer):
                return
        with self._lock:
            job.layer, job.state = job.spec.layers, "FINISHED"
        log.info("mock SL1: job %d finished", job.id)

    def _expose(self, job: PrintJob, layer: int) -> bool:
        """One layer: wait out pauses, honour stop, inject the failure. False when the job ended."""
        deadline = time.monotonic() + (job.spec.exposure_s(layer) + self.tilt_s) * self.time_scale
        with self._wake:
            while True:
                if job.stop_requested:
                    job.state = "STOPPED"
                    return False
                if job.pause_requested and job.state == "PRINTING":
                    job.state = "PAUSED"
                if job.state == "PAUSED":
                    self._wake.wait(0.05)
                    deadline = time.monotonic() + (job.spec.exposure_s(layer) + self.tilt_s) * self.time_scale
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(left)
            if self.fail_at_layer is not None and layer == self.fail_at_layer:
                job.state, self.error = "ERROR", f"injected failure at layer {layer}"
                log.info("mock SL1: job %d failed at layer %d", job.id, layer)
                return False
            job.layer = layer + 1
        return True


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("mock PrusaLink %s: " + format, self.address_string(), *args)

    # ----------------------------------------------------------------------------------- plumbing

    def _send(self, status: int, doc: Any = None, headers: dict[str, str] | None = None) -> None:
        body = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, text: str) -> None:
        self._send(status, {"title": self.responses.get(status, ("",))[0], "text": text})

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return False
        f = {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
             for m in _AUTH_FIELD.finditer(header[len("Digest "):])}
        srv = self.server
        if f.get("username") != srv.username or f.get("realm") != REALM or f.get("nonce") != srv.nonce:
            return False
        if f.get("uri") != self.path:
            return False
        ha1 = _md5(f"{srv.username}:{REALM}:{srv.password}")
        ha2 = _md5(f"{self.command}:{f['uri']}")
        if f.get("qop") == "auth":
            expected = _md5(f"{ha1}:{f['nonce']}:{f.get('nc', '')}:{f.get('cnonce', '')}:auth:{ha2}")
        else:
            expected = _md5(f"{ha1}:{f['nonce']}:{ha2}")
        return hmac.compare_digest(expected, f.get("response", ""))

    def _challenge(self) -> None:
        self._drain_body()
        self._send(401, {"title": "Unauthorized", "text": "Authorization required."}, headers={
            "WWW-Authenticate": f'Digest realm="{REALM}", nonce="{self.server.nonce}", qop="auth", algorithm=MD5',
        })

    def _drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                break
            length -= len(chunk)

    def _dispatch(self) -> None:
        if not self._authorized():
            self._challenge()
            return
        path = unquote(urlsplit(self.path).path)
        for method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(path)
            if method == self.command and match:
                handler(self, *match.groups())
                return
        self._drain_body()
        self._error(404, f"No route for {self.command} {path}.")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _dispatch

    # ----------------------------------------------------------------------------------- endpoints

    def version(self) -> None:
        self._send(200, {"api": "1.0.0", "version": "0.8.0-mock", "printer": "1.0.0", "text": "Mock SL1S (PrusaLink)",
                         "firmware": "mock-sl1s-1.0", "sdk": "", "capabilities": {"upload-by-put": True}})

    def info(self) -> None:
        self._send(200, {"name": "mock-sl1s", "location": "", "farm_mode": False, "serial": self.server.serial,
                         "sd_ready": False, "active_camera": False, "hostname": "localhost"})

    def status(self) -> None:
        sl1 = self.server.printer
        with sl1._lock:
            doc: dict[str, Any] = {"printer": {
                "state": sl1.state,
                "status_printer": {"ok": not sl1.error, "message": sl1.error or "OK"},
            }}
            if sl1.job is not None:
                j = sl1.job.doc()
                doc["job"] = {k: j[k] for k in ("id", "progress", "time_remaining", "time_printing")}
            doc["storage"] = {"name": "LOCAL", "path": "/local", "read_only": False,
                              "free_space": sl1.free_space_bytes - sum(len(v) for v in sl1.files.values())}
        self._send(200, doc)

    def job(self) -> None:
        sl1 = self.server.printer
        with sl1._lock:
            doc = None if sl1.job is None else sl1.job.doc()
        self._send(204) if doc is None else self._send(200, doc)

    def job_control(self, job_id: str, action: str | None = None) -> None:
        code, text = self.server.printer.control(int(job_id), action or "stop")
        self._send(code) if code == 204 else self._error(code, text)

    def upload(self, storage: str, name: str) -> None:
        if storage not in STORAGES:
            self._drain_body()
            self._error(404, f"Storage {storage} does not exist.")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            self._error(411, "Missing Content-Length header or no content in request.")
            return
        data = self.rfile.read(length)
        code, text = self.server.printer.store(storage, name, data, _flag(self.headers.get("Overwrite")))
        if code == 201 and _flag(self.headers.get("Print-After-Upload")):
            code, text = self.server.printer.start(storage, name)
            code = 201 if code == 204 else code
        self._send(code) if code == 201 else self._error(code, text)

    def start_file(self, storage: str, name: str) -> None:
        self._drain_body()
        code, text = self.server.printer.start(storage, name)
        self._send(code) if code == 204 else self._error(code, text)

    def storage(self) -> None:
        self._send(200, {"storage_list": [{"type": "LOCAL", "path": "/local", "name": "local", "available": True,
                                           "read_only": False}]})


def _flag(value: str | None) -> bool:
    """An RFC 8941 boolean header: ``?1`` true, anything else false."""
    return (value or "").strip() == "?1"


_ROUTES = [
    ("GET", re.compile(r"/api/version"), _Handler.version),
    ("GET", re.compile(r"/api/v1/info"), _Handler.info),
    ("GET", re.compile(r"/api/v1/status"), _Handler.status),
    ("GET", re.compile(r"/api/v1/storage"), _Handler.storage),
    ("GET", re.compile(r"/api/v1/job"), _Handler.job),
    ("DELETE", re.compile(r"/api/v1/job/(\d+)"), _Handler.job_control),
    ("PUT", re.compile(r"/api/v1/job/(\d+)/(pause|resume)"), _Handler.job_control),
    ("PUT", re.compile(r"/api/v1/files/([^/]+)/(.+)"), _Handler.upload),
    ("POST", re.compile(r"/api/v1/files/([^/]+)/(.+)"), _Handler.start_file),
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], printer: MockSL1, username: str, password: str) -> None:
        super().__init__(address, _Handler)
        self.printer = printer
        self.username, self.password = username, password
        self.nonce = secrets.token_hex(16)
        self.serial = "MOCK-SL1S-" + secrets.token_hex(4).upper()
        self.open_connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._conn_lock:
            conns, self.open_connections = list(self.open_connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


class MockPrusaLink:
    """The mock printer on ``127.0.0.1:port`` (0: a free port) in a background thread; ``url`` once started."""

    def __init__(self, *, username: str = "maker", password: str = "mock-password", port: int = 0,
                 printer: MockSL1 | None = None) -> None:
        self.printer = printer or MockSL1()
        self._server = _Server(("127.0.0.1", port), self.printer, username, password)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> MockPrusaLink:
        self._thread = threading.Thread(target=self._server.serve_forever, name="mock-prusalink", daemon=True)
        self._thread.start()
        return self

    def vanish(self) -> None:
        """Go away as a crashed printer would: stop listening and cut every open connection."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()
        self._server.drop_connections()

    stop = vanish

    def __enter__(self) -> MockPrusaLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.vanish()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m mockprinter.prusalink", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one)")
    ap.add_argument("--username", default="maker")
    ap.add_argument("--password", required=True)
    ap.add_argument("--time-scale", type=float, default=1.0, help="seconds of mock time per second of exposure")
    ap.add_argument("--tilt-s", type=float, default=0.0, help="tilt/peel time added to every layer")
    ap.add_argument("--fail-at-layer", type=int, default=None, help="inject a print error at this layer")
    ap.add_argument("--free-space", type=int, default=1 << 30, help="bytes of storage (413 when exceeded)")
    a = ap.parse_args(argv)
    printer = MockSL1(time_scale=a.time_scale, tilt_s=a.tilt_s, fail_at_layer=a.fail_at_layer,
                      free_space_bytes=a.free_space)
    mock = MockPrusaLink(username=a.username, password=a.password, port=a.port, printer=printer).start()
    print(f"URL={mock.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        mock.vanish()


if __name__ == "__main__":
    main()
