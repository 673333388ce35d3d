"""Ways to reach the simulated firmware, and the thread that runs it.

* ``PtyLink``: a pseudo-terminal; the host opens ``link.path`` as a normal serial device.
* ``TcpLink``: a TCP server on 127.0.0.1 for ``socket://127.0.0.1:<port>`` (one client at a time; each new
  client sees a freshly booted firmware, like plugging a board in).
* ``MemoryLink``: an in-process byte pipe, used by the ``mockprinter://`` pyserial URL handler.

``Runner`` owns one ``MarlinSim`` and one link: it steps the simulation, writes its output, reads input
(waiting no longer than the simulation allows). ``stop()`` ends it and closes the link.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import threading
import time
import tty
from collections.abc import Callable
from typing import Protocol

from mockprinter.marlin import MarlinSim

log = logging.getLogger(__name__)


class Link(Protocol):
    def read(self, timeout: float) -> bytes | None:
        """Bytes from the host (b'' after ``timeout``); None when the link is gone for good."""
        ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class PtyLink:
    """The device side of a pty. The slave stays open here too, so the host may open and close it freely."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)  # writes wait in select only when the pty is full
        self.path = os.ttyname(self.slave)
        self.closed = False
        self._poll = select.poll()
        self._poll.register(self.master, select.POLLIN)

    def read(self, timeout: float) -> bytes | None:
        if self.closed:
            return None
        if not self._poll.poll(timeout * 1000.0):
            return b""
        try:
            return os.read(self.master, 65536)
        except BlockingIOError:
            return b""
        except OSError as err:
            if err.errno == errno.EIO:
                return b""
            raise

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        try:  # the usual case: the pty takes it all at once
            done = os.write(self.master, data)
        except BlockingIOError:
            done = 0
        if done == len(data):
            return
        view = memoryview(data)[done:]
        while view and not self.closed:
            try:
                view = view[os.write(self.master, view):]
            except BlockingIOError:
                select.select([], [self.master], [], 1.0)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.master)
            os.close(self.slave)


class TcpLink:
    """A listening socket on ``host:port`` (0 picks a free port: see ``self.port``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 on_connect: Callable[[], None] | None = None) -> None:
        self.server = socket.create_server((host, port))
        self.host, self.port = self.server.getsockname()[:2]
        self.client: socket.socket | None = None
        self.on_connect = on_connect
        self.closed = False

    def read(self, timeout: float) -> bytes | None:
        if self.closed:
            return None
        sock = self.client or self.server
        ready, _, _ = select.select([sock], [], [], timeout)
        if not ready:
            return b""
        if self.client is None:
            self.client, addr = self.server.accept()
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            log.info("mock printer: client %s connected", addr)
            if self.on_connect is not None:
                self.on_connect()
            return b""
        try:
            data = self.client.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop_client()
        return data

    def _drop_client(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def write(self, data: bytes) -> None:
        if self.client is not None:
            try:
                self.client.sendall(data)
            except OSError:
                self._drop_client()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._drop_client()
            self.server.close()


class MemoryLink:
    """Two byte queues under one condition: the device side (``read``/``write``) and the host side."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.to_device = bytearray()
        self.to_host = bytearray()
        self.closed = False

    def read(self, timeout: float) -> bytes | None:
        with self.cond:
            if not self.to_device and not self.closed:
                self.cond.wait(timeout)
            if self.closed:
                return None
            data, self.to_device = bytes(self.to_device), bytearray()
            return data

    def write(self, data: bytes) -> None:
        with self.cond:
            self.to_host += data
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def host_write(self, data: bytes) -> bool:
        with self.cond:
            if self.closed:
                return False
            self.to_device += data
            self.cond.notify_all()
            return True

    def host_read(self, size: int, timeout: float | None) -> bytes | None:
        """Up to ``size`` bytes, waiting up to ``timeout`` for the first; None when closed and drained."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.cond:
            while not self.to_host and not self.closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return b""
                self.cond.wait(left)
            if not self.to_host:
                return None
            data = bytes(self.to_host[:size])
            del self.to_host[:size]
            return data


class Runner:
    """Runs ``sim`` against ``link`` in a daemon thread until ``stop()`` or a disconnect fault."""

    def __init__(self, sim: MarlinSim, link: Link, *, name: str = "mockprinter", banner: bool = True) -> None:
        self.sim, self.link = sim, link
        self._stop = threading.Event()
        self._banner = banner
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.error: BaseException | None = None

    def start(self) -> Runner:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self._loop()
        except OSError as err:
            log.info("mock printer link closed: %s", err)
            self.error = err
        finally:
            self.link.close()

    def _loop(self) -> None:
        if self._banner:
            self.sim.power_on(time.monotonic())
        sim, link, stopped, clock = self.sim, self.link, self._stop.is_set, time.monotonic
        while not stopped():
            wait = sim.step(clock())
            out = sim.take_output()
            if out:
                link.write(out)
            if sim.disconnected:
                log.info("mock printer: disconnect fault, dropping the link")
                return
            data = link.read(wait if wait < 0.05 else 0.05)
            if data is None:
                return
            if data:
                sim.feed(data)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if isinstance(self.link, MemoryLink):
            with self.link.cond:
                self.link.cond.notify_all()
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.link.close()
