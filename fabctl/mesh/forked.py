"""Run one computation in a forked child process beside the caller, for the second core.

The mesh checks are long runs of numpy and scipy calls, many of which hold the GIL between their inner loops,
so two threads of one process barely overlap. A forked child shares the parent's arrays copy-on-write at no
cost and really runs beside it; only its (small) result crosses a pipe, pickled.

The child gets the default SIGTERM and ignores SIGINT (the parent decides: leaving the ``with`` block early
kills and reaps the child). It runs only computation on inherited arrays, touches no database, file or log,
and leaves with ``os._exit``. When fork is unavailable, disabled (``FABCTL_MESH_FORK=0``), or the child
fails in any way (an exception, a crash, killed for memory), ``result()`` computes the same call here, so the
answer never depends on the child: the child is only ever a head start.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def fork_enabled() -> bool:
    """Whether ``Forked`` forks: the platform can fork and ``FABCTL_MESH_FORK`` is not ``0``."""
    return os.environ.get("FABCTL_MESH_FORK", "1") != "0" and "fork" in multiprocessing.get_all_start_methods()


def _child(conn, fn: Callable[..., Any], args: tuple) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        t0 = time.perf_counter()
        out = fn(*args)
        conn.send(("ok", out, time.perf_counter() - t0))
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which recomputes
        conn.send(("error", f"{type(err).__name__}: {err}", 0.0))
    finally:
        conn.close()


class Forked:
    """``fn(*args)`` started in a forked child; ``result()`` is its return value and ``seconds`` its own
    duration. Use as a context manager so the child never outlives the caller."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args
        self.seconds = 0.0
        self.forked = False
        self._proc = None
        self._conn = None
        if fork_enabled():
            ctx = multiprocessing.get_context("fork")
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(send, fn, args), daemon=True)
            try:
                proc.start()
            except (OSError, AssertionError) as err:  # out of processes; or inside a daemonic process
                log.warning("cannot fork for %s (%s); computing it in this process", fn.__name__, err)
                recv.close()
                send.close()
                return
            send.close()
            self._proc, self._conn, self.forked = proc, recv, True

    def result(self) -> Any:
        """The child's result, or the same call computed here if there is no child or it failed."""
        if self._proc is not None:
            status, out, seconds = "lost", None, 0.0
            try:
                status, out, seconds = self._conn.recv()
            except (EOFError, OSError):
                pass  # the child died before answering
            finally:
                self._reap()
            if status == "ok":
                self.seconds = seconds
                return out
            log.warning("forked %s failed (%s); computing it in this process", self.fn.__name__,
                        out if status == "error" else "no answer")
            self.forked = False
        t0 = time.perf_counter()
        out = self.fn(*self.args)
        self.seconds = time.perf_counter() - t0
        return out

    def _reap(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join()

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, *exc: object) -> None:
        self._reap()
