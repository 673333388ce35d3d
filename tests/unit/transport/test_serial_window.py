"""The windowed sender's rules, driven by a scripted firmware (no port, no thread)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from fabctl.errors import TransportError
from fabctl.transport.serial_window import Controls, Streamer, StreamSettings

SETTINGS = StreamSettings(rx_buffer_bytes=127, response_timeout_s=0.05, max_timeouts=2, resend_timeout_s=0.05)
_N = re.compile(rb"^N(\d+) (.*)\*\d+$")


class ScriptedLink:
    """Answers every numbered line with ``reply(n, cmd)`` (default ``ok``); unnumbered M105 with ``ok T:``."""

    def __init__(self, reply: Callable[[int, str], list[str]] | None = None, *, probes: bool = True) -> None:
        self.reply = reply or (lambda n, cmd: ["ok"])
        self.probes = probes
        self.pending: list[str] = []
        self.sent: list[str] = []

    def write(self, data: bytes) -> None:
        for raw in data.splitlines():
            m = _N.match(raw)
            if m:
                n, cmd = int(m.group(1)), m.group(2).decode()
                self.sent.append(f"{n}:{cmd}")
                self.pending += self.reply(n, cmd)
            else:
                self.sent.append(raw.decode())
                if self.probes:
                    self.pending.append("ok T:25.0 /0.0")

    def read_lines(self, block: bool) -> list[str]:
        out, self.pending = self.pending, []
        return out


def streamer(link: ScriptedLink, commands: list[str], settings: StreamSettings = SETTINGS) -> Streamer:
    seq = ["M110 N0", *commands, "M400"]
    return Streamer(link, seq, settings, first=1, last=len(commands), hold_ok=lambda n: True,
                    controls=Controls(), ok_after_resend=True)


PROGRAM = [f"G1 X{i}.000 Y{i}.000" for i in range(40)]


def test_clean_run_confirms_everything() -> None:
    link = ScriptedLink()
    s = streamer(link, PROGRAM)
    assert s.run() == "done"
    assert s.stats.lines_confirmed == 40 and s.confirmed_n == 41
    assert [x for x in link.sent if x != "M105"] == ["0:M110 N0", *(f"{i + 1}:{c}" for i, c in enumerate(PROGRAM)),
                                                     "41:M400"]


def test_advanced_ok_acknowledges_by_line_number() -> None:
    link = ScriptedLink(lambda n, cmd: [] if n % 3 else [f"ok N{n} P15 B2"])  # only every third line answers
    s = streamer(link, PROGRAM)
    assert s.run() == "done"
    assert s.stats.advanced_ok and s.stats.max_inflight_lines <= 3


def test_wait_triggers_a_probe() -> None:
    link = ScriptedLink(lambda n, cmd: ["wait"] if n == 41 else ["ok"])  # the final ok is lost
    s = streamer(link, PROGRAM)
    assert s.run() == "done"
    assert s.stats.probes >= 2 and s.extra_tail == 1


def test_action_cancel_from_the_printer_runs_the_stop_sequence() -> None:
    link = ScriptedLink(lambda n, cmd: ["//action:cancel", "ok"] if n == 10 else ["ok"])
    s = streamer(link, PROGRAM)
    assert s.run() == "cancelled"
    tail = [x for x in link.sent if x != "M105"][-3:]
    assert tail[0].endswith(tail[0].split(":")[0]) and tail[0].split(":")[1].startswith("M110 N")
    assert [t.split(":")[1] for t in tail[1:]] == ["M5", "M400"]


@pytest.mark.parametrize(("reply", "match"), [
    (lambda n, c: ['echo:Unknown command: "G1"', "ok"] if n == 5 else ["ok"], "did not understand"),
    (lambda n, c: ["Error:MAXTEMP triggered", "ok"] if n == 5 else ["ok"], "printer error"),
    (lambda n, c: ["start"] if n == 5 else ["ok"], "reset during the job"),
    (lambda n, c: ["Resend:"] if n == 5 else ["ok"], "without a line number"),
    (lambda n, c: ["Resend: 90"] if n == 5 else ["ok"], "out of step"),
    (lambda n, c: ["Resend: 2"] if n == 12 else ["ok"], "already acknowledged"),
    (lambda n, c: ["Printer stopped due to errors. Fix the error and use M999 to restart."] if n == 5 else ["ok"],
     "halted"),
])
def test_fatal_replies(reply, match: str) -> None:
    s = streamer(ScriptedLink(reply), PROGRAM)
    with pytest.raises(TransportError, match=match):
        s.run()


class MiniFirmware:
    """Marlin's line check in a few lines: ``N`` must be last+1 (M110 excepted); lines in ``bad`` never pass."""

    def __init__(self, bad: set[int]) -> None:
        self.last, self.bad = 0, bad

    def __call__(self, n: int, cmd: str) -> list[str]:
        if cmd.startswith("M110"):
            self.last = n
            return ["ok"]
        if n != self.last + 1 or n in self.bad:
            return ["Error:checksum mismatch", f"Resend: {self.last + 1}", "ok"]
        self.last = n
        return ["ok"]


def test_a_line_the_printer_never_accepts_is_fatal() -> None:
    s = streamer(ScriptedLink(MiniFirmware({7})), PROGRAM)
    with pytest.raises(TransportError, match="keeps requesting line 7"):
        s.run()


def test_a_silent_printer_is_fatal_after_the_probes() -> None:
    s = streamer(ScriptedLink(lambda n, c: [] if n >= 5 else ["ok"], probes=False), PROGRAM)
    with pytest.raises(TransportError, match="no response from the printer"):
        s.run()
    assert s.stats.probes == 1 and s.stats.timeouts >= 1


def test_unknown_commands_can_be_tolerated() -> None:
    link = ScriptedLink(lambda n, c: ['echo:Unknown command: "G1"', "ok"] if n == 5 else ["ok"])
    s = streamer(link, PROGRAM, StreamSettings(strict_unknown_commands=False, response_timeout_s=0.05))
    assert s.run() == "done"


def test_a_resend_older_than_the_history_is_fatal() -> None:
    asked = []

    def reply(n: int, cmd: str) -> list[str]:
        if n == 30 and not asked:
            asked.append(n)
            return ["Resend: 3"]
        return [] if 3 <= n < 30 else ["ok"]  # lines 3..29 never acknowledged, so 3 is not confirmed

    s = streamer(ScriptedLink(reply), PROGRAM, StreamSettings(history_lines=8, rx_buffer_bytes=4096))
    with pytest.raises(TransportError, match="history holds"):
        s.run()


def test_repeated_resend_requests_are_ignored_once_acted_on() -> None:
    seen: dict[int, int] = {}

    def reply(n: int, cmd: str) -> list[str]:
        seen[n] = seen.get(n, 0) + 1
        if n == 9 and seen[n] == 1:
            return ["Error:checksum mismatch", "Resend: 9", "ok", "Resend: 9", "ok"]
        return ["ok"]

    link = ScriptedLink(reply)
    s = streamer(link, PROGRAM)
    assert s.run() == "done"
    assert s.stats.resends == 1 and s.stats.ignored_resends == 1 and seen[9] == 2
