"""The Marlin/RepRap host line protocol as pure functions: framing, checksums, reply parsing, programs.

No I/O here. ``fabctl.transport.serial`` drives a port with these; the mock printer in ``hardware/`` has
its own, independent implementation of the firmware side (two sides catch a shared parsing bug).

Wire format (research/printer-comms.md §5.1): ``N<n> <command>*<cs>\\n`` where ``<cs>`` is the XOR of every
byte before ``*``, written in decimal. Replies (§5.4-5.6): ``ok`` (ADVANCED_OK: ``ok N<n> P<planner>
B<buffer>``), ``Resend: <n>`` / ``rs N<n>``, ``busy: processing``, ``wait``, ``echo:...``, ``Error:...``,
``start`` (a firmware reset), ``//action:<name>``.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from fabctl.errors import InputError

MAX_CMD_SIZE = 96
"""Marlin's ``MAX_CMD_SIZE``: a line of at most 95 characters before its newline; longer ones are cut."""


def checksum(data: bytes | str) -> int:
    """XOR of every byte of ``data`` (the framed line before ``*``)."""
    raw = data.encode("ascii") if isinstance(data, str) else data
    cs = 0
    for b in raw:
        cs ^= b
    return cs


def frame(n: int, command: str) -> bytes:
    """``N<n> <command>*<cs>\\n``, the numbered wire form of one command."""
    body = b"N%d %s" % (n, command.encode("ascii"))
    return body + b"*%d\n" % checksum(body)


def strip_comment(line: str) -> str:
    """The command part of a G-code line: everything before ``;``, stripped; '' for comment or blank lines."""
    return line.split(";", 1)[0].strip()


_LAYER_RE = re.compile(r"^\s*;\s*LAYER\s*:\s*(-?\d+)\s*$", re.IGNORECASE)


def layer_marker(line: str) -> int | None:
    """The ``n`` of a ``;LAYER:n`` comment line, else None."""
    m = _LAYER_RE.match(line)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------------- replies


class Kind(enum.Enum):
    ok = "ok"
    resend = "resend"
    busy = "busy"
    wait = "wait"
    error = "error"
    start = "start"
    echo = "echo"
    action = "action"
    info = "info"


@dataclass(frozen=True, slots=True)
class Reply:
    """One parsed line from the firmware.

    ``line``: the line number of an ADVANCED_OK ``ok N<n>`` or of a resend request. ``planner``/``buffer``:
    the ``P``/``B`` fields of ADVANCED_OK. ``report``: an ``ok`` that also carries a temperature report
    (``ok T:...``), i.e. the answer to ``M105``. ``message``: the text after the prefix.
    """

    kind: Kind
    text: str
    line: int | None = None
    planner: int | None = None
    buffer: int | None = None
    report: bool = False
    message: str = ""


_RESEND_NUM = re.compile(r"(?:N:?|:)?\s*(\d+)")


def _parse_ok(text: str) -> Reply:
    fields: dict[str, int] = {}
    report = False
    for tok in text.split()[1:]:
        key, digits = tok[:1], tok[1:]
        if key and key in "NPB" and digits.isascii() and digits.isdigit():  # _ADV_TOKEN, without a regex
            if key not in fields:
                fields[key] = int(digits)
        elif tok.startswith(("T:", "T0:", "B:", "C:", "X:")):
            report = True
    return Reply(Kind.ok, text, fields.get("N"), fields.get("P"), fields.get("B"), report)


_OK = Reply(Kind.ok, "ok")


def _parse_resend(text: str, prefix_len: int) -> Reply:
    m = _RESEND_NUM.search(text, prefix_len)
    return Reply(Kind.resend, text, line=int(m.group(1)) if m else None, message=text[prefix_len:].strip())


def parse_reply(raw: str) -> Reply:
    """Classify one line received from the firmware (prefixes are case-insensitive, as OctoPrint's)."""
    if raw == "ok":  # by far the most common line: one shared (immutable) reply
        return _OK
    text = raw.strip()
    low = text.lower()
    if low == "ok" or low.startswith("ok "):
        return _parse_ok(text)
    if low.startswith("resend"):
        return _parse_resend(text, len("resend"))
    if low.startswith("rs ") or low.startswith("rs:"):
        return _parse_resend(text, 2)
    if low.startswith(("busy:", "echo:busy:")):
        return Reply(Kind.busy, text, message=text.split(":", 1)[1].strip())
    if low == "wait":
        return Reply(Kind.wait, text)
    for prefix in ("error:", "!!", "fatal:"):
        if low.startswith(prefix):
            return Reply(Kind.error, text, message=text[len(prefix):].strip())
    if low == "start":
        return Reply(Kind.start, text)
    if low.startswith("//action:"):
        return Reply(Kind.action, text, message=text[len("//action:"):].strip())
    if low.startswith("echo:"):
        return Reply(Kind.echo, text, message=text[len("echo:"):].strip())
    return Reply(Kind.info, text, message=text)


class ErrorClass(enum.Enum):
    recoverable = "recoverable"  # a line-transfer error; the firmware asks for a resend
    ignored = "ignored"  # SD card noise: not about the job
    unknown_command = "unknown_command"
    fatal = "fatal"


_FATAL_MARKS = ("kill() called", "printer halted", "printer stopped due to errors", "fatal")
_RECOVERABLE_MARKS = (
    "no line number with checksum", "missing linenumber", "line number", "linenumber", "checksum",
    "format error", "expected line",
)
_SD_MARKS = (
    "volume.init", "openroot", "workdir", "error writing to file", "cannot open", "open failed", "cannot enter",
)


def classify_error(message: str) -> ErrorClass:
    """Recoverable vs fatal, by OctoPrint's substring table (research §5.5); a halt/kill always wins."""
    low = message.lower()
    if any(m in low for m in _FATAL_MARKS):
        return ErrorClass.fatal
    if any(m in low for m in _RECOVERABLE_MARKS):
        return ErrorClass.recoverable
    if any(m in low for m in _SD_MARKS):
        return ErrorClass.ignored
    if "unknown command" in low:
        return ErrorClass.unknown_command
    return ErrorClass.fatal


def is_halt_message(text: str) -> bool:
    """Un-prefixed halt notices (``Printer stopped due to errors...``, ``... kill() called!``)."""
    low = text.lower()
    return any(m in low for m in _FATAL_MARKS[:3])


# ------------------------------------------------------------------------------------------------ M115

_KEY_RE = re.compile(r"(?:^|\s)([A-Z][A-Z0-9_]*):")


def parse_m115(lines: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """``(fields, caps)`` from the lines answering ``M115``.

    ``FIRMWARE_NAME:Marlin 2.1 (date) SOURCE_CODE_URL:... PROTOCOL_VERSION:1.0 MACHINE_TYPE:... UUID:...``:
    a value runs to the next ``KEY:`` (values may hold spaces). ``Cap:NAME:0|1`` lines go to ``caps``.
    """
    fields: dict[str, str] = {}
    caps: dict[str, str] = {}
    for raw in lines:
        text = raw.strip()
        if text.lower().startswith("cap:"):
            name, _, value = text[4:].partition(":")
            caps[name.strip().upper()] = value.strip()
            continue
        if "FIRMWARE_NAME:" not in text and "MACHINE_TYPE:" not in text:
            continue
        keys = list(_KEY_RE.finditer(text))
        for i, m in enumerate(keys):
            end = keys[i + 1].start() if i + 1 < len(keys) else len(text)
            fields.setdefault(m.group(1), text[m.end():end].strip())
    return fields, caps


SERIAL_KEYS = ("SERIAL_NUMBER", "SERIAL", "SN", "UUID")


# --------------------------------------------------------------------------------------------- programs


@dataclass(frozen=True)
class Program:
    """A G-code job ready to stream: commands without comments, with their layer and laser state.

    ``layer_of[i]``: how many ``;LAYER:`` markers precede command ``i`` (0 before the first layer).
    ``laser_off_before[i]``: the beam is off when command ``i`` starts (``M5``/``M3 S0`` seen last), the
    points where the stream may be held by a pause.
    """

    name: str
    commands: tuple[str, ...]
    layer_of: tuple[int, ...]
    laser_off_before: tuple[bool, ...]
    layers_total: int
    source_lines: int
    skipped_lines: int
    sha256: str
    layer_numbers: tuple[int, ...] = field(default=())


_NUMBERED_RE = re.compile(r"^N\d", re.IGNORECASE)
_CODE_RE = re.compile(r"^([GMT])(\d+)", re.IGNORECASE)
_S_RE = re.compile(r"\bS(-?\d+(?:\.\d*)?)", re.IGNORECASE)


def _laser_after(cmd: str, on: bool) -> bool:
    m = _CODE_RE.match(cmd)
    if not m or m.group(1).upper() != "M":
        return on
    code = int(m.group(2))
    if code == 5:
        return False
    if code in (3, 4):
        s = _S_RE.search(cmd)
        return s is None or float(s.group(1)) > 0
    return on


def _check_command(cmd: str, where: str, max_line_bytes: int, n_max: int) -> None:
    if not cmd.isascii() or not cmd.isprintable():
        raise InputError(f"{where}: command {cmd!r} has non-ASCII or control characters")
    if "*" in cmd or _NUMBERED_RE.match(cmd):
        raise InputError(f"{where}: command {cmd!r} is already framed (N.. or *..)",
                         hint="job files hold plain commands; the transport numbers them")
    if cmd.startswith("@"):
        raise InputError(f"{where}: host command {cmd!r} is not supported in a job file")
    m = _CODE_RE.match(cmd)
    if m and m.group(1).upper() == "M" and int(m.group(2)) == 110:
        raise InputError(f"{where}: M110 (line numbering) in a job file would desynchronise the stream")
    size = len(frame(n_max, cmd)) - 1
    if size > max_line_bytes - 1:
        raise InputError(f"{where}: framed command is {size} characters; the firmware takes at most "
                         f"{max_line_bytes - 1} (MAX_CMD_SIZE {max_line_bytes}) and would cut it")


def parse_program(text: str, name: str = "<job>", *, max_line_bytes: int = MAX_CMD_SIZE) -> Program:
    """Strip comments and blank lines, count ``;LAYER:n`` markers first, validate every command."""
    raw_lines = text.splitlines()
    commands: list[str] = []
    layer_of: list[int] = []
    off_before: list[bool] = []
    numbers: list[int] = []
    layer, laser_on = 0, False
    for line in raw_lines:
        marker = layer_marker(line)
        if marker is not None:
            layer += 1
            numbers.append(marker)
        cmd = strip_comment(line)
        if cmd:
            commands.append(cmd)
            layer_of.append(layer)
            off_before.append(not laser_on)
            laser_on = _laser_after(cmd, laser_on)
    n_max = len(commands) + 8  # room for the M110 head and the M400 tail
    for i, cmd in enumerate(commands):
        _check_command(cmd, f"{name}: command {i + 1}", max_line_bytes, n_max)
    return Program(
        name=name, commands=tuple(commands), layer_of=tuple(layer_of), laser_off_before=tuple(off_before),
        layers_total=layer, source_lines=len(raw_lines), skipped_lines=len(raw_lines) - len(commands),
        sha256=hashlib.sha256(text.encode("ascii", "replace")).hexdigest(), layer_numbers=tuple(numbers),
    )


def load_program(path: Path, *, max_line_bytes: int = MAX_CMD_SIZE) -> Program:
    """Read a G-code job file (ASCII) into a ``Program``; ``InputError`` names the file and the problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"job file {path}: cannot read ({err.strerror})") from None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as err:
        raise InputError(f"job file {path}: not ASCII G-code (byte {err.start})") from None
    prog = parse_program(text, path.name, max_line_bytes=max_line_bytes)
    if not prog.commands:
        raise InputError(f"job file {path}: no commands (only comments or blank lines)")
    return prog
