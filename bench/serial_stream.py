"""Serial streaming throughput: fabctl's windowed sender vs ping-pong, through the mock printer on a pty.

The mock runs in its own process (``python -m mockprinter serve --pty``), as a printer would, so host and
firmware do not share a GIL. Every run streams the same program (``--lines`` short laser marks, no exposure
delay) and checks afterwards that the firmware executed exactly that many numbered lines.

    .venv/bin/python bench/serial_stream.py                      # 20,000 lines at 115200 baud and unthrottled
    .venv/bin/python bench/serial_stream.py --lines 5000 --baud 115200

Prints lines/s per mode and the ratio windowed / ping-pong. Reference: printer-comms.md §4.2 (OctoPrint,
ping-pong, 2,410-2,600 lines/s unthrottled; a 115200-baud line carries ~340 lines/s of 33.8-byte lines).
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


def start_mock(baud: int, extra: list[str]) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(HARDWARE)}
    cmd = [sys.executable, "-m", "mockprinter", "serve", "--pty", "--baud", str(baud), "--exposure-s", "0",
           "--exposure-scale", "0", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("pty: "):
        proc.kill()
        raise SystemExit(f"mock printer did not start: {line!r}")
    return proc, line[5:]


def run(job: Path, lines: int, baud: int, mode: str) -> dict[str, float]:
    flow, extra = MODES[mode]
    proc, path = start_mock(baud, extra)
    try:
        p = SerialPrinter(path, baud=115200, settings=StreamSettings(flow=flow), banner_wait_s=0.1)
        p.connect()
        t0 = time.monotonic()
        p.send_job(job)
        dt = time.monotonic() - t0
        stats = p.stats
        p.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    summary = json.loads(out.strip().splitlines()[-1])
    expected = lines + 4  # handshake M110 + M115; the job between M110 N0 and M400
    assert summary["numbered"] == expected, (summary, expected)
    assert summary["overflow_bytes"] == 0
    return {"lines_s": lines / dt, "seconds": dt, "wire_bytes_per_line": stats.wire_bytes / stats.wire_lines,
            "max_inflight_lines": stats.max_inflight_lines}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=20000)
    ap.add_argument("--baud", type=int, action="append", help="emulated baud (0 = unthrottled); repeatable")
    ap.add_argument("--mode", choices=sorted(MODES), action="append")
    a = ap.parse_args()
    bauds = a.baud or [115200, 0]
    modes = a.mode or list(MODES)
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "bench.gcode"
        job.write_text(program(a.lines), encoding="ascii")
        for baud in bauds:
            label = f"{baud} baud" if baud else "unthrottled"
            results = {m: run(job, a.lines, baud, m) for m in modes}
            for m, r in results.items():
                print(f"{label:>12}  {m:<20} {r['lines_s']:>9,.0f} lines/s  {r['seconds']:7.2f} s  "
                      f"{r['wire_bytes_per_line']:.1f} B/line  max {r['max_inflight_lines']} lines in flight")
            if "ping-pong" in results:
                for m in results:
                    if m != "ping-pong":
                        ratio = results[m]["lines_s"] / results["ping-pong"]["lines_s"]
                        print(f"{label:>12}  {m} / ping-pong = {ratio:.2f}x")


if __name__ == "__main__":
    main()
