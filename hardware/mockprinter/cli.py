"""Command line: run a mock printer on a pty or a TCP port until interrupted.

Prints ``pty: /dev/pts/N`` or ``tcp: 127.0.0.1:PORT`` (one line, flushed) when ready, and a JSON summary
of what the firmware executed when it stops (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from mockprinter import serve_pty, serve_tcp
from mockprinter.config import MockConfig, parse_faults


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mockprinter", description="fabctl's mock Marlin laser-SLA printer")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve one mock printer until interrupted")
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="on a new pseudo-terminal")
    where.add_argument("--tcp", type=int, metavar="PORT", help="on 127.0.0.1:PORT (0: a free port)")
    s.add_argument("--name", default="sim-laser")
    s.add_argument("--faults", default="", help="kind@N[:arg],... (see mockprinter.config)")
    s.add_argument("--rx-buffer", type=int, default=127)
    s.add_argument("--bufsize", type=int, default=4)
    s.add_argument("--baud", type=int, default=0, help="emulated line rate (0: unlimited)")
    s.add_argument("--advanced-ok", action="store_true")
    s.add_argument("--no-ok-after-resend", action="store_true")
    s.add_argument("--exposure-s", type=float, default=2.0)
    s.add_argument("--exposure-scale", type=float, default=1.0)
    s.add_argument("--busy-interval", type=float, default=2.0)
    return p


def _config(a: argparse.Namespace) -> MockConfig:
    return MockConfig(
        name=a.name, rx_buffer=a.rx_buffer, bufsize=a.bufsize, baud=a.baud, advanced_ok=a.advanced_ok,
        ok_after_resend=not a.no_ok_after_resend, exposure_s=a.exposure_s, exposure_scale=a.exposure_scale,
        busy_interval_s=a.busy_interval, faults=parse_faults(a.faults),
    )


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        config = _config(args)
    except ValueError as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(2)
    if args.pty:
        runner, link = serve_pty(config)
        print(f"pty: {link.path}", flush=True)
    else:
        runner, tcp = serve_tcp(config, args.tcp)
        print(f"tcp: {tcp.host}:{tcp.port}", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.is_set() and runner.thread.is_alive():
        done.wait(0.2)
    runner.stop()
    sim = runner.sim
    summary: dict[str, Any] = {
        "executed": len(sim.executed), "numbered": sum(1 for n, _ in sim.executed if n is not None),
        "layers": sim.stats.layers, "resend_requests": sim.stats.resend_requests,
        "overflow_bytes": sim.stats.overflow_bytes, "max_rx": sim.stats.max_rx, "boots": sim.boots,
    }
    print(json.dumps(summary), flush=True)
