"""The windowed Marlin sender: keeps the firmware's receive buffer full, resends from a history window.

One single-threaded loop (no thread of its own): fill the window, read replies (blocking briefly only when
nothing can be sent), handle them, check timers. Other threads may only set the ``Controls`` flags.

Guarantees, and who enforces them:

* **Every line executed exactly once, in order** — the firmware's line-number check enforces it (it accepts
  only ``N == last+1``, except on ``M110``); the host's job is to resend what the firmware asks for, from
  the ``history`` deque, and never to skip. A request older than the history is fatal.
* **Never overfill the receive buffer** — bytes of unacknowledged lines (plus the bytes of lines rejected
  by a resend request that may still be in transit) stay ≤ ``rx_buffer_bytes - 5``; the 5 bytes are kept
  for one ``M105\\n`` liveness probe. This is GRBL-style character counting; the firmware acknowledges each
  line once, in order. With ADVANCED_OK (``ok N<n> P<p> B<b>``) acknowledgements go by line number, and
  lines in flight are also capped at ``B`` (the firmware's free command slots), so a line error wastes
  less.
* **``done`` only when the printer said so** — the job ends with a numbered ``M400`` whose own ``ok`` must
  arrive (by ``N`` under ADVANCED_OK, else in order), then an ``M105`` probe must be answered after it.
* **``M110`` is a barrier** — Marlin sets its line counter when it *executes* ``M110``, so a line parsed
  before that would be numbered against the old counter and could run twice; nothing follows an ``M110``
  until its ``ok`` is in.
* **A firmware that lost its state fails the job** — ``start`` mid-job, or a request for a line it has
  already acknowledged (a silent reset), is fatal: resending from there would expose layers twice.

Resend rules (research/printer-comms.md §5.6): a repeated request for the line being resent is ignored
(stale lines sent before the first request each trigger one); a request for the line we would send next
anyway is ignored; if the firmware then stays silent with nothing else to acknowledge for
``resend_timeout_s``, the same line is sent again; the same line requested ``max_consecutive_resends``
times is fatal. Whether the firmware sends ``ok`` after ``Resend:`` (Marlin revisions differ) is learned
at connect and that ``ok`` is swallowed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from fabctl.errors import TransportError
from fabctl.transport.gcode_line import (
    ErrorClass,
    Kind,
    Reply,
    classify_error,
    frame,
    is_halt_message,
    parse_reply,
)

_OK = parse_reply("ok")

log = logging.getLogger(__name__)

PROBE = b"M105\n"
LONG_RUNNING = frozenset({"G4", "G28", "G29", "M400", "M109", "M190", "M600"})
_PLAIN_HEADS = frozenset({"G0 ", "G1 ", "g0 ", "g1 "})  # cmd[:3] of a move: not in LONG_RUNNING, not M110
_HINT = "the part is not finished: inspect the printer before starting again"


@dataclass(frozen=True)
class StreamSettings:
    """Knobs of the sender. Defaults follow OctoPrint's (research §5.7) where one exists."""

    rx_buffer_bytes: int = 127
    flow: Literal["auto", "chars", "pingpong"] = "auto"
    response_timeout_s: float = 10.0
    max_timeouts: int = 3
    long_running_timeout_s: float = 900.0
    resend_timeout_s: float = 1.0
    max_consecutive_resends: int = 10
    history_lines: int = 0
    strict_unknown_commands: bool = True
    stop_sequence: tuple[str, ...] = ("M5", "M400")
    cancel_timeout_s: float = 30.0
    progress_interval_s: float = 0.1

    @property
    def window_bytes(self) -> int:
        return self.rx_buffer_bytes - len(PROBE)

    @property
    def history_size(self) -> int:
        return self.history_lines or max(64, self.rx_buffer_bytes // 4)


@dataclass
class StreamStats:
    lines_total: int = 0
    lines_confirmed: int = 0
    wire_lines: int = 0
    wire_bytes: int = 0
    resend_requests: int = 0
    resends: int = 0
    ignored_resends: int = 0
    resent_lines: int = 0
    line_errors: int = 0
    probes: int = 0
    timeouts: int = 0
    busy: int = 0
    max_inflight_bytes: int = 0
    max_inflight_lines: int = 0
    advanced_ok: bool = False
    flow: str = "chars"


@dataclass
class Controls:
    """Requests other threads may make while the loop runs (plain flags under a lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    pause: bool = False
    cancel: bool = False


@dataclass(slots=True)
class _Entry:
    n: int | None  # None: an unnumbered M105 probe
    size: int
    long: bool = False
    barrier: bool = False  # M110: nothing may follow until it is acknowledged


class LineLink(Protocol):
    """What the sender needs from a port (``serial_link.PortLink``).

    A link may also offer ``read_replies(block) -> (k, lines)``: ``k`` plain ``ok`` lines when that is all
    that arrived (the common case), else ``(0, lines)``; the sender then skips parsing each ``ok``.
    """

    def write(self, data: bytes) -> None: ...

    def read_lines(self, block: bool) -> list[str]: ...


class Outcome(Exception):
    """Internal: the loop's normal end ("done" or "cancelled")."""


class Streamer:
    """Streams ``seq`` (``seq[n]`` is sent as line ``n``) over ``link``.

    ``seq[0]`` is ``M110 N0``; lines ``first``..``last`` are the program's (counted for progress).
    ``hold_ok(n)`` says whether a pause may hold the stream before line ``n`` (the beam is off there).
    ``ok_after_resend``: the firmware sends ``ok`` after ``Resend:`` (learned at connect); it is swallowed.
    """

    def __init__(self, link: LineLink, seq: list[str], settings: StreamSettings, *, first: int, last: int,
                 hold_ok: Callable[[int], bool], controls: Controls, ok_after_resend: bool,
                 on_progress: Callable[[Streamer], None] | None = None,
                 framed: list[bytes] | None = None) -> None:
        self.link, self.seq, self.s = link, seq, settings
        # framed[n] == frame(n, seq[n]) when given (the caller framed the job once to check line sizes);
        # cut back to the lines still unchanged whenever ``seq`` is rewritten (cancel, an extra M400)
        self._pre: list[bytes] = list(framed) if framed is not None else []
        self.first, self.last_prog = first, last
        self.hold_ok, self.controls, self.on_progress = hold_ok, controls, on_progress
        self.ok_after_resend = ok_after_resend
        self.stats = StreamStats(lines_total=last - first + 1, flow=settings.flow)
        self.last_n = len(seq) - 1
        self.next_n, self.sent_max = 0, -1
        self.history: deque[bytes] = deque(maxlen=settings.history_size)
        self.inflight: deque[_Entry] = deque()
        self.inflight_bytes = self.numbered = self.stale_bytes = self.barriers = 0
        self.resend_r: int | None = None
        self.resend_at = self.last_progress = 0.0
        self.consecutive = 0
        self.swallow_ok = False
        self.probe_out = False
        self.ghost_probes = 0
        self.drain_probe = False
        self.b_cap: int | None = None
        self.confirmed_n = -1
        self.extra_tail = 0
        self.hold_from: int | None = None
        self.paused = False
        self.phase: Literal["stream", "cancel"] = "stream"
        self.floor_n = 0
        self.cancel_deadline = 0.0
        self.last_rx = self.quiet_since = self._last_report = time.monotonic()
        self.timeouts_in_row = 0
        s = settings
        self._quiet_fast_s = min(s.response_timeout_s, s.response_timeout_s * s.max_timeouts,
                                 s.long_running_timeout_s)
        self.outcome = ""
        self._window = settings.window_bytes
        self._framed: tuple[int, str, bytes] = (-1, "", b"")  # the last line framed: (n, command, bytes)

    # ---------------------------------------------------------------------------------------- loop

    def run(self) -> str:
        """Stream to the end; returns ``"done"`` or ``"cancelled"``; raises ``TransportError``."""
        read_replies = getattr(self.link, "read_replies", None)
        controls, clock = self.controls, time.monotonic
        try:
            while True:
                # the flags are read without the lock here, as a hint: _controls decides under it
                if controls.pause or controls.cancel or self.hold_from is not None or self.paused:
                    self._controls()
                if self.next_n > self.last_n:  # everything sent once: is the job complete?
                    self._check_complete()
                self._fill()
                # after _fill nothing more can be sent until a reply comes: wait for one (poll_s at most)
                if read_replies is not None:
                    oks, lines = read_replies(True)
                else:
                    oks, lines = 0, self.link.read_lines(block=True)
                now = clock()
                if oks:
                    self._on_oks(oks, now)
                for text in lines:
                    self._on_reply(parse_reply(text), now)
                self._timers(now)
                if self.on_progress is not None and now - self._last_report >= self.s.progress_interval_s:
                    self._report(now)
        except Outcome as end:
            self.outcome = str(end)
            self._report(time.monotonic(), force=True)
            return self.outcome

    def _fail(self, message: str) -> TransportError:
        return TransportError(message, hint=_HINT)

    # --------------------------------------------------------------------------------------- sending

    def _wire(self, n: int) -> bytes:
        if n <= self.sent_max:
            oldest = self.sent_max - len(self.history) + 1
            if n < oldest:
                raise self._fail(f"printer asks to resend line {n} but the history holds lines {oldest}.."
                                 f"{self.sent_max} only ({len(self.history)} lines)")
            return self.history[n - oldest]
        if n < len(self._pre):
            return self._pre[n]
        cmd = self.seq[n]
        cached = self._framed
        if cached[0] == n and cached[1] is cmd:  # framed once, whether or not it fitted last time
            return cached[2]
        wire = frame(n, cmd)
        self._framed = (n, cmd, wire)
        return wire

    def _fits(self, size: int) -> bool:
        """The window rule for one more line of ``size`` bytes (``_fill`` applies it inline, on locals)."""
        if self.barriers:
            return False
        if self.s.flow == "pingpong":
            return self.numbered == 0
        if self.numbered == 0 and self.inflight_bytes + size <= self.s.window_bytes:
            return True
        if self.inflight_bytes + self.stale_bytes + size > self.s.window_bytes:
            return False
        return self.b_cap is None or self.numbered < max(1, self.b_cap)

    def _held(self) -> bool:
        return self.hold_from is not None and self.next_n >= self.hold_from

    def _fill(self) -> None:
        """Queue every line that fits, then write them all at once (one write per refill, not per line).

        The same rules as ``_fits`` and ``_held``, evaluated on local copies of the counters (this runs
        once per reply batch and is the sender's hot path); the counters are stored back before the write.
        """
        if self.barriers:
            return
        n = self.next_n
        stop = self.last_n if self.hold_from is None else min(self.last_n, self.hold_from - 1)
        if n > stop:
            return
        pingpong = self.s.flow == "pingpong"
        window = self._window
        cap = None if self.b_cap is None else max(1, self.b_cap)
        nbytes, numbered, stale = self.inflight_bytes, self.numbered, self.stale_bytes
        seq, pre, inflight, history = self.seq, self._pre, self.inflight, self.history
        sent_max, resent, barrier = self.sent_max, 0, False
        first, n_pre = n, len(pre)
        out: list[bytes] = []
        while n <= stop and not barrier:
            wire = pre[n] if sent_max < n < n_pre else self._wire(n)
            size = len(wire)
            if pingpong:
                if numbered:
                    break
            elif numbered or nbytes + size > window:  # the first line goes if it fits on its own
                if nbytes + stale + size > window or (cap is not None and numbered >= cap):
                    break
            if n > sent_max:
                history.append(wire)
                sent_max = n
            else:
                resent += 1
            cmd = seq[n]
            if cmd[:3] in _PLAIN_HEADS:  # a G0/G1 move: neither long-running nor a barrier
                inflight.append(_Entry(n, size))
            else:
                head = cmd.split(" ", 1)[0].upper()
                barrier = head == "M110"
                inflight.append(_Entry(n, size, head in LONG_RUNNING, barrier))
            nbytes += size
            numbered += 1
            n += 1
            out.append(wire)
        if n == first:
            return
        self.inflight_bytes, self.numbered, self.barriers = nbytes, numbered, int(barrier)
        self.next_n, self.sent_max = n, sent_max
        st = self.stats
        st.resent_lines += resent
        st.max_inflight_bytes = max(st.max_inflight_bytes, nbytes + stale)
        st.max_inflight_lines = max(st.max_inflight_lines, numbered)
        data = b"".join(out)
        self.link.write(data)
        st.wire_lines += n - first
        st.wire_bytes += len(data)

    def _push(self, e: _Entry) -> None:
        self.inflight.append(e)
        self.inflight_bytes += e.size
        if e.n is not None:
            self.numbered += 1
        self.barriers += e.barrier
        st = self.stats
        st.max_inflight_bytes = max(st.max_inflight_bytes, self.inflight_bytes + self.stale_bytes)
        st.max_inflight_lines = max(st.max_inflight_lines, self.numbered)

    def _probe(self) -> None:
        self._push(_Entry(None, len(PROBE)))
        self.probe_out = True
        self.stats.probes += 1
        self.stats.wire_lines += 1
        self.link.write(PROBE)

    # ------------------------------------------------------------------------------------ acknowledging

    def _pop(self, now: float, *, direct: bool) -> _Entry:
        e = self.inflight.popleft()
        self.inflight_bytes -= e.size
        self.barriers -= e.barrier
        if e.n is None:
            self.probe_out = False
            return e
        self.numbered -= 1
        self.last_progress = now
        if direct:  # an ok for this very line (or a later one): the firmware ran everything up to it
            self.confirmed_n = max(self.confirmed_n, e.n)
            if self.phase == "stream" or e.n < self.floor_n:  # not the cancel's stop lines
                done = min(e.n, self.last_prog) - self.first + 1
                self.stats.lines_confirmed = max(self.stats.lines_confirmed, done)
        if self.resend_r is not None and e.n >= self.resend_r:
            self.resend_r, self.consecutive, self.ghost_probes = None, 0, 0
            self.stale_bytes = 0
        if self.numbered == 0:
            self.stale_bytes = 0
        return e

    def _on_ok(self, r: Reply, now: float) -> None:
        if r.buffer is not None and self.s.flow == "auto":
            self.b_cap = r.buffer
            if not self.stats.advanced_ok:
                log.info("firmware sends ADVANCED_OK (B%d): windowing by its free command slots too", r.buffer)
                self.stats.advanced_ok, self.stats.flow = True, "advanced_ok"
        if r.report:
            self._on_probe_answer(now)
            return
        if r.line is not None and self.stats.advanced_ok:
            while self.inflight and self.inflight[0].n is not None and self.inflight[0].n <= r.line:
                self._pop(now, direct=True)
            return
        if not self.inflight or (self.stats.advanced_ok and self.inflight[0].n is not None):
            log.debug("ok with nothing matching in flight: ignored")
            return
        if self.inflight[0].n is None:
            self._on_probe_answer(now)  # a firmware that answers M105 with a bare ok
            return
        self._pop(now, direct=True)

    def _on_oks(self, k: int, now: float) -> None:
        """``k`` plain ``ok`` lines in a row: what ``_on_reply`` does for each, with a run of numbered lines
        acknowledged in one step (the same counters ``_pop(direct=True)`` would leave)."""
        self.last_rx = now
        if self.swallow_ok:  # the ok that follows a resend request
            self.swallow_ok = False
            k -= 1
        inflight = self.inflight
        while k > 0:
            if self.stats.advanced_ok or not inflight or inflight[0].n is None:
                self._on_ok(_OK, now)
                k -= 1
                continue
            size = barriers = count = 0
            e = inflight[0]
            cancelling = self.phase != "stream"
            while count < k and inflight and inflight[0].n is not None:
                e = inflight.popleft()
                size += e.size
                barriers += e.barrier
                count += 1
                if cancelling and e.n < self.floor_n:  # job lines, not the cancel's stop lines
                    self._confirm_lines(e.n)
            k -= count
            self._acked_run(e, count, size, barriers, now)

    def _confirm_lines(self, n: int) -> None:
        done = min(n, self.last_prog) - self.first + 1
        if done > self.stats.lines_confirmed:
            self.stats.lines_confirmed = done

    def _acked_run(self, last: _Entry, count: int, size: int, barriers: int, now: float) -> None:
        """Counters after ``count`` numbered lines (``size`` bytes) ending with ``last`` were acknowledged."""
        assert last.n is not None
        self.inflight_bytes -= size
        self.barriers -= barriers
        self.numbered -= count
        self.last_progress = now
        if last.n > self.confirmed_n:
            self.confirmed_n = last.n
        if self.phase == "stream":
            self._confirm_lines(last.n)
        if self.resend_r is not None and last.n >= self.resend_r:
            self.resend_r, self.consecutive, self.ghost_probes = None, 0, 0
            self.stale_bytes = 0
        if self.numbered == 0:
            self.stale_bytes = 0

    def _on_probe_answer(self, now: float) -> None:
        """``ok T:...`` answers the oldest probe; everything sent before it has been processed."""
        if self.ghost_probes:
            self.ghost_probes -= 1
            return
        if not self.probe_out:
            log.debug("temperature report with no probe in flight: ignored")
            return
        while self.inflight:
            if self._pop(now, direct=False).n is None:
                break
        if self.drain_probe and self.numbered == 0:
            self.drain_probe = False
            if self.confirmed_n >= self.last_n:
                raise Outcome("cancelled" if self.phase == "cancel" else "done")

    # -------------------------------------------------------------------------------------- resending

    def _on_resend(self, r: Reply, now: float) -> None:
        self.stats.resend_requests += 1
        self.swallow_ok = self.ok_after_resend
        n = r.line
        if n is None:
            raise self._fail(f"printer sent a resend request without a line number: {r.text!r}")
        if self.phase == "cancel" and n < self.floor_n:
            n = self.floor_n
        if n <= self.confirmed_n:
            raise self._fail(f"printer asks for line {n} which it already acknowledged: it lost its state "
                             "(a reset?), the job failed")
        if n > self.sent_max + 1:
            raise self._fail(f"printer asks for line {n} but only lines up to {self.sent_max} were sent: "
                             "its line numbering is out of step")
        if n == self.resend_r or (self.resend_r is None and n == self.next_n):
            self.stats.ignored_resends += 1
            log.debug("ignoring resend request for line %d (repeat, or the line we send next)", n)
            return
        self._act_resend(n, now, stale=True)

    def _act_resend(self, n: int, now: float, *, stale: bool) -> None:
        self.consecutive = self.consecutive + 1 if n == self.resend_r else 1
        if self.consecutive > self.s.max_consecutive_resends:
            raise self._fail(f"printer keeps requesting line {n} ({self.consecutive - 1} times): "
                             "communication is stuck")
        self._wire(n)  # raises when the line has left the history
        log.info("resending from line %d (sent up to %d)", n, self.sent_max)
        self.stats.resends += 1
        self.resend_r, self.resend_at = n, now
        kept: deque[_Entry] = deque()
        dropped = 0
        for e in self.inflight:
            if dropped or (e.n is not None and e.n >= n):
                dropped += e.size
                if e.n is None:
                    self.probe_out = False
                    self.ghost_probes += 1
            else:
                kept.append(e)
        self.inflight = kept
        self.inflight_bytes = sum(e.size for e in kept)
        self.numbered = sum(1 for e in kept if e.n is not None)
        self.barriers = sum(e.barrier for e in kept)
        self.stale_bytes = self.stale_bytes + dropped if stale and self.numbered else 0
        self.next_n = n

    # ---------------------------------------------------------------------------------------- replies

    def _on_reply(self, r: Reply, now: float) -> None:
        swallow, self.swallow_ok = self.swallow_ok, False
        if r.kind in (Kind.ok, Kind.resend, Kind.busy, Kind.wait):
            self.last_rx = now
        if r.kind is Kind.ok:
            if swallow and not r.report and r.line is None:
                return
            self._on_ok(r, now)
        elif r.kind is Kind.resend:
            self._on_resend(r, now)
        elif r.kind is Kind.busy:
            self.stats.busy += 1
        elif r.kind is Kind.wait:
            if self.numbered and not self.probe_out:
                self._probe()
        elif r.kind is Kind.error:
            self._on_error(r)
        elif r.kind is Kind.start:
            raise self._fail("printer reset during the job (it sent 'start'): it lost its state, the job failed")
        elif r.kind is Kind.action:
            self._on_action(r)
        elif r.kind is Kind.echo and "unknown command" in r.message.lower():
            self._on_error(r)
        elif r.kind is Kind.info and is_halt_message(r.text):
            raise self._fail(f"printer halted: {r.text}")
        else:
            log.debug("printer: %s", r.text)

    def _on_error(self, r: Reply) -> None:
        cls = classify_error(r.message)
        if cls is ErrorClass.recoverable:
            self.stats.line_errors += 1
            log.info("line error (a resend request follows): %s", r.text)
        elif cls is ErrorClass.ignored:
            log.info("ignored printer message: %s", r.text)
        elif cls is ErrorClass.unknown_command and not self.s.strict_unknown_commands:
            log.warning("printer did not understand a command: %s", r.text)
        elif cls is ErrorClass.unknown_command:
            raise self._fail(f"printer did not understand a command of the job: {r.text}")
        else:
            raise self._fail(f"printer error: {r.text}")

    def _on_action(self, r: Reply) -> None:
        name = r.message.split(" ", 1)[0].lower()
        with self.controls.lock:
            if name == "cancel":
                self.controls.cancel = True
            elif name == "pause":
                self.controls.pause = True
            elif name == "resume":
                self.controls.pause = False
            elif name == "disconnect":
                raise self._fail("printer asked the host to disconnect (//action:disconnect)")

    # --------------------------------------------------------------------------------- timers, controls

    def _timers(self, now: float) -> None:
        if self.phase == "cancel" and now > self.cancel_deadline:
            raise self._fail(f"printer did not confirm the stop sequence within {self.s.cancel_timeout_s:g} s")
        if self.resend_r is not None and self._resend_stalled(now):
            log.info("no answer to the resend of line %d: sending it again", self.resend_r)
            self._act_resend(self.resend_r, now, stale=False)
        if not (self.numbered or self.probe_out):
            self.quiet_since = now
            return
        quiet_for = now - max(self.last_rx, self.quiet_since)
        if quiet_for < self._quiet_fast_s and not self.timeouts_in_row:
            return  # the printer answered recently: no limit below can be reached (checked every pass)
        long_running = any(e.long for e in self.inflight)
        limit = self.s.long_running_timeout_s if long_running else self.s.response_timeout_s * self.s.max_timeouts
        if quiet_for >= limit:
            raise self._fail(f"no response from the printer for {quiet_for:.1f} s "
                             f"(M105 probes unanswered; {self.numbered} lines unacknowledged)")
        due = int(quiet_for // self.s.response_timeout_s)
        if due > self.timeouts_in_row:
            self.timeouts_in_row = due
            self.stats.timeouts += 1
            if not self.probe_out:
                log.info("no response for %.1f s: probing with M105", quiet_for)
                self._probe()
        elif due == 0:
            self.timeouts_in_row = 0

    def _resend_stalled(self, now: float) -> bool:
        assert self.resend_r is not None
        if any(e.n is not None and e.n < self.resend_r for e in self.inflight):
            return False
        wait_s = min(self.s.resend_timeout_s, self.s.response_timeout_s)
        return now - max(self.resend_at, self.last_progress, self.last_rx) >= wait_s

    def _check_complete(self) -> None:
        if self.next_n <= self.last_n or self.numbered or self.resend_r is not None:
            return
        if self.confirmed_n < self.last_n:
            if self.extra_tail >= 3:
                raise self._fail("printer never acknowledged the end of the job")
            self.extra_tail += 1
            del self._pre[len(self.seq):]
            self.seq.append("M400")
            self.last_n += 1
            return
        if not self.drain_probe and not self.probe_out:
            self.drain_probe = True
            self._probe()

    def _controls(self) -> None:
        with self.controls.lock:
            pause, cancel = self.controls.pause, self.controls.cancel
        if cancel and self.phase == "stream":
            self._start_cancel()
        elif pause and self.phase == "stream" and self.hold_from is None:
            start = max(self.next_n, self.sent_max + 1)
            self.hold_from = next((n for n in range(start, self.last_n + 1) if self.hold_ok(n)), self.last_n)
            log.info("pausing before line %d (the beam is off there)", self.hold_from)
        elif not pause and self.hold_from is not None:
            self.hold_from = None
            log.info("resuming at line %d", self.next_n)
        self.paused = self._held()

    def _start_cancel(self) -> None:
        k = self.sent_max + 1
        del self._pre[k:]
        self.seq[k:] = [f"M110 N{k}", *self.s.stop_sequence]
        self.last_n = len(self.seq) - 1
        self.floor_n, self.next_n = k, k
        self.phase, self.hold_from = "cancel", None
        self.resend_r, self.consecutive = None, 0
        self.drain_probe = False
        self.cancel_deadline = time.monotonic() + self.s.cancel_timeout_s
        log.info("cancel: held the job at line %d; sending %s", k, ", ".join(self.s.stop_sequence))

    def _report(self, now: float, *, force: bool = False) -> None:
        if self.on_progress and (force or now - self._last_report >= self.s.progress_interval_s):
            self._last_report = now
            self.on_progress(self)
