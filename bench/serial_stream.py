"""Serial streaming throughput: fabctl's windowed sender vs ping-pong, through the mock printer on a pty.

The mock runs in its own process (``python -m mockprinter serve --pty``), as a printer would, so host and
firmware do not share a GIL. Every run streams the same program (``--lines`` short laser marks, no exposure
delay) and checks afterwards that the firmware executed exactly that many numbered lines.

    .venv/bin/python bench/serial_stream.py                      # 20,000 lines at 115200 baud and unthrottled
    .venv/bin/python bench/serial_stream.py --lines 100000 --baud 0 --mode window
    .venv/bin/python bench/serial_stream.py --lines 5000 --baud 115200 --baud 250000 --mode window

Prints lines/s per mode (the stream alone; "incl. load" adds reading and checking the job file), and for an
emulated baud rate the share of the line's capacity: baud/10 bytes/s over the mean framed line (with its
newline). Reference: printer-comms.md §4.2 (OctoPrint, ping-pong, 2,410-2,600 lines/s unthrottled; a
115200-baud line carries ~340 lines/s of 33.8-byte lines).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARDWARE = ROOT / "hardware"
sys.path.insert(0, str(ROOT))

from fabctl.transport.serial import SerialPrinter, StreamSettings  # noqa: E402

MODES = {  # name -> (sender flow, mock options)
    "window": ("chars", []),
    "window+advanced_ok": ("auto", ["--advanced-ok"]),
    "ping-pong": ("pingpong", []),
}


def program(lines: int) -> str:
    out = ["G21", "G90", "M3 S120"]
    for i in range(lines - 4):
        d = 0.05 if i % 2 else -0.05
        out.append(f"G1 X{50 + d:.3f} Y{50 - d:.3f} F60000")
    out.append("M5")
    return "\n".join(out) + "\n"


PIN: tuple[int, int] | None = None  # --pin: (host CPU, mock CPU)


def _pin_mock() -> None:
    if PIN is not None:
        os.sched_setaffinity(0, {PIN[1]})


def start_mock(baud: int, extra: list[str]) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(HARDWARE)}
    cmd = [sys.executable, "-m", "mockprinter", "serve", "--pty", "--baud", str(baud), "--exposure-s", "0",
           "--exposure-scale", "0", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, preexec_fn=_pin_mock)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("pty: "):
        proc.kill()
        raise SystemExit(f"mock printer did not start: {line!r}")
    return proc, line[5:]


_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process ``pid`` so far, all threads (/proc, clock-tick resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) * _TICK_S, int(fields[12]) * _TICK_S


def run(job: Path, lines: int, baud: int, mode: str) -> dict[str, float]:
    flow, extra = MODES[mode]
    proc, path = start_mock(baud, extra)
    try:
        p = SerialPrinter(path, baud=115200, settings=StreamSettings(flow=flow), banner_wait_s=0.1)
        p.connect()
        t0 = time.monotonic()
        p.send_job(job, start=False)
        t1 = time.monotonic()
        host0, mock0 = os.times(), cpu_s(proc.pid)
        p.start()
        t2 = time.monotonic()
        host1, mock1 = os.times(), cpu_s(proc.pid)
        stats = p.stats
        assert stats is not None and p.status().state.value == "done", p.status()
        p.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    summary = json.loads(out.strip().splitlines()[-1])
    expected = lines + 4  # handshake M110 + M115; the job between M110 N0 and M400
    assert summary["numbered"] == expected, (summary, expected)
    assert summary["overflow_bytes"] == 0
    bytes_per_line = stats.wire_bytes / stats.wire_lines
    lines_s = lines / (t2 - t1)
    capacity = baud / 10 / bytes_per_line if baud else 0.0
    return {"lines_s": lines_s, "seconds": t2 - t1, "lines_s_incl_load": lines / (t2 - t0),
            "host_cpu_us_line": 1e6 * (host1.user + host1.system - host0.user - host0.system) / lines,
            "host_sys_us_line": 1e6 * (host1.system - host0.system) / lines,
            "mock_cpu_us_line": 1e6 * (sum(mock1) - sum(mock0)) / lines,
            "mock_sys_us_line": 1e6 * (mock1[1] - mock0[1]) / lines,
            "wire_bytes_per_line": bytes_per_line, "max_inflight_lines": stats.max_inflight_lines,
            "capacity_lines_s": capacity, "capacity_pct": 100 * lines_s / capacity if capacity else 0.0}


def _median(runs: list[dict[str, float]], key: str) -> float:
    values = sorted(r[key] for r in runs)
    return values[len(values) // 2]


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=20000)
    ap.add_argument("--baud", type=int, action="append", help="emulated baud (0 = unthrottled); repeatable")
    ap.add_argument("--mode", choices=sorted(MODES), action="append")
    ap.add_argument("--repeat", type=int, default=1, help="runs per mode; the best and the median are shown")
    ap.add_argument("--pin", metavar="HOST,MOCK", help="pin the host and the mock to these CPUs (e.g. 0,1)")
    a = ap.parse_args()
    global PIN
    if a.pin:
        host_cpu, mock_cpu = (int(c) for c in a.pin.split(","))
        PIN = (host_cpu, mock_cpu)
        os.sched_setaffinity(0, {host_cpu})
    bauds = a.baud or [115200, 0]
    modes = a.mode or list(MODES)
    print(f"{a.lines:,} lines, {a.repeat} run(s) each; load average {_load()} at the start "
          f"({os.cpu_count()} CPUs)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "bench.gcode"
        job.write_text(program(a.lines), encoding="ascii")
        for baud in bauds:
            label = f"{baud} baud" if baud else "unthrottled"
            results = {}
            for m in modes:
                runs = sorted((run(job, a.lines, baud, m) for _ in range(a.repeat)), key=lambda r: r["lines_s"])
                results[m] = runs[-1]
                if a.repeat > 1:
                    print(f"{label:>12}  {m:<20} {a.repeat} runs, lines/s: "
                          + ", ".join(f"{r['lines_s']:,.0f}" for r in runs)
                          + f"; MEDIAN {_median(runs, 'lines_s'):,.0f}; CPU per line (median) host "
                          f"{_median(runs, 'host_cpu_us_line'):.1f} us, mock {_median(runs, 'mock_cpu_us_line'):.1f} us"
                          + (f"; {_median(runs, 'capacity_pct'):.1f}% of capacity" if baud else "")
                          + f"; load {_load()}; best:", flush=True)
            for m, r in results.items():
                cap = (f"  {r['capacity_pct']:.1f}% of {r['capacity_lines_s']:,.0f} lines/s capacity"
                       if baud else "")
                print(f"{label:>12}  {m:<20} {r['lines_s']:>9,.0f} lines/s  {r['seconds']:7.2f} s  "
                      f"({r['lines_s_incl_load']:,.0f} lines/s incl. load)  {r['wire_bytes_per_line']:.1f} B/line  "
                      f"max {r['max_inflight_lines']} lines in flight  CPU host {r['host_cpu_us_line']:.1f} "
                      f"(sys {r['host_sys_us_line']:.1f}) mock {r['mock_cpu_us_line']:.1f} "
                      f"(sys {r['mock_sys_us_line']:.1f}) us/line{cap}", flush=True)
            if "ping-pong" in results:
                for m in results:
                    if m != "ping-pong":
                        ratio = results[m]["lines_s"] / results["ping-pong"]["lines_s"]
                        print(f"{label:>12}  {m} / ping-pong = {ratio:.2f}x")


if __name__ == "__main__":
    main()
