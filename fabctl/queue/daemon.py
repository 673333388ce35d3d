"""``fabctl queue serve``: the daemon that owns the printers (the Klipper/Moonraker split).

One ``PrinterWorker`` thread per printer, each holding that printer's lease in the store and owning its
transport. On start, and then every lease period, in-flight jobs whose owner lost its lease (a daemon killed
with -9, a crashed direct print) or that belonged to this daemon's previous incarnation (same ``owner``) are
marked ``interrupted`` with their last confirmed line or layer; nothing is ever resumed or restarted.

SIGTERM (or SIGINT): stop claiming; the running jobs finish (``on_stop="finish"``) or are cancelled at the
printer and marked ``interrupted`` (``on_stop="interrupt"``). A second signal during ``finish`` interrupts.
``owner`` names this daemon in leases and jobs: it must be unique among running daemons (the default is
``<host>-<pid>``; a systemd unit passes the host name so a restart recovers its jobs at once).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fabctl import jobstore, profiles
from fabctl.db import open_db
from fabctl.errors import InputError
from fabctl.queue import runners
from fabctl.queue.worker import PrinterWorker, WorkerConfig

log = logging.getLogger(__name__)

OnStop = Literal["finish", "interrupt"]


def default_owner() -> str:
    return f"{socket.gethostname().split('.')[0].lower()}-{os.getpid()}"


@dataclass
class DaemonConfig:
    home: Path
    printers: list[str] = field(default_factory=list)
    owner: str = field(default_factory=default_owner)
    on_stop: OnStop = "finish"
    poll_s: float = 1.0
    lease_s: float = 15.0

    def __post_init__(self) -> None:
        if self.on_stop not in ("finish", "interrupt"):
            raise InputError(f"--on-stop {self.on_stop!r} is not known", hint="use finish or interrupt")
        if not 0.01 <= self.poll_s <= 60:
            raise InputError(f"--poll-s {self.poll_s:g} is out of range 0.01..60 s")
        if not 1 <= self.lease_s <= 3600:
            raise InputError(f"--lease-s {self.lease_s:g} is out of range 1..3600 s")
        if not self.owner or len(self.owner) > 64 or any(c.isspace() for c in self.owner):
            raise InputError(f"--owner {self.owner!r} must be 1..64 characters without spaces")
        if not self.printers:
            self.printers = [p.stem for p in profiles.paths("printer")]
        for pid in self.printers:
            profiles.printer(pid)  # refuses an unknown or broken profile (exit 2) before anything starts

    @property
    def actor(self) -> str:
        return jobstore.actor_of(f"queue-{self.owner}")


class Daemon:
    """Start with ``start()``, stop with ``stop()`` (from a signal handler too), ``wait()`` for the end."""

    def __init__(self, cfg: DaemonConfig, *, run_case: Callable | None = None,
                 run_file: Callable = runners.run_file_job,
                 probe: Callable[[str], str | None] = runners.probe) -> None:
        self.cfg = cfg
        self.run_case = run_case if run_case is not None else runners.pipeline_runner()
        self.run_file, self.probe = run_file, probe
        self.stopping = threading.Event()
        self.interrupting = threading.Event()
        self.workers: list[PrinterWorker] = []
        self.recovered: list[str] = []

    def start(self) -> None:
        c = self.cfg
        db = open_db(c.home)
        try:
            for j in jobstore.recover(db, actor=c.actor, previous_owner=c.owner):
                log.warning("job %s marked interrupted: %s", j.job_id, j.reason)
                self.recovered.append(j.job_id)
        finally:
            db.close()
        for pid in c.printers:
            wc = WorkerConfig(printer_id=pid, owner=c.owner, actor=c.actor, home=c.home, poll_s=c.poll_s,
                              lease_s=c.lease_s)
            self.workers.append(PrinterWorker(wc, self.run_case, self.run_file, self.probe, self.stopping,
                                              self.interrupting).start())
        log.info("queue daemon %s serving %s", c.owner, ", ".join(c.printers))

    def stop(self, on_stop: OnStop | None = None) -> None:
        """Stop claiming; ``interrupt`` also cancels running jobs at their printers (marked interrupted)."""
        mode = on_stop or self.cfg.on_stop
        if self.stopping.is_set() and mode == "finish":
            mode = "interrupt"  # a second stop request does not wait any longer
        self.stopping.set()
        if mode == "interrupt":
            self.interrupting.set()
            for w in self.workers:
                w.interrupt()

    def wait(self) -> dict[str, Any]:
        """Sweep for dead owners' jobs every lease period until every worker has ended."""
        db = open_db(self.cfg.home)
        try:
            next_sweep = time.monotonic() + self.cfg.lease_s
            while any(w.thread.is_alive() for w in self.workers):
                self.stopping.wait(min(self.cfg.poll_s, 0.5))
                if self.stopping.is_set():
                    for w in self.workers:
                        w.join(0.2)
                    continue
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.cfg.lease_s
                    for j in jobstore.recover(db, actor=self.cfg.actor):
                        log.warning("job %s marked interrupted: %s", j.job_id, j.reason)
                        self.recovered.append(j.job_id)
            for w in self.workers:
                w.join()
        finally:
            db.close()
        return {"owner": self.cfg.owner, "printers": self.cfg.printers, "recovered": self.recovered,
                "worker_errors": {w.cfg.printer_id: repr(w.error) for w in self.workers if w.error}}


def serve(cfg: DaemonConfig, *, run_case: Callable | None = None) -> dict[str, Any]:
    """Run the daemon in this (main) thread until SIGTERM/SIGINT; returns a summary."""
    daemon = Daemon(cfg, run_case=run_case)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda signum, _frame: _on_signal(daemon, signum))
    try:
        daemon.start()
        return daemon.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _on_signal(daemon: Daemon, signum: int) -> None:
    log.warning("signal %s: stopping (%s)", signal.Signals(signum).name,
                "interrupt" if daemon.stopping.is_set() else daemon.cfg.on_stop)
    daemon.stop()
