"""The Marlin line protocol as data tables: checksums, framing, reply parsing, M115, programs."""

from __future__ import annotations

import pytest

from fabctl.errors import InputError
from fabctl.transport.gcode_line import (
    ErrorClass,
    Kind,
    checksum,
    classify_error,
    frame,
    is_halt_message,
    layer_marker,
    parse_m115,
    parse_program,
    parse_reply,
    strip_comment,
)


def test_checksum_by_hand() -> None:
    # XOR of the bytes before '*' (printer-comms.md §5.1):
    # 'N' 0x4E ^ '1' 0x31 = 0x7F; ^ ' ' 0x20 = 0x5F; ^ 'G' 0x47 = 0x18; ^ '2' 0x32 = 0x2A; ^ '1' 0x31 = 0x1B
    assert checksum("N1 G21") == 0x1B == 27
    # 'N' 0x4E ^ '0' 0x30 = 0x7E; ^ ' ' = 0x5E; ^ 'M' 0x4D = 0x13; ^ '1' = 0x22; ^ '1' = 0x13; ^ '0' = 0x23;
    # ^ ' ' = 0x03; ^ 'N' = 0x4D; ^ '0' = 0x7D
    assert checksum("N0 M110 N0") == 0x7D == 125


@pytest.mark.parametrize(("body", "cs"), [
    # real wire lines from OctoPrint 1.11.8 talking to its Virtual Printer (research §5)
    ("N0 M110 N0", 125),
    ("N1 G21", 27),
    ("N1 M115", 39),
    ("N2 G90", 18),
    ("N100 G1 X50.050 Y50.050 E0.0", 99),
    ("N2450 M400", 20),
    ("N2001 M400", 20),
    ("", 0),
])
def test_checksum_known_values(body: str, cs: int) -> None:
    assert checksum(body) == cs
    assert checksum(body.encode()) == cs


@pytest.mark.parametrize(("n", "cmd", "wire"), [
    (0, "M110 N0", b"N0 M110 N0*125\n"),
    (1, "G21", b"N1 G21*27\n"),
    (100, "G1 X50.050 Y50.050 E0.0", b"N100 G1 X50.050 Y50.050 E0.0*99\n"),
])
def test_frame(n: int, cmd: str, wire: bytes) -> None:
    assert frame(n, cmd) == wire


@pytest.mark.parametrize(("line", "cmd"), [
    ("G1 X1 Y2", "G1 X1 Y2"),
    ("  G1 X1 ; move  ", "G1 X1"),
    ("M117 Test ; foo", "M117 Test"),
    (";LAYER:3", ""),
    ("   ", ""),
    ("\tG28\r", "G28"),
])
def test_strip_comment(line: str, cmd: str) -> None:
    assert strip_comment(line) == cmd


@pytest.mark.parametrize(("line", "n"), [
    (";LAYER:0", 0), (";LAYER:12", 12), ("; LAYER : 7 ", 7), (";layer:4", 4),
    (";LAYER_COUNT:20", None), ("G1 Z1 ;LAYER:3", None), (";Z:0.05", None),
])
def test_layer_marker(line: str, n: int | None) -> None:
    assert layer_marker(line) == n


@pytest.mark.parametrize(("text", "kind", "line", "planner", "buffer", "report"), [
    ("ok", Kind.ok, None, None, None, False),
    ("OK", Kind.ok, None, None, None, False),
    ("ok N91 P15 B3", Kind.ok, 91, 15, 3, False),
    ("ok P15 B0", Kind.ok, None, 15, 0, False),
    ("ok N12 N13 P1x B", Kind.ok, 12, None, None, False),  # first N wins; malformed fields are ignored
    ("ok N-3 P+4 B3", Kind.ok, None, None, 3, False),
    ("ok T:21.3 /0.0 B:21.3 /0.0 @:64", Kind.ok, None, None, None, True),
    ("ok X:50.05 Y:50.0 Z:0.0 E:0.0 Count: A:5005", Kind.ok, None, None, None, True),
    ("okay", Kind.info, None, None, None, False),
    ("Resend: 5", Kind.resend, 5, None, None, False),
    ("Resend:5", Kind.resend, 5, None, None, False),
    ("resend: N:7", Kind.resend, 7, None, None, False),
    ("rs N5", Kind.resend, 5, None, None, False),
    ("rs 12", Kind.resend, 12, None, None, False),
    ("busy: processing", Kind.busy, None, None, None, False),
    ("echo:busy: paused for user", Kind.busy, None, None, None, False),
    ("wait", Kind.wait, None, None, None, False),
    ("Error:checksum mismatch, Last Line: 4", Kind.error, None, None, None, False),
    ("!! kill", Kind.error, None, None, None, False),
    ("fatal: heater failed", Kind.error, None, None, None, False),
    ("start", Kind.start, None, None, None, False),
    ("//action:pause", Kind.action, None, None, None, False),
    ('echo:Unknown command: "M999"', Kind.echo, None, None, None, False),
    ("echo:SD card ok", Kind.echo, None, None, None, False),
    ("T:25.0 /0.0 B:24.9 /0.0", Kind.info, None, None, None, False),
])
def test_parse_reply(text: str, kind: Kind, line, planner, buffer, report: bool) -> None:
    r = parse_reply(text + "\r\n")
    assert (r.kind, r.line, r.planner, r.buffer, r.report) == (kind, line, planner, buffer, report)
    assert parse_reply(text) == r  # the bare line (the fast path for "ok") parses the same


@pytest.mark.parametrize(("message", "cls"), [
    ("checksum mismatch, Last Line: 4", ErrorClass.recoverable),
    ("Line Number is not Last Line Number+1, Last Line: 9", ErrorClass.recoverable),
    ("No Checksum with line number, Last Line: 3", ErrorClass.recoverable),
    ("No Line Number with checksum, Last Line: 109", ErrorClass.recoverable),
    ("expected line 110 got 111", ErrorClass.recoverable),
    ("Printer halted. kill() called!", ErrorClass.fatal),
    ("Resin vat empty at layer 7", ErrorClass.fatal),
    ("MAXTEMP triggered", ErrorClass.fatal),
    ("RX BUF overflow, increase RX_BUFFER_SIZE: 140", ErrorClass.fatal),
    ("volume.init failed", ErrorClass.ignored),
    ("Unknown command: \"M999\"", ErrorClass.unknown_command),
])
def test_classify_error(message: str, cls: ErrorClass) -> None:
    assert classify_error(message) is cls


def test_halt_messages_without_prefix() -> None:
    assert is_halt_message("Printer stopped due to errors. Fix the error and use M999 to restart.")
    assert not is_halt_message("echo:SD card ok")


def test_parse_m115_marlin_and_caps() -> None:
    lines = [
        "FIRMWARE_NAME:Marlin 2.1.2.1 (Jun 13 2023 12:00:00) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
        "PROTOCOL_VERSION:1.0 MACHINE_TYPE:Moai 130 EXTRUDER_COUNT:0 UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff",
        "Cap:SERIAL_XON_XOFF:0", "Cap:EMERGENCY_PARSER:1", "ok",
    ]
    fields, caps = parse_m115(lines)
    assert fields["FIRMWARE_NAME"] == "Marlin 2.1.2.1 (Jun 13 2023 12:00:00)"
    assert fields["MACHINE_TYPE"] == "Moai 130"
    assert fields["UUID"] == "cede2a2f-41a2-4748-9b12-c55c62f367ff"
    assert fields["SOURCE_CODE_URL"] == "github.com/MarlinFirmware/Marlin"
    assert caps == {"SERIAL_XON_XOFF": "0", "EMERGENCY_PARSER": "1"}


def test_parse_m115_url_values_are_not_keys() -> None:
    fields, _ = parse_m115(["FIRMWARE_NAME:x SOURCE_CODE_URL:https://example.org/a MACHINE_TYPE:m SERIAL:S-1"])
    assert fields == {"FIRMWARE_NAME": "x", "SOURCE_CODE_URL": "https://example.org/a", "MACHINE_TYPE": "m",
                      "SERIAL": "S-1"}


JOB = """;FABCTL laser-gcode 1
G21
G90 ; absolute

M5
;LAYER:0
G1 Z0.05 F300
M3 S120
G1 X1 Y1 F6000
M5
;LAYER:1
G1 Z0.1 F300
M3 S0
G0 X2 Y2
M4 S80
G1 X3 Y3
M5
"""


def test_parse_program_counts_layers_and_strips_comments() -> None:
    p = parse_program(JOB, "job.gcode")
    assert p.commands == ("G21", "G90", "M5", "G1 Z0.05 F300", "M3 S120", "G1 X1 Y1 F6000", "M5",
                          "G1 Z0.1 F300", "M3 S0", "G0 X2 Y2", "M4 S80", "G1 X3 Y3", "M5")
    assert p.layers_total == 2 and p.layer_numbers == (0, 1)
    assert p.layer_of == (0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2)
    assert p.source_lines == 17 and p.skipped_lines == 4
    # the beam is off before: everything up to M3 S120, then after M5, M3 S0 keeps it off, M4 S80 turns it on
    assert p.laser_off_before == (True, True, True, True, True, False, False, True, True, True, True,
                                  False, False)


@pytest.mark.parametrize(("line", "match"), [
    ("N5 G1 X1", "already framed"),
    ("G1 X1*33", "already framed"),
    ("M110 N0", "M110"),
    ("@pause", "host command"),
    ("G1 X1 \u00b5", "non-ASCII"),
    ("G1 " + "X1.0000 " * 12, "at most 95"),
])
def test_parse_program_refuses(line: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse_program(f"G21\n{line}\n", "bad.gcode")
