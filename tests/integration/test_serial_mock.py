"""fabctl's serial streamer against the mock Marlin laser printer, over a pty, TCP and the mockprinter:// URL.

The mock logs every command it executed; each test compares that log with the program, line for line.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from fabctl.errors import TransportError
from fabctl.transport.base import JobState, Printer, PrinterStatus
from fabctl.transport.gcode_line import parse_program
from fabctl.transport.serial import StreamSettings, write_dry_run
from tests.integration.serial_fixtures import (
    TRANSPORTS,
    job_log,
    laser_program,
    mock_endpoint,
    printer,
    write_program,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def job(tmp_path: Path) -> tuple[Path, list[str]]:
    return write_program(tmp_path / "job.gcode", layers=20, marks=12)


def stream(url: str, job_file: Path, **kw) -> tuple[object, PrinterStatus]:
    p = printer(url, **kw)
    try:
        p.connect()
        p.send_job(job_file)
        return p, p.status()
    finally:
        p.close()


# ------------------------------------------------------------------------------------------- clean runs


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_clean_stream_runs_every_line_once_in_order(kind: str, job, tmp_path: Path) -> None:
    path, commands = job
    with mock_endpoint(kind) as ep:
        p, st = stream(ep.url, path)
        sim = ep.sim
    assert isinstance(p, Printer)
    assert job_log(sim) == commands + ["M400"]
    assert st.state is JobState.done and st.progress == 1.0
    assert st.layers_total == 20 and st.layer == 20
    assert p.identity.model == sim.cfg.name and p.identity.serial_number == "MOCK-0001"
    assert "fabctl-mock-marlin" in p.identity.firmware
    s = p.stats
    assert s.lines_total == len(commands) == s.lines_confirmed
    assert s.resends == 0 and sim.stats.overflow_bytes == 0
    assert 1 < s.max_inflight_lines and s.max_inflight_bytes <= 127
    # the dry run's bytes are exactly what the firmware accepted for the job
    out = tmp_path / "wire.txt"
    write_dry_run(path, out)
    i = max(i for i, raw in enumerate(sim.accepted) if raw.startswith("N0 M110 N0"))
    assert out.read_text().splitlines() == sim.accepted[i:]


def test_progress_is_reported_by_lines_and_layers(job) -> None:
    path, commands = job
    seen: list[PrinterStatus] = []
    with mock_endpoint("url") as ep:
        stream(ep.url, path, on_status=seen.append)
    layers = [s.layer for s in seen if s.state is JobState.printing]
    assert layers == sorted(layers) and len(set(layers)) > 5
    assert seen[-1].state is JobState.done
    assert all(0.0 <= s.progress <= 1.0 for s in seen)


# ---------------------------------------------------------------------------------- recoverable faults

RECOVERABLE = {
    "corrupt": "corrupt@37,corrupt@120",
    "drop_ok": "drop_ok@50",
    "drop_last_ok": "drop_ok@{last}",
    "resend": "resend@60",
    "dup_resend": "dup_resend@70",
    "busy": "busy@80:0.8",
    "mixed": "corrupt@15,dup_resend@16,drop_ok@30,resend@31,corrupt_every@23",
}


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("fault", sorted(RECOVERABLE))
def test_recoverable_fault_keeps_the_program_exact(kind: str, fault: str, job) -> None:
    path, commands = job
    spec = RECOVERABLE[fault].format(last=len(commands) + 1)
    settings = StreamSettings(response_timeout_s=0.3, max_timeouts=2, resend_timeout_s=0.2)
    with mock_endpoint(kind, faults=spec, busy_interval=0.1) as ep:
        p, st = stream(ep.url, path, settings=settings)
        sim = ep.sim
    assert job_log(sim) == commands + ["M400"] or job_log(sim) == commands + ["M400", "M400"]
    assert st.state is JobState.done
    if fault in ("corrupt", "resend", "dup_resend", "mixed"):
        assert p.stats.resends >= 1
    if fault == "dup_resend":
        assert p.stats.ignored_resends >= 1
    if fault == "busy":
        assert p.stats.busy >= 5 and p.stats.timeouts == 0  # 0.8 s of busy > 2 x 0.3 s without it
    if fault.startswith("drop"):
        assert p.stats.probes >= 1


@pytest.mark.parametrize("advanced_ok", [False, True])
@pytest.mark.parametrize("ok_after_resend", [True, False])
def test_resend_variants_of_marlin(advanced_ok: bool, ok_after_resend: bool, job) -> None:
    path, commands = job
    with mock_endpoint("url", faults="corrupt@20,resend@40,dup_resend@41,drop_ok@90,corrupt_every@31",
                       advanced_ok=advanced_ok, ok_after_resend=ok_after_resend) as ep:
        p, st = stream(ep.url, path)
        sim = ep.sim
    assert p.ok_after_resend is ok_after_resend  # learned at connect
    assert job_log(sim)[:len(commands)] == commands and set(job_log(sim)[len(commands):]) == {"M400"}
    assert st.state is JobState.done
    assert p.stats.advanced_ok is advanced_ok
    if advanced_ok:
        assert p.stats.max_inflight_lines <= 4  # capped by the B field (4 command slots)


# ------------------------------------------------------------------------------------- receive buffer


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_small_buffer_is_kept_full_but_never_overflows(kind: str, tmp_path: Path) -> None:
    path, commands = write_program(tmp_path / "job.gcode", layers=15, marks=16)
    with mock_endpoint(kind, rx_buffer=64, baud=115200, exposure_scale=0.002) as ep:
        p, st = stream(ep.url, path, rx_buffer_bytes=64)
        sim = ep.sim
    assert job_log(sim) == commands + ["M400"]
    assert sim.stats.overflow_bytes == 0 and sim.stats.max_rx <= 64
    assert p.stats.max_inflight_bytes <= 64
    assert p.stats.max_inflight_lines >= 2  # pipelined, not ping-pong


def test_pingpong_never_has_two_lines_in_flight(job) -> None:
    path, commands = job
    settings = StreamSettings(flow="pingpong", response_timeout_s=0.3)
    with mock_endpoint("url") as ep:
        p, _ = stream(ep.url, path, settings=settings)
        assert job_log(ep.sim) == commands + ["M400"]
    assert p.stats.max_inflight_lines == 1


def test_an_overfilling_sender_is_caught_by_the_mock(job) -> None:
    """A host that believes the buffer is bigger than it is corrupts lines; it never runs one twice."""
    path, commands = job
    with mock_endpoint("url", rx_buffer=40, faults="busy@30:0.3", busy_interval=0.05) as ep:
        with pytest.raises(TransportError):
            stream(ep.url, path, rx_buffer_bytes=127)
        sim = ep.sim
    assert sim.stats.overflow_bytes > 0
    log = job_log(sim)
    assert log == commands[:len(log)]


def test_overflow_can_be_a_firmware_error(job) -> None:
    path, _ = job
    with mock_endpoint("url", rx_buffer=40, overflow="error", faults="busy@30:0.3") as ep:
        p = printer(ep.url, rx_buffer_bytes=127)
        p.connect()
        with pytest.raises(TransportError, match="RX BUF overflow"):
            p.send_job(path)
        assert p.status().state is JobState.failed
        p.close()


# ---------------------------------------------------------------------------------------- fatal faults

FATAL = {
    "disconnect": ("disconnect@100", "lost the printer"),
    "halt": ("halt@100", "kill\\(\\) called"),
    "reset": ("reset@100", "reset during the job"),
    "silent_reset": ("silent_reset@100", "already acknowledged"),
    "hang": ("hang@100", "no response from the printer"),
}


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("fault", sorted(FATAL))
def test_fatal_fault_fails_the_job_and_the_log_stops(kind: str, fault: str, job) -> None:
    path, commands = job
    spec, message = FATAL[fault]
    with mock_endpoint(kind, faults=spec) as ep:
        p = printer(ep.url)
        p.connect()
        with pytest.raises(TransportError, match=message):
            p.send_job(path)
        st = p.status()
        p.close()
        log = job_log(ep.sim)
    assert st.state is JobState.failed
    assert log == commands[:len(log)]  # a prefix: nothing out of order, nothing twice
    assert len(log) <= 99  # line N carries command N (line 0 is M110): line 100 and later never ran
    if fault == "halt":
        assert len(log) == 99  # everything before line 100 ran
    assert int(st.extra["lines_sent"]) <= len(log)


@pytest.mark.parametrize("kind", ["pty", "url"])
def test_resin_running_out_halts_the_job(kind: str, job) -> None:
    path, commands = job
    with mock_endpoint(kind, faults="resin_out@7") as ep:
        p = printer(ep.url)
        p.connect()
        with pytest.raises(TransportError, match="Resin vat empty at layer 7"):
            p.send_job(path)
        assert p.status().state is JobState.failed
        p.close()
        sim = ep.sim
    log = job_log(sim)
    assert log == commands[:len(log)]
    assert sim.halted and sim.stats.layers == 7  # layers 0..6 were exposed
    prog = parse_program(path.read_text())
    first_mark = next(i for i, c in enumerate(prog.commands) if prog.layer_of[i] == 8 and c.startswith("G1 X"))
    assert len(log) == first_mark  # everything up to layer 7's first exposure ran, nothing after


def test_no_printer_on_the_port() -> None:
    import os
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        p = printer(os.ttyname(slave), connect_timeout_s=0.6)
        with pytest.raises(TransportError, match="no answer"):
            p.connect()
    finally:
        os.close(master)
        os.close(slave)


# ---------------------------------------------------------------------------------- pause and cancel


def test_pause_holds_at_a_beam_off_point_and_resumes(job) -> None:
    path, commands = job
    with mock_endpoint("url") as ep:
        p = printer(ep.url)
        seen: dict[str, object] = {}

        def on_status(st: PrinterStatus) -> None:
            if "paused" not in seen and int(st.extra.get("lines_sent", "0")) >= 60:
                p.pause()
                seen["paused"] = True
            elif st.state is JobState.paused and p.streamer.numbered == 0 and "beam" not in seen:
                seen["beam"] = ep.sim.beam_on
                seen["at"] = len(job_log(ep.sim))
                p.resume()

        p.on_status = on_status
        p.connect()
        p.send_job(path)
        log = job_log(ep.sim)
        p.close()
    assert seen.get("beam") is False
    assert commands[seen["at"] - 1] == "M5" or commands[seen["at"]].startswith(("G1 Z", "M3"))
    assert log == commands + ["M400"]
    assert p.status().state is JobState.done


def test_cancel_stops_feeding_and_turns_the_beam_off(job) -> None:
    path, commands = job
    with mock_endpoint("url") as ep:
        p = printer(ep.url)

        def on_status(st: PrinterStatus) -> None:
            if int(st.extra.get("lines_sent", "0")) >= 100:
                p.cancel()

        p.on_status = on_status
        p.connect()
        p.send_job(path)
        sim = ep.sim
        p.close()
    st = p.status()
    assert st.state is JobState.cancelled
    log = job_log(sim)
    k = len(log) - 3
    assert log[:k] == commands[:k] and k < len(commands)
    assert log[k:] == [f"M110 N{k + 1}", "M5", "M400"]
    assert sim.beam_on is False
    assert int(st.extra["lines_sent"]) == k


def test_cancel_from_another_thread(job) -> None:
    path, _ = job
    with mock_endpoint("url", exposure_scale=0.02) as ep:
        p = printer(ep.url)
        p.connect()
        timer = threading.Timer(0.2, p.cancel)
        timer.start()
        try:
            p.send_job(path)
        finally:
            timer.cancel()
            p.close()
        assert p.status().state is JobState.cancelled
        assert ep.sim.beam_on is False


def test_ctrl_c_sends_the_stop_sequence_before_giving_up(job) -> None:
    path, commands = job
    with mock_endpoint("pty") as ep:
        p = printer(ep.url)
        fired: list[bool] = []

        def on_status(st: PrinterStatus) -> None:
            if not fired and int(st.extra.get("lines_sent", "0")) >= 80:
                fired.append(True)
                raise KeyboardInterrupt

        p.on_status = on_status
        p.connect()
        with pytest.raises(KeyboardInterrupt):
            p.send_job(path)
        p.close()
        sim = ep.sim
    assert p.status().state is JobState.cancelled
    log = job_log(sim)
    assert log[-2:] == ["M5", "M400"] and log[-3].startswith("M110 N")
    assert log[:-3] == commands[:len(log) - 3]
    assert sim.beam_on is False


# ------------------------------------------------------------------------- the fault matrix, combined

SEED = 20261125
RECOVERABLE_KINDS = ("corrupt", "corrupt_every", "drop_ok", "resend", "dup_resend", "busy")
FATAL_KINDS = ("disconnect", "halt", "hang", "reset", "silent_reset", "resin_out")


def _combinations(count: int, commands: int, layers: int) -> list[str]:
    """``count`` fault specs drawn with a fixed seed: 1-4 faults each, at random lines, some fatal."""
    rng = random.Random(SEED)
    out: list[str] = []
    for _ in range(count):
        items = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(RECOVERABLE_KINDS * 2 + FATAL_KINDS)  # recoverable drawn twice as often
            if kind == "resin_out":
                at = rng.randrange(layers)
            elif kind == "corrupt_every":
                at = rng.randint(7, 40)
            else:
                at = rng.randint(1, commands)
            items.append(f"{kind}@{at}" + (f":{rng.uniform(0.05, 0.4):.2f}" if kind == "busy" else ""))
        out.append(",".join(items))
    return out


_LAYERS, _MARKS = 6, 8
_COMMANDS = len(parse_program(laser_program(_LAYERS, _MARKS)).commands)


@pytest.mark.parametrize("spec", _combinations(20, _COMMANDS, _LAYERS))
def test_random_fault_combinations_never_report_a_false_done(spec: str, tmp_path: Path) -> None:
    """Done means the firmware ran the job line for line; otherwise the job failed, with the reason."""
    path, commands = write_program(tmp_path / "job.gcode", layers=_LAYERS, marks=_MARKS)
    fatal = any(item.split("@")[0] in FATAL_KINDS for item in spec.split(","))
    settings = StreamSettings(response_timeout_s=0.2, max_timeouts=2, resend_timeout_s=0.1,
                              cancel_timeout_s=2.0)
    error: TransportError | None = None
    with mock_endpoint("url", faults=spec, busy_interval=0.05) as ep:
        p = printer(ep.url, settings=settings)
        p.connect()
        try:
            p.send_job(path)
        except TransportError as err:
            error = err
        st = p.status()
        p.close()
        log = job_log(ep.sim)
    if st.state is JobState.done:
        assert error is None
        # the job line for line, then its closing M400 (repeated if the host had to ask for the end again)
        assert log[:len(commands)] == commands
        assert 1 <= len(log) - len(commands) <= 4 and set(log[len(commands):]) == {"M400"}
    else:
        assert error is not None and error.message, spec
        assert st.state is JobState.failed and st.message == error.message
        assert log == commands[:len(log)]  # a prefix: nothing out of order, nothing twice
        assert int(st.extra["lines_sent"]) <= len(log)  # never more progress than the printer made
    # every fatal fault drawn is reached (its line is in the program), so it must fail the job; a mix of
    # recoverable faults alone must not
    assert st.state is (JobState.failed if fatal else JobState.done), (spec, st)


# ------------------------------------------------------------------------- fast paths = general paths


def test_plain_oks_are_counted_without_parsing_and_anything_else_is_parsed() -> None:
    """``PortLink.read_replies`` over a real pty: a run of plain ``ok`` lines comes back as a count."""
    import os
    import tty

    from fabctl.transport.serial_link import PortLink

    master, slave = os.openpty()
    tty.setraw(slave)
    link = PortLink(os.ttyname(slave), 115200, poll_s=0.5)
    try:
        os.write(master, b"ok\nok\nok\no")  # three whole oks and the start of a fourth
        assert link.read_replies(True) == (3, [])
        os.write(master, b"k\nok T:25.0 /0.0\nok\n")  # a report among them: every line, in order
        assert link.read_replies(True) == (0, ["ok", "ok T:25.0 /0.0", "ok"])
        os.write(master, b"ok\r\nResend: 7\n")
        assert link.read_replies(True) == (0, ["ok", "Resend: 7"])
        assert link.read_replies(False) == (0, [])
    finally:
        link.close()
        os.close(master)
        os.close(slave)


_MOVES = ["G1 X50.050 Y49.950 F60000", "G0 X1 Y2", "G1 Z0.0500 F300", "G1", "G0 Z-.5", "G1 X5 X6",
          "g1 x3 y4", "G1X7Y8", "G1 Y3 X4", "G1 X1.5.5", "G01 X2", "G1 X-0.25 Y+1", "G1 F0 X9", "G0 X3 Z2 F5 Y1"]


@pytest.mark.parametrize("scale", [0.0, 0.5])
def test_mock_fast_move_path_matches_the_general_one(scale: float) -> None:
    """The mock's ``G0/G1`` fast path leaves the machine exactly as the word-by-word path does."""
    from mockprinter.config import MockConfig
    from mockprinter.marlin import MarlinSim, _Job, _words

    rng = random.Random(SEED)
    fast, slow = (MarlinSim(MockConfig(exposure_s=1.0, exposure_scale=scale)) for _ in range(2))
    for sim in (fast, slow):
        sim.beam_on = True
    for i in range(400):
        cmd = rng.choice(_MOVES) if i % 3 else f"G1 X{rng.uniform(-9, 9):.3f} Z{rng.randint(0, 3) * 0.05:.2f}"
        d_fast = fast._begin(_Job(i + 1, cmd), 0.0)
        job = _Job(i + 1, cmd)
        head = cmd.split(None, 1)[0].upper()
        d_slow = slow._move(job, _words(cmd)) if head in ("G0", "G1") else 0.0
        state = lambda s: (s.x, s.y, s.z, s.feed_mm_min, s.layer, s.exposed_z, s.stats.layers)  # noqa: E731
        assert (d_fast, *state(fast)) == (d_slow, *state(slow)), cmd


def test_mock_fast_line_path_matches_the_checked_one() -> None:
    """Numbered lines with no fault configured take a shorter path; a fault that never fires forces the
    line-by-line checks. Both firmwares must accept, reject and answer alike, byte for byte."""
    from mockprinter.config import MockConfig, parse_faults
    from mockprinter.marlin import MarlinSim

    from fabctl.transport.gcode_line import frame

    rng = random.Random(SEED)
    chunks: list[bytes] = [frame(0, "M110 N0")]
    n = 1
    for _ in range(300):
        lines = []
        for _ in range(rng.randint(1, 4)):
            wire = frame(n, rng.choice(["G1 X1.000 Y2.000", "M5", "M3 S120", "G4 P0", "M105", "M114", "G28"]))
            kind = rng.random()
            if kind < 0.05:
                wire = wire.replace(b"*", b"*1", 1)  # wrong checksum
            elif kind < 0.08:
                wire = wire.replace(b"N%d " % n, b"N%d " % (n + 2), 1)  # wrong line number
            elif kind < 0.1:
                wire = wire[:-1] + b" \r\n"  # trailing white space
            else:
                n += 1
            lines.append(wire)
        chunks.append(b"".join(lines))
    sims = [MarlinSim(MockConfig(exposure_s=0, exposure_scale=0)),
            MarlinSim(MockConfig(exposure_s=0, exposure_scale=0, faults=parse_faults("corrupt@999999")))]
    outputs: list[list[bytes]] = [[], []]
    for t, chunk in enumerate(chunks):
        for sim, out in zip(sims, outputs, strict=True):
            sim.feed(chunk)
            sim.step(1.0 + t * 1e-3)
            out.append(sim.take_output())
    assert outputs[0] == outputs[1]
    assert sims[0].executed == sims[1].executed and sims[0].accepted == sims[1].accepted
    assert sims[0].stats == sims[1].stats and sims[0].stats.rejected_lines > 10


@pytest.mark.parametrize(("scale", "advanced_ok"), [(0.0, True), (0.002, False), (0.002, True)])
def test_mock_fast_line_path_matches_the_checked_one_with_timed_moves(scale: float, advanced_ok: bool) -> None:
    """The same comparison with moves that take time (a move run as it arrives becomes the running job)
    and with ADVANCED_OK counts (moves then always wait in the queue), driven like a host that resends
    from the line the firmware asks for: outputs, logs and machine state agree step by step."""
    import re

    from mockprinter.config import MockConfig, parse_faults
    from mockprinter.marlin import MarlinSim

    from fabctl.transport.gcode_line import frame

    rng = random.Random(SEED + 1)
    base = MockConfig(exposure_s=1.0, exposure_scale=scale, advanced_ok=advanced_ok, rx_buffer=1024)
    sims = [MarlinSim(base), MarlinSim(MockConfig(**{**base.__dict__, "faults": parse_faults("corrupt@999999")}))]
    program = ["M110 N0"] + [rng.choice([f"G1 X{rng.uniform(0, 9):.3f} Y{rng.uniform(0, 9):.3f} F6000",
                                         "M3 S120", "M5", f"G1 Z{rng.randint(0, 3) * 0.05:.2f}", "G0 X1 Y1",
                                         "M105", "G4 P1"]) for _ in range(400)]
    n, t, bad = 0, 1.0, 0
    for _ in range(3000):
        if n == 0 or n < len(program) and rng.random() < 0.7:
            lines = []
            for _ in range(1 if n == 0 else rng.randint(1, 4)):  # M110 alone: it is a barrier
                if n >= len(program):
                    break
                wire = frame(n, program[n])
                if n and rng.random() < 0.06:
                    wire = wire.replace(b"*", b"*1", 1)  # a wrong checksum
                    bad += 1
                lines.append(wire)
                n += 1
            for sim in sims:
                sim.feed(b"".join(lines))
        t += 1e-3
        outs = []
        for sim in sims:
            sim.step(t)
            outs.append(sim.take_output())
        assert outs[0] == outs[1]
        resend = re.findall(rb"Resend: (\d+)", outs[0])
        if resend:
            n = int(resend[-1])
    state = lambda s: (s.x, s.y, s.z, s.feed_mm_min, s.layer, s.beam_on, s.last_n, len(s.queue))  # noqa: E731
    assert state(sims[0]) == state(sims[1])
    assert sims[0].executed == sims[1].executed and sims[0].accepted == sims[1].accepted
    assert sims[0].stats == sims[1].stats and sims[0].stats.rejected_lines > 5 and bad > 5
    assert [c for _, c in sims[0].executed] == program  # the whole program ran, once, in order


def test_mock_xor_of_bytes_matches_the_per_character_checksum() -> None:
    """``xor_bytes`` (the fold used on the fast path) against the per-character XOR, every length to 128."""
    from mockprinter.marlin import xor, xor_bytes

    rng = random.Random(SEED)
    for size in range(129):
        data = bytes(rng.randrange(32, 127) for _ in range(size))
        assert xor_bytes(data) == xor_bytes(bytearray(data)) == xor(data.decode("ascii")), size
