"""A laser-SLA controller speaking Marlin's host protocol, as a clocked state machine (no I/O, no threads).

Bytes go in with ``feed``; ``step(now)`` moves them from the wire into a bounded receive buffer (at the
emulated baud rate; what does not fit is dropped, as a UART overrun would), parses complete lines into a
``bufsize``-slot command queue while there is room, and executes one command at a time; ``take_output``
returns what the firmware printed. Written from Marlin's ``queue.cpp`` behaviour, independently of fabctl:

* a line starting with ``N`` must be ``last+1`` (except a line holding ``M110``, whose own ``N`` is taken),
  must carry ``*<xor>`` and the checksum must match; otherwise ``Error:<why>, Last Line: <last>``, the
  receive buffer is flushed, ``Resend: <last+1>`` and (``ok_after_resend``) ``ok``;
* unlike some Marlin revisions, the rest of a line cut by a flush is skipped up to its newline, so a
  fragment is never run as a command;
* ``ok`` is sent when a command has been executed (``ok N<n> P<p> B<b>`` with ``advanced_ok``);
* ``executed`` logs every command that took effect, once (resent duplicates are refused by line number).

The machine: G0/G1 move (Z is the platform); ``M3 S<mW>``/``M4`` beam on at a power, ``M5`` or ``S0`` off;
a ``G1`` with X/Y while the beam is on exposes; the first exposure at a new Z starts a layer, which costs
``exposure_s * exposure_scale`` seconds.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from mockprinter.config import Fault, MockConfig

MAX_CMD_SIZE = 96
FIRMWARE = "fabctl-mock-marlin 1.0"
_WORD = re.compile(r"([A-Z])(-?\d*\.?\d+)")
_N_RE = re.compile(r"N(-?\d+)")
_M110_N = re.compile(r"M110\s*N(-?\d+)")
_LINE = re.compile(r"N([0-9]+)([^*]*)\*([0-9]+)")  # the usual well-formed numbered line (a fast path)
_NUM = r"(-?[0-9]*\.?[0-9]+)"  # a number as _WORD reads it
_MOVE = re.compile(rf"G([01])(?: X{_NUM})?(?: Y{_NUM})?(?: Z{_NUM})?(?: F{_NUM})?")  # the usual move (fast path)
_BNUM = rb"(-?[0-9]*\.?[0-9]+)"
# ``N<n> G0|G1 [X] [Y] [Z] [F]*<cs>`` exactly (one space after the number, none before ``*``): the usual line
# of a stream, read straight from the receive buffer's bytes; any other line goes the general way
_FAST_MOVE = re.compile(rb"N([0-9]+) (G([01])(?: X%s)?(?: Y%s)?(?: Z%s)?(?: F%s)?)\*([0-9]+)" % ((_BNUM,) * 4))
_M105 = frozenset({"M105", "m105"})  # cmd[:4] of a temperature request
HALT = "Error:Printer halted. kill() called!"


@dataclass
class SimStats:
    received_lines: int = 0
    rejected_lines: int = 0
    resend_requests: int = 0
    overflow_bytes: int = 0
    max_rx: int = 0
    oks: int = 0
    layers: int = 0


class _Job:
    """One parsed command: its line number (None if unnumbered), text, and when it ends once started."""

    __slots__ = ("n", "cmd", "end", "busy_at", "silent", "extra", "move")

    def __init__(self, n: int | None, cmd: str, move: tuple[bool, bytes | None, bytes | None, bytes | None,
                                                         bytes | None] | None = None) -> None:
        self.n, self.cmd = n, cmd
        self.end = self.busy_at = 0.0
        self.silent = False
        self.extra: tuple[str, ...] = ()  # lines printed before its ok
        self.move = move  # a G0/G1 read when the line arrived: (is G1, X, Y, Z, F), each number None if absent


def xor(data: str) -> int:
    """XOR of the line's bytes (a character that is not ASCII counts as ``?``)."""
    cs = 0
    for ch in data.encode("ascii", "replace"):
        cs ^= ch
    return cs


def xor_bytes(data: bytes | bytearray) -> int:
    """XOR of every byte of ``data`` (up to 128 bytes): fold the bytes as one integer, halving each time."""
    x = int.from_bytes(data, "little")
    size = len(data)
    if size > 32:
        if size > 64:
            x ^= x >> 512
        x ^= x >> 256
    x ^= x >> 128
    x ^= x >> 64
    x ^= x >> 32
    x ^= x >> 16
    x ^= x >> 8
    return x & 0xFF


def _words(cmd: str) -> dict[str, float]:
    """``{"G": 1.0, "X": 50.05, ...}``: every letter-number word (the last one wins when a letter repeats)."""
    return {k: float(v) for k, v in _WORD.findall(cmd.upper())}


class MarlinSim:
    """The firmware. ``executed``: ``(line number or None, command)`` of every command that took effect;
    ``accepted``: the raw numbered lines that passed the checks, in order."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self.cfg = config or MockConfig()
        self.executed: list[tuple[int | None, str]] = []
        self.accepted: list[str] = []
        self.stats = SimStats()
        self.disconnected = False
        self._out = bytearray()
        self._fired: set[tuple[str, int]] = set()
        self._kinds = frozenset(f.kind for f in self.cfg.faults)
        self.boots = 0
        self.power_on(0.0, banner=False)

    # ------------------------------------------------------------------------------------- lifecycle

    def power_on(self, now: float, *, banner: bool = True) -> None:
        """(Re)boot: every buffer and the line counter are lost; prints the ``start`` banner."""
        self.wire, self.rx = bytearray(), bytearray()
        self.queue: deque[_Job] = deque()
        self.current: _Job | None = None
        self.last_n = 0
        self.halted = self.skip_eol = False
        self.x = self.y = self.z = 0.0
        self.feed_mm_min = 600.0
        self.beam_on, self.power_mw = False, 0.0
        self.layer, self.exposed_z = -1, None
        self._credit_t = self._t = now
        self.boots += 1
        if banner:
            self._emit("start")
            self._emit(f"echo:{FIRMWARE} ({self.cfg.name})")

    def feed(self, data: bytes) -> None:
        self.wire += data

    def take_output(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def _emit(self, line: str) -> None:
        self._out += line.encode("ascii") + b"\n"

    def step(self, now: float) -> float:
        """Advance to ``now``; returns how long the caller may wait for input before stepping again."""
        if self.disconnected:
            return 0.05
        if not self.cfg.baud:  # no emulated line rate: what is on the wire is in the receive buffer now
            self._receive(now)
            self._parse(now)
            if self.queue or self.current is not None:
                self._execute(now)
            self._t = now
            return self._next_wake(now)
        # With an emulated line rate, catch up in 1 ms slices: bytes arrive, are parsed and executed in
        # the order they would have been, even when this thread was not scheduled for a while.
        t = self._t if self.wire else now
        while True:
            t = min(now, t + 0.001)
            self._receive(t)
            self._parse(t)
            self._execute(t)
            if t >= now or self.disconnected:
                break
        self._t = now
        return self._next_wake(now)

    def _next_wake(self, now: float) -> float:
        if self.current is None and not self.wire:  # the usual case: idle until bytes arrive
            return 0.0 if b"\n" in self.rx and len(self.queue) < self.cfg.bufsize and not self.halted else 0.05
        wake = 0.05
        if self.current is not None:
            wake = min(wake, self.current.end - now)
            if self.current.end - self.current.busy_at > 0:
                wake = min(wake, self.current.busy_at - now)
        if self.wire and self.cfg.baud:
            wake = min(wake, 0.001)
        if b"\n" in self.rx and len(self.queue) < self.cfg.bufsize and not self.halted:
            wake = 0.0
        return max(0.0, wake)

    # ------------------------------------------------------------------------------------- receiving

    def _receive(self, now: float) -> None:
        if not self.wire:
            self._credit_t = now
            return
        if not self.cfg.baud and len(self.wire) + len(self.rx) <= self.cfg.rx_buffer:  # all of it fits
            self.rx += self.wire
            self.wire.clear()
            self._credit_t = now
            if len(self.rx) > self.stats.max_rx:
                self.stats.max_rx = len(self.rx)
            return
        if self.cfg.baud:
            n = int((now - self._credit_t) * self.cfg.baud / 10)
            if n <= 0:
                return
            self._credit_t += n * 10 / self.cfg.baud
        else:
            n = len(self.wire)
        chunk, self.wire = self.wire[:n], self.wire[n:]
        if not self.wire:
            self._credit_t = now
        room = self.cfg.rx_buffer - len(self.rx)
        if len(chunk) > room:
            self.stats.overflow_bytes += len(chunk) - max(room, 0)
            if self.cfg.overflow == "error":
                self._emit(f"Error:RX BUF overflow, increase RX_BUFFER_SIZE: {len(self.rx) + len(chunk)}")
            chunk = chunk[:max(room, 0)]
        self.rx += chunk
        self.stats.max_rx = max(self.stats.max_rx, len(self.rx))

    def _parse(self, now: float) -> None:
        """Move complete lines from the receive buffer into the command queue while it has room.

        With no fault to inject, the usual line (``N<n> G0|G1 ...*<cs>``) is checked on its bytes, and when
        nothing is queued or running (and no ADVANCED_OK counts are due) it runs at once, as ``_execute``
        would run it next: it still takes its command slot until the end of this group of lines, and its
        ``ok`` is held until then, so the firmware answers exactly as the general path does.
        """
        bufsize = self.cfg.bufsize
        fast = not self._kinds
        run_now = fast and not self.cfg.advanced_ok
        taken = oks = 0  # command slots taken / oks held by moves run at once in this group
        queue, stats, accepted, executed, match = self.queue, self.stats, self.accepted, self.executed, \
            _FAST_MOVE.fullmatch
        while not self.halted and not self.disconnected and len(queue) + taken < bufsize:
            rx = self.rx  # a reset fault replaces it
            i = rx.find(b"\n")
            if i < 0:
                break
            m = match(rx, 0, i) if fast and i < MAX_CMD_SIZE and not self.skip_eol else None
            if m is not None:  # the checks of _line on the line's bytes (ASCII by the pattern), same answers
                n_b, cmd_b, g, x, y, z, f, cs_b = m.groups()
                cs = xor_bytes(rx[:i - len(cs_b) - 1])  # the bytes before "*"
                text = rx[:i].decode("ascii")
                del rx[:i + 1]
                stats.received_lines += 1
                n = int(n_b)
                if n != self.last_n + 1:
                    self._reject("Line Number is not Last Line Number+1")
                elif int(cs_b) != cs:
                    self._reject("checksum mismatch")
                elif not run_now or queue or self.current is not None:
                    self.last_n = n
                    accepted.append(text)
                    queue.append(_Job(n, cmd_b.decode("ascii"), (g == b"1", x, y, z, f)))
                else:
                    self.last_n = n
                    accepted.append(text)
                    taken += 1
                    duration = self._go(g == b"1", x and float(x), y and float(y), z and float(z), f and float(f))
                    if duration <= 0.0:  # done as soon as begun: logged now, its ok at the end of the group
                        executed.append((n, cmd_b.decode("ascii")))
                        oks += 1
                    else:  # it runs for a while: the job _execute would have started
                        job = self.current = _Job(n, cmd_b.decode("ascii"))
                        job.end = now + duration
                        job.busy_at = now + self.cfg.busy_interval_s
                continue
            raw = rx[:i if i < MAX_CMD_SIZE else MAX_CMD_SIZE - 1]  # longer lines are cut, as Marlin does
            del rx[:i + 1]
            if self.skip_eol:
                self.skip_eol = False
                continue
            text = raw.decode("ascii", "replace").strip(" \r\t\x00")
            if text:
                self.stats.received_lines += 1
                self._line(text, now)
        if oks:
            stats.oks += oks
            self._out += b"ok\n" * oks

    def _flush_rx(self) -> None:
        self.skip_eol = bool(self.rx) and not self.rx.endswith(b"\n")
        self.rx.clear()

    def _reject(self, why: str, *, fmt: str = "Resend: {n}", times: int = 1, message: bool = True) -> None:
        self.stats.rejected_lines += 1
        if message:
            self._emit(f"Error:{why}, Last Line: {self.last_n}")
        self._flush_rx()
        for _ in range(times):
            self.stats.resend_requests += 1
            self._emit(fmt.format(n=self.last_n + 1))
            if self.cfg.ok_after_resend:
                self._emit("ok")

    # ------------------------------------------------------------------------------------ line checks

    def _fault(self, kind: str, n: int) -> Fault | None:
        if kind not in self._kinds:
            return None
        for f in self.cfg.faults:
            if f.kind != kind:
                continue
            hit = n % f.at == 0 if kind == "corrupt_every" else f.at == n
            if hit and (kind, n) not in self._fired:
                self._fired.add((kind, n))
                return f
        return None

    def _arrival_faults(self, text: str, n: int, now: float) -> str | None:
        """Faults that act when line ``n`` arrives; returns the (maybe corrupted) text, None if consumed."""
        if self._fault("disconnect", n):
            self.disconnected = True
            return None
        if self._fault("hang", n):
            self.halted = True
            self.queue.clear()
            return None
        if self._fault("reset", n) or self._fault("silent_reset", n):
            self.power_on(now, banner=("reset", n) in self._fired)
            return None
        if self._fault("resend", n):
            self._reject("", fmt="rs N{n}", message=False)
            return None
        if self._fault("dup_resend", n):
            self._reject("Line Number is not Last Line Number+1", times=2)
            return None
        if self._fault("corrupt", n) or self._fault("corrupt_every", n):
            star = text.rfind("*")
            pos = (text.find(" ") + 1 + (star if star > 0 else len(text))) // 2
            text = text[:pos] + chr(ord(text[pos]) ^ 0x04) + text[pos + 1:]
        return text

    def _line(self, text: str, now: float) -> None:
        m = _LINE.fullmatch(text)
        if m is not None and not self._kinds and "M110" not in text:
            # ``N<n> <cmd>*<cs>`` with no fault to inject: the same checks as below, in fewer steps
            n = int(m.group(1))
            if n != self.last_n + 1:
                self._reject("Line Number is not Last Line Number+1")
            elif int(m.group(3)) != xor(text[:m.start(3) - 1]):
                self._reject("checksum mismatch")
            else:
                self.last_n = n
                self.accepted.append(text)
                self.queue.append(_Job(n, m.group(2).strip()))
            return
        if not text.startswith("N"):
            if "*" in text:
                self._reject("No Line Number with checksum")
                return
            self.queue.append(_Job(None, text.split(";", 1)[0].strip()))
            return
        m = _N_RE.match(text)
        n = int(m.group(1)) if m else 0
        m110 = _M110_N.search(text) if "M110" in text else None
        if self._kinds and not m110 and "M110" not in text and not text.startswith(f"N{n} M115"):
            text = self._arrival_faults(text, n, now)
            if text is None:
                return
        if m110:
            n = int(m110.group(1))
        elif n != self.last_n + 1:
            self._reject("Line Number is not Last Line Number+1")
            return
        star = text.rfind("*")
        if star < 0:
            self._reject("No Checksum with line number")
            return
        given = text[star + 1:].strip()
        if not given.isdigit() or int(given) != xor(text[:star]):
            self._reject("checksum mismatch")
            return
        self.last_n = n
        self.accepted.append(text)
        cmd = text[m.end():star].strip() if m else text[:star]
        self.queue.append(_Job(n, cmd))

    # -------------------------------------------------------------------------------------- executing

    def _execute(self, now: float) -> None:
        queue = self.queue
        plain = not self._kinds and not self.cfg.advanced_ok  # a move that takes no time just says "ok"
        while not self.halted and not self.disconnected:
            job = self.current
            if job is None:
                if not queue:
                    return
                job = queue.popleft()
                move = job.move
                if plain and move is not None:  # what _begin and _complete do for such a move
                    g1, x, y, z, f = move
                    duration = self._go(g1, x and float(x), y and float(y), z and float(z), f and float(f))
                    if duration <= 0.0 and not self.halted:
                        self.executed.append((job.n, job.cmd))
                        self.stats.oks += 1
                        self._out += b"ok\n"
                        continue
                else:
                    duration = self._begin(job, now)
                if self.halted:
                    return
                if duration <= 0.0:  # done as soon as begun
                    self._complete(job)
                    continue
                job.end = now + duration
                job.busy_at = now + self.cfg.busy_interval_s
                self.current = job
            if now < job.end:
                if now >= job.busy_at:
                    self._emit("busy: processing")
                    job.busy_at += self.cfg.busy_interval_s
                return
            self.current = None
            self._complete(job)

    def _complete(self, job: _Job) -> None:
        self.executed.append((job.n, job.cmd))
        for line in job.extra:
            self._emit(line)
        if job.silent or (self._kinds and job.n is not None and self._fault("drop_ok", job.n)):
            return
        self.stats.oks += 1
        if job.cmd[:4] in _M105:
            self._emit("ok T:25.0 /0.0 B:24.9 /0.0 @:0 B@:0")
        elif self.cfg.advanced_ok:
            free = max(0, self.cfg.bufsize - len(self.queue) - 1)
            num = f" N{job.n}" if job.n is not None else ""
            self._emit(f"ok{num} P15 B{free}")
        else:
            self._out += b"ok\n"

    def _halt(self, *messages: str) -> None:
        for m in messages:
            self._emit(m)
        self.halted = True
        self.queue.clear()
        self.current = None

    def _begin(self, job: _Job, now: float) -> float:
        """Start ``job``: change the machine state, return its duration in seconds."""
        kinds = self._kinds
        if kinds and job.n is not None and self._fault("halt", job.n):
            self._halt(HALT)
            return 0.0
        move = job.move
        if move is None and job.cmd[:1] == "G":
            m = _MOVE.fullmatch(job.cmd)
            if m is not None:
                g, x, y, z, f = m.groups()
                move = (g == "1", x, y, z, f)
        if move is not None:  # "G0/G1 [X] [Y] [Z] [F]": what _words and _move would do, without the dict
            g1, x, y, z, f = move
            duration = self._go(g1, x and float(x), y and float(y), z and float(z), f and float(f))
            busy = self._fault("busy", job.n) if kinds and job.n is not None else None
            return duration + (busy.arg if busy else 0.0)
        head = job.cmd.split(None, 1)[0].upper() if job.cmd else ""
        handler = _HANDLERS.get(head)
        if handler is None:
            job.extra += (f'echo:Unknown command: "{job.cmd}"',)
            duration = 0.0
        elif handler is MarlinSim._nothing:
            duration = 0.0
        else:
            duration = handler(self, job, _words(job.cmd))
        busy = self._fault("busy", job.n) if kinds and job.n is not None else None
        return duration + (busy.arg if busy else 0.0)

    # -------------------------------------------------------------------------------------- G-codes

    def _move(self, job: _Job, w: dict[str, float]) -> float:
        return self._go(job.cmd[:2].upper() == "G1", w.get("X"), w.get("Y"), w.get("Z"), w.get("F"))

    def _go(self, g1: bool, x: float | None, y: float | None, z: float | None, f: float | None) -> float:
        """A G0 (``g1`` False) or G1 move to the given coordinates (None: unchanged); returns its seconds."""
        if f is not None:
            self.feed_mm_min = f if f > 1e-6 else 1e-6
        exposing = g1 and self.beam_on and (x is not None or y is not None)
        if x is None:
            x = self.x
        if y is None:
            y = self.y
        if z is None:
            z = self.z
        scale = self.cfg.exposure_scale
        seconds = 0.0
        if scale:
            dist = ((x - self.x) ** 2 + (y - self.y) ** 2 + (z - self.z) ** 2) ** 0.5
            seconds = dist / (self.feed_mm_min / 60.0) * scale
        self.x, self.y, self.z = x, y, z
        if exposing and self.exposed_z != z:
            if self._fault("resin_out", self.layer + 1):
                self._halt(f"Error:Resin vat empty at layer {self.layer + 1}", HALT)
                return 0.0
            self.layer += 1
            self.stats.layers += 1
            self.exposed_z = self.z
            seconds += self.cfg.exposure_s * self.cfg.exposure_scale
        return seconds

    def _dwell(self, job: _Job, w: dict[str, float]) -> float:
        seconds = w.get("S", 0.0) + w.get("P", 0.0) / 1000.0
        return seconds * self.cfg.exposure_scale

    def _beam(self, job: _Job, w: dict[str, float]) -> float:
        if job.cmd.upper().startswith("M5"):
            self.beam_on = False
        else:
            self.power_mw = w.get("S", self.power_mw)
            self.beam_on = self.power_mw > 0
        return 0.0

    def _home(self, job: _Job, w: dict[str, float]) -> float:
        self.x = self.y = self.z = 0.0
        return 0.0

    def _m110(self, job: _Job, w: dict[str, float]) -> float:
        if "N" in w:
            self.last_n = int(w["N"])
        return 0.0

    def _m114(self, job: _Job, w: dict[str, float]) -> float:
        job.extra += (f"X:{self.x:.2f} Y:{self.y:.2f} Z:{self.z:.2f} E:0.00 Count X:0 Y:0 Z:0",)
        return 0.0

    def _m115(self, job: _Job, w: dict[str, float]) -> float:
        job.extra += (
            f"FIRMWARE_NAME:{FIRMWARE} (mock) SOURCE_CODE_URL:https://example.invalid/fabctl PROTOCOL_VERSION:1.0 "
            f"MACHINE_TYPE:{self.cfg.name} EXTRUDER_COUNT:0 SERIAL:{self.cfg.serial_number}",
            "Cap:EMERGENCY_PARSER:0", "Cap:AUTOREPORT_TEMP:0", "Cap:HOST_ACTION_COMMANDS:1",
        )
        return 0.0

    def _m112(self, job: _Job, w: dict[str, float]) -> float:
        self._halt(HALT)
        return 0.0

    def _nothing(self, job: _Job, w: dict[str, float]) -> float:
        return 0.0


_HANDLERS = {
    "G0": MarlinSim._move, "G1": MarlinSim._move, "G4": MarlinSim._dwell, "G28": MarlinSim._home,
    "G21": MarlinSim._nothing, "G90": MarlinSim._nothing, "G91": MarlinSim._nothing, "G92": MarlinSim._nothing,
    "M3": MarlinSim._beam, "M4": MarlinSim._beam, "M5": MarlinSim._beam, "M17": MarlinSim._nothing,
    "M18": MarlinSim._nothing, "M84": MarlinSim._nothing, "M105": MarlinSim._nothing, "M110": MarlinSim._m110,
    "M112": MarlinSim._m112, "M114": MarlinSim._m114, "M115": MarlinSim._m115, "M400": MarlinSim._nothing,
}
