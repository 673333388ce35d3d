"""``SerialPrinter``: a Marlin-speaking printer on a serial line (or any pyserial URL), streamed by the host.

The host *is* the print here: ``send_job(path)`` streams the file and returns when the job has reached a
terminal state (``done``, ``cancelled``; ``failed`` raises ``TransportError``). There is no thread of our
own: the stream runs in the caller's thread; ``pause``/``resume``/``cancel``/``status`` may be called from
another thread (the queue daemon's control side) or from the ``on_status`` callback.

Connect: wait briefly for a ``start`` banner, then ``N0 M110 N0`` (repeated on ``start``, up to 3 hellos),
``N1 M115`` (firmware name, machine type, serial number/UUID, ``Cap:`` lines), then one deliberately
mis-checksummed ``M105`` to learn whether the firmware sends ``ok`` after ``Resend:`` (revisions differ; a
windowed sender must know). A firmware that does not reject the bad checksum is refused: it would execute
corrupted laser moves.

A job: ``N0 M110 N0``, the program's commands (comments and blank lines stripped; ``;LAYER:n`` markers
counted first) as ``N1..Nk``, then ``M400`` so that ``done`` means the machine finished its moves.

Pause holds the stream at the next line where the program has the beam off (after ``M5`` / ``M3 S0``), so
the laser is never left on while the host waits. Cancel stops feeding and sends ``N<k> M110 N<k>`` (accepted
whatever line the firmware expected, so a pending resend cannot block the stop), then the stop sequence,
by default ``M5`` (beam off) and ``M400`` (wait for moves to end); lines already in the firmware's queue
still run. Ctrl-C during a stream sends the same stop sequence before re-raising.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fabctl.errors import InputError, TransportError
from fabctl.transport.base import JobState, PrinterIdentity, PrinterStatus
from fabctl.transport.gcode_line import (
    MAX_CMD_SIZE,
    SERIAL_KEYS,
    ErrorClass,
    Kind,
    Program,
    checksum,
    classify_error,
    frame,
    load_program,
    parse_m115,
    parse_reply,
)
from fabctl.transport.serial_link import PortLink
from fabctl.transport.serial_window import Controls, Streamer, StreamSettings, StreamStats

log = logging.getLogger(__name__)

__all__ = ["SerialPrinter", "StreamSettings", "StreamStats", "job_sequence", "write_dry_run"]


def job_sequence(program: Program) -> list[str]:
    """What line ``n`` carries: ``M110 N0``, the program, ``M400``."""
    return ["M110 N0", *program.commands, "M400"]


def write_dry_run(job_file: Path, out: Path, *, max_line_bytes: int = MAX_CMD_SIZE) -> dict[str, Any]:
    """Write the exact bytes a clean stream of ``job_file`` puts on the wire to ``out`` (for diffing)."""
    program = load_program(job_file, max_line_bytes=max_line_bytes)
    data = b"".join(frame(n, cmd) for n, cmd in enumerate(job_sequence(program)))
    Path(out).write_bytes(data)
    return {"job_file": str(job_file), "out": str(out), "lines": program.source_lines,
            "commands": len(program.commands), "skipped_lines": program.skipped_lines,
            "wire_lines": len(program.commands) + 2, "wire_bytes": len(data), "layers": program.layers_total,
            "job_sha256": program.sha256}


class SerialPrinter:
    """A printer speaking the Marlin host protocol over ``serial.serial_for_url(url)``.

    ``rx_buffer_bytes``: the firmware's receive buffer (profile ``transport.rx_buffer_bytes``).
    ``settings``: the sender's flow and timeouts (``StreamSettings``; its ``rx_buffer_bytes`` is replaced
    by the argument). ``ok_after_resend``: None learns it at connect. ``on_status``: called from the stream
    loop with each new ``PrinterStatus`` (about every ``settings.progress_interval_s``).
    """

    def __init__(self, url: str, *, baud: int = 115200, rx_buffer_bytes: int = 127,
                 settings: StreamSettings | None = None, connect_timeout_s: float = 10.0,
                 banner_wait_s: float = 0.5, poll_s: float = 0.05, max_line_bytes: int = MAX_CMD_SIZE,
                 ok_after_resend: bool | None = None,
                 on_status: Callable[[PrinterStatus], None] | None = None) -> None:
        self.url, self.baud = url, baud
        self.settings = dataclasses.replace(settings or StreamSettings(), rx_buffer_bytes=rx_buffer_bytes)
        if self.settings.window_bytes < 16:
            raise InputError(f"rx_buffer_bytes {rx_buffer_bytes} is too small to stream (at least 21)")
        self.connect_timeout_s, self.banner_wait_s, self.poll_s = connect_timeout_s, banner_wait_s, poll_s
        self.max_line_bytes = max_line_bytes
        self.ok_after_resend = ok_after_resend
        self.on_status = on_status
        self.link: PortLink | None = None
        self.identity: PrinterIdentity | None = None
        self.caps: dict[str, str] = {}
        self.program: Program | None = None
        self.streamer: Streamer | None = None
        self.controls = Controls()
        self._lock = threading.Lock()
        self._status = PrinterStatus(JobState.idle)
        self.started_at = self.duration_s = 0.0

    @classmethod
    def from_profile(cls, settings: Any, **overrides: Any) -> SerialPrinter:
        """From a profile's ``SerialTransport`` (url, baud, rx_buffer_bytes); ``overrides`` win.

        Override keys naming a ``StreamSettings`` field (``flow``, ``response_timeout_s``, ...) go to the
        sender's settings; the rest to the constructor.
        """
        names = {f.name for f in dataclasses.fields(StreamSettings)} - {"rx_buffer_bytes"}
        stream = {k: overrides.pop(k) for k in list(overrides) if k in names}
        base = overrides.pop("settings", None) or StreamSettings()
        kw: dict[str, Any] = {"baud": settings.baud, "rx_buffer_bytes": settings.rx_buffer_bytes}
        kw.update(overrides)
        url = kw.pop("url", settings.url)
        return cls(url, settings=dataclasses.replace(base, **stream), **kw)

    # ------------------------------------------------------------------------------------- connection

    def connect(self) -> PrinterIdentity:
        """Open the port, handshake, read ``M115``, learn the resend ``ok`` behaviour."""
        if self.link is None:
            self.link = PortLink(self.url, self.baud, poll_s=self.poll_s)
        try:
            self._hello()
            self.identity = self._m115()
            if self.ok_after_resend is None:
                self.ok_after_resend = self._learn_resend_ok()
        except TransportError:
            self.close()
            raise
        self._set(PrinterStatus(JobState.idle, message=f"connected to {self.identity.model}"))
        return self.identity

    def identify(self) -> PrinterIdentity:
        if self.identity is None:
            raise TransportError(f"printer at {self.url} is not connected", hint="call connect() first")
        return self.identity

    def _link(self) -> PortLink:
        if self.link is None:
            raise TransportError(f"printer at {self.url} is not connected", hint="call connect() first")
        return self.link

    def _hello(self) -> None:
        link = self._link()
        hello = frame(0, "M110 N0")
        t0 = time.monotonic()
        deadline, per_try = t0 + self.connect_timeout_s, self.connect_timeout_s / 3
        sent_at: float | None = None
        tries, banner = 0, False
        while time.monotonic() < deadline:
            for text in link.read_lines(block=True):
                r = parse_reply(text)
                if r.kind is Kind.start:
                    banner, sent_at = True, None  # a (re)booted firmware: greet it again
                elif r.kind in (Kind.ok, Kind.wait) and sent_at is not None:
                    log.info("printer at %s answered M110 after %.2f s", self.url, time.monotonic() - t0)
                    return
                elif r.kind is Kind.error and classify_error(r.message) is ErrorClass.fatal:
                    raise TransportError(f"printer at {self.url} is in an error state: {r.text}",
                                         hint="reset the printer (M999 or power cycle) and check it")
            now = time.monotonic()
            greet = sent_at is None and (banner or now - t0 >= self.banner_wait_s)
            if greet or (sent_at is not None and now - sent_at > per_try):
                if tries == 3:
                    break
                link.write(hello)
                sent_at, tries = now, tries + 1
        raise TransportError(f"no answer from the printer at {self.url} to M110 within "
                             f"{self.connect_timeout_s:g} s", hint="check the port, baud rate and power")

    def _collect(self, data: bytes, until: Callable[[Any], bool], timeout_s: float) -> list[Any]:
        """Send ``data``; collect parsed replies until ``until(reply)`` is true or the timeout."""
        link = self._link()
        link.write(data)
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            lines = link.read_lines(block=True)
            for i, text in enumerate(lines):
                r = parse_reply(text)
                out.append(r)
                if until(r):
                    link.unread(lines[i + 1:])
                    return out
        return out

    def _m115(self) -> PrinterIdentity:
        replies = self._collect(frame(1, "M115"), lambda r: r.kind is Kind.ok, self.connect_timeout_s)
        if not replies or replies[-1].kind is not Kind.ok:
            raise TransportError(f"printer at {self.url} did not answer M115", hint="is it Marlin-compatible?")
        fields, self.caps = parse_m115([r.text for r in replies])
        serial_no = next((fields[k] for k in SERIAL_KEYS if fields.get(k)), "unknown")
        ident = PrinterIdentity(model=fields.get("MACHINE_TYPE", "unknown"),
                                firmware=fields.get("FIRMWARE_NAME", "unknown"), serial_number=serial_no)
        log.info("printer %s, firmware %s, serial %s", ident.model, ident.firmware, ident.serial_number)
        return ident

    def _learn_resend_ok(self) -> bool:
        """Send ``N2 M105`` with a wrong checksum: the firmware must ask for it again; see if ``ok`` follows."""
        body = b"N2 M105"
        bad = body + b"*%d\n" % ((checksum(body) + 1) % 256)
        replies = self._collect(bad, lambda r: r.kind in (Kind.resend, Kind.ok), 2.0)
        if not replies or replies[-1].kind is not Kind.resend:
            raise TransportError(f"printer at {self.url} did not reject a line with a wrong checksum",
                                 hint="a printer that does not verify checksums cannot be streamed safely")
        after = self._collect(b"", lambda r: True, 0.3)
        with_ok = any(r.kind is Kind.ok for r in after[:1])
        log.info("firmware %s 'ok' after a resend request", "sends" if with_ok else "does not send")
        return with_ok

    # -------------------------------------------------------------------------------------------- jobs

    def send_job(self, job_file: Path, *, start: bool = True) -> str:
        """Load and check ``job_file``; with ``start`` stream it to the end. Returns ``name@sha256[:12]``."""
        self._link()
        if self.status().state in (JobState.printing, JobState.paused):
            raise TransportError(f"printer at {self.url} is already streaming a job")
        program = load_program(Path(job_file), max_line_bytes=self.max_line_bytes)
        seq = job_sequence(program)
        framed = [frame(n, c) for n, c in enumerate(seq)]
        longest = max(map(len, framed))
        if longest > self.settings.window_bytes:
            raise InputError(f"{program.name}: a framed line of {longest} bytes does not fit the printer's "
                             f"{self.settings.rx_buffer_bytes}-byte receive buffer (5 bytes kept for M105)")
        self.program, self.controls = program, Controls()
        self.streamer = Streamer(
            self._link(), seq, self.settings, first=1, last=len(program.commands), hold_ok=self._hold_ok,
            controls=self.controls, ok_after_resend=bool(self.ok_after_resend), on_progress=self._progress,
            framed=framed)
        self._set(PrinterStatus(JobState.sending, layers_total=program.layers_total,
                                message=f"{len(program.commands)} commands loaded"))
        if start:
            self.start()
        return f"{program.name}@{program.sha256[:12]}"

    def _hold_ok(self, n: int) -> bool:
        assert self.program is not None
        if n < 1:
            return False
        i = n - 1
        return i >= len(self.program.commands) or self.program.laser_off_before[i]

    def start(self) -> None:
        """Stream the loaded job to its end (blocking). Raises ``TransportError`` when it fails."""
        if self.streamer is None or self.program is None:
            raise TransportError("no job loaded", hint="call send_job(path, start=False) first")
        streamer, t0 = self.streamer, time.monotonic()
        self.started_at = t0
        self._set(PrinterStatus(JobState.printing, layers_total=self.program.layers_total,
                                message="streaming"))
        try:
            outcome = streamer.run()
        except TransportError as err:
            self._finish(JobState.failed, err.message, t0)
            raise
        except KeyboardInterrupt:
            self._interrupted(streamer, t0)
            raise
        self._finish(JobState.done if outcome == "done" else JobState.cancelled, outcome, t0)

    def _interrupted(self, streamer: Streamer, t0: float) -> None:
        log.warning("interrupted: sending the stop sequence")
        with self.controls.lock:
            self.controls.cancel = True
        try:
            streamer.run()
        except TransportError as err:
            self._finish(JobState.failed, f"interrupted; stop sequence not confirmed: {err.message}", t0)
            return
        self._finish(JobState.cancelled, "interrupted by the operator", t0)

    def _finish(self, state: JobState, message: str, t0: float) -> None:
        self.duration_s = time.monotonic() - t0
        st = self._snapshot(state)
        self._set(dataclasses.replace(st, message=message if state is not JobState.done else st.message))
        if self.on_status:
            self.on_status(self._status)

    # ------------------------------------------------------------------------------------------ status

    def _snapshot(self, state: JobState) -> PrinterStatus:
        prog, sm = self.program, self.streamer
        if prog is None or sm is None:
            return PrinterStatus(state)
        done = sm.stats.lines_confirmed
        total = len(prog.commands)
        layer = prog.layer_of[done - 1] if done else 0
        st = sm.stats
        extra = {"lines_sent": str(done), "lines_total": str(total), "resends": str(st.resends),
                 "wire_lines": str(st.wire_lines), "flow": st.flow}
        return PrinterStatus(state, progress=done / total if total else 0.0, layer=layer,
                             layers_total=prog.layers_total,
                             message=f"line {done}/{total}, layer {layer}/{prog.layers_total}", extra=extra)

    def _progress(self, sm: Streamer) -> None:
        if sm.outcome:
            return
        state = JobState.paused if sm.paused else JobState.printing
        self._set(self._snapshot(state))
        if self.on_status:
            self.on_status(self._status)

    def _set(self, status: PrinterStatus) -> None:
        with self._lock:
            self._status = status

    def status(self) -> PrinterStatus:
        with self._lock:
            return self._status

    def follow(self, *, timeout_s: float | None = None,
               on_status: Callable[[PrinterStatus], None] | None = None) -> PrinterStatus:
        """The final status (``send_job`` already streamed to the end); starts a loaded job if needed."""
        if self.status().state in (JobState.sending,):
            if on_status:
                self.on_status = on_status
            self.start()
        return self.status()

    @property
    def stats(self) -> StreamStats | None:
        return self.streamer.stats if self.streamer else None

    def pause(self) -> None:
        with self.controls.lock:
            self.controls.pause = True

    def resume(self) -> None:
        with self.controls.lock:
            self.controls.pause = False

    def cancel(self) -> None:
        """Ask the stream to stop (takes effect in the stream loop); a loaded, unstarted job is dropped."""
        with self.controls.lock:
            self.controls.cancel = True
        if self.status().state is JobState.sending:
            self._set(PrinterStatus(JobState.cancelled, message="cancelled before it started"))

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None

    def __enter__(self) -> SerialPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
