"""Run one computation in a forked child process beside the caller, for the second core.

The mesh checks are long runs of numpy and scipy calls, many of which hold the GIL between their inner loops,
so two threads of one process barely overlap. A forked child shares the parent's arrays copy-on-write at no
cost and really runs beside it; only its (small) result crosses a pipe, pickled.

The child is made harmless to the process it came from (which may be the queue daemon, streaming to other
printers from other threads): it is the first to go when memory runs out (``oom_score_adj`` 1000), it dies
with its parent (``PR_SET_PDEATHSIG``), it runs no garbage collection (objects of the parent's that were
waiting to be collected are not finalised a second time in the child), it gets the default SIGTERM and ignores
SIGINT, touches no database, file or log, and leaves with ``os._exit``. Leaving the ``with`` block early kills
and reaps it.

When fork is unavailable, disabled (``FABCTL_MESH_FORK=0``), or the child fails in any way (an exception, a
crash, killed for memory, no answer within ``TIMEOUT_S``), ``result()`` computes the same call here, so the
answer never depends on the child: the child is only ever a head start.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.reduction import ForkingPickler
from typing import Any

log = logging.getLogger(__name__)

#: a child that has not answered after this long is killed and its work done here (the 880k-triangle guide
#: takes about 3 s)
TIMEOUT_S = 600.0
_PR_SET_PDEATHSIG = 1


def fork_enabled() -> bool:
    """Whether ``Forked`` forks: the platform can fork and ``FABCTL_MESH_FORK`` is not ``0``."""
    return os.environ.get("FABCTL_MESH_FORK", "1") != "0" and "fork" in multiprocessing.get_all_start_methods()


def _name(fn: Callable[..., Any]) -> str:
    inner = getattr(fn, "func", fn)  # a functools.partial names its function
    return getattr(inner, "__name__", type(inner).__name__)


def _harmless() -> None:
    """The child's first steps (module docs)."""
    gc.disable()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    with contextlib.suppress(OSError, AttributeError, TypeError):
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, looked up once (``find_library`` runs ``ldconfig`` in a subprocess)."""
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _trim_heap() -> bool:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``) just before a fork; True when
    it ran. Pages the allocator keeps for reuse (``fabctl.cli.allocator``) would otherwise be shared with the
    child, and every array either process then builds on them costs a page fault and a copy of the page: on
    the 880k-triangle guide, beside an idle child, the topology checks made 79,000 such copies and took
    0.72 s instead of 0.43 s. A freed page costs a zero-filled fault when used again, which is cheaper. In a
    whole validation, with both processes at work, it saves a few per cent of the CPU time."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        trim = _libc().malloc_trim
        trim.argtypes = [ctypes.c_size_t]
        trim(0)
        return True
    return False


def _run(tag: str, fn: Callable[..., Any], args: tuple) -> tuple[str, str, Any, float]:
    try:
        t0 = time.perf_counter()
        return (tag, "ok", fn(*args), time.perf_counter() - t0)
    except Exception as err:  # noqa: BLE001 - reported to the parent, which recomputes (anything else ends
        # the child without an answer, which the parent also recomputes)
        return (tag, "error", f"{type(err).__name__}: {err}", 0.0)


#: answers sent straight from the child's main thread, in all, stay below this: half of what a Linux pipe
#: holds (64 KiB), so those writes never wait for the parent
DIRECT_BYTES = 32 * 1024


def _encode(message: tuple) -> memoryview:
    """The answer pickled (not copied again); one that cannot be is reported as an error (the parent then
    computes it)."""
    try:
        return ForkingPickler.dumps(message)
    except Exception as err:  # noqa: BLE001 - whatever the pickler raises, the parent recomputes
        return ForkingPickler.dumps((message[0], "error", f"unpicklable answer: {type(err).__name__}", 0.0))


def _send(conn, data: memoryview) -> None:
    with contextlib.suppress(OSError, ValueError):  # the parent is gone or stopped listening: nothing to do
        conn.send_bytes(data)


def _child(conn, steps: list[tuple[str, Callable[..., Any], tuple]]) -> None:
    """Each step in order. Small answers are written at once while the pipe surely has room, so they are out
    before the next step starts (and survive the child dying in it); a bigger answer is sent by a thread of
    its own while the next step computes (it waits in the pipe until the parent reads it), one at a time."""
    _harmless()
    sender = None
    direct = 0
    for tag, fn, args in steps:
        data = _encode(_run(tag, fn, args))
        if sender is None and direct + data.nbytes < DIRECT_BYTES:
            direct += data.nbytes
            _send(conn, data)
            continue
        if sender is not None:
            sender.join()
        sender = threading.Thread(target=_send, args=(conn, data), daemon=True)
        sender.start()
    if sender is not None:
        sender.join()
    with contextlib.suppress(OSError):
        conn.close()


class Forked:
    """``fn(*args)`` started in a forked child; ``result()`` is its return value and ``seconds`` its own
    duration. Use as a context manager so the child never outlives the caller.

    first : an optional ``(fn0, args0)`` the child computes before ``fn``; ``first_result()`` is its value
    (and ``first_seconds`` its duration), available as soon as it is done, while the child goes on."""

    def __init__(self, fn: Callable[..., Any], *args: Any,
                 first: tuple[Callable[..., Any], tuple] | None = None) -> None:
        self.fn, self.args, self.name = fn, args, _name(fn)
        self.first = first
        self.seconds = 0.0
        self.first_seconds = 0.0
        self.forked = False
        self._proc = None
        self._conn = None
        self._got: dict[str, tuple[str, Any, float]] = {}
        if not fork_enabled():
            return
        try:
            ctx = multiprocessing.get_context("fork")
            recv, send = ctx.Pipe(duplex=False)
        except OSError as err:  # out of file descriptors
            log.warning("cannot fork for %s (%s); computing it in this process", self.name, err)
            return
        steps = ([("first", first[0], tuple(first[1]))] if first is not None else []) + [("main", fn, args)]
        proc = ctx.Process(target=_child, args=(send, steps), daemon=True)
        _trim_heap()
        try:
            proc.start()  # (multiprocessing flushes stdout and stderr before it forks)
        except (OSError, AssertionError) as err:  # out of processes; or inside a daemonic process
            log.warning("cannot fork for %s (%s); computing it in this process", self.name, err)
            recv.close()
            send.close()
            return
        send.close()
        self._proc, self._conn, self.forked = proc, recv, True

    def _answer(self, tag: str) -> tuple[str, Any, float]:
        """The child's answer for step ``tag``; ("lost", ...) when it died, hung past ``TIMEOUT_S`` or sent
        garbage. Waits on the child's exit as well as the pipe: another process forked meanwhile may hold a
        copy of the pipe's write end, so a dead child does not always close it."""
        conn, proc = self._conn, self._proc
        deadline = time.monotonic() + TIMEOUT_S
        while tag not in self._got:
            if conn is None or proc is None:
                return ("lost", "the child is gone", 0.0)
            if time.monotonic() >= deadline:
                return ("lost", f"no answer within {TIMEOUT_S:g} s", 0.0)
            ready = wait([conn, proc.sentinel], timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            if not ready:
                continue
            exited = proc.sentinel in ready
            if conn.poll(0.05 if exited else 0):
                try:
                    got, status, out, seconds = conn.recv()
                except Exception:  # noqa: BLE001 - EOF, a broken or unreadable message: recompute
                    return ("lost", "no readable answer", 0.0)
                self._got[got] = (status, out, seconds)
                continue
            if exited:
                return ("lost", f"it ended with exit code {proc.exitcode} and no answer", 0.0)
        return self._got[tag]

    def _value(self, tag: str, fn: Callable[..., Any], args: tuple) -> tuple[Any, float]:
        if self._proc is not None:
            status, out, seconds = self._answer(tag)
            if status == "ok":
                return out, seconds
            log.warning("forked %s failed (%s); computing it in this process", _name(fn), out)
        t0 = time.perf_counter()
        out = fn(*args)
        return out, time.perf_counter() - t0

    def first_result(self) -> Any:
        """The value of ``first``, or the same call computed here if there is no child or it failed."""
        assert self.first is not None, "Forked(..., first=None) has no first step"
        out, self.first_seconds = self._value("first", self.first[0], tuple(self.first[1]))
        return out

    def result(self) -> Any:
        """The child's result, or the same call computed here if there is no child or it failed."""
        try:
            out, self.seconds = self._value("main", self.fn, self.args)
        finally:
            self._reap()
        if "main" not in self._got or self._got["main"][0] != "ok":
            self.forked = False
        return out

    def _reap(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join()
        if conn is not None:
            conn.close()

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, *exc: object) -> None:
        self._reap()
