"""A pyserial port as a line link: open by URL, write bytes, read whole lines, map failures to TransportError.

``serial.serial_for_url`` picks the backend from the URL, so device paths (``/dev/ttyACM0``), ``socket://``,
``rfc2217://`` and any registered scheme (the mock's ``mockprinter://``) work unchanged. Only blocking
calls with timeouts are used, so every URL backend works (research/aesthetics.md §3).

Raw traffic is logged at DEBUG on the ``fabctl.transport.serial_link.wire`` logger (off by default).
"""

from __future__ import annotations

import errno
import logging
import os
import select

import serial

from fabctl.errors import TransportError

log = logging.getLogger(__name__)
wire_log = logging.getLogger(__name__ + ".wire")

_HINT = "check the cable/URL and that the printer is powered; the job did not complete"
_OKS = b"ok\n" * 128  # a run of plain oks is a prefix of this


class PortLink:
    """One open port. ``poll_s`` is the longest a blocking read waits for the first byte."""

    def __init__(self, url: str, baud: int, *, poll_s: float = 0.05, write_timeout_s: float = 10.0) -> None:
        self.url = url
        try:
            self.port = serial.serial_for_url(url, baudrate=baud, timeout=poll_s, write_timeout=write_timeout_s)
        except (serial.SerialException, ValueError, OSError) as err:
            raise TransportError(f"cannot open printer port {url}: {err}",
                                 hint="check the port/URL (a pyserial URL or device path)") from None
        self._buf = b""
        self._unread: list[str] = []
        self.bytes_out = 0
        self.poll_s = poll_s
        # A local serial device (or pty): read and write its descriptor directly, one system call per
        # chunk, instead of pyserial's select-per-call loops. Any other URL backend goes through pyserial.
        self._fd: int | None = None
        if os.name == "posix" and isinstance(self.port, serial.Serial) and isinstance(
                getattr(self.port, "fd", None), int):
            self._fd = self.port.fd
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)
        log.info("opened %s at %d baud", url, baud)

    def write(self, data: bytes) -> None:
        if wire_log.isEnabledFor(logging.DEBUG):
            for line in data.splitlines():
                wire_log.debug("<<< %s", line.decode("ascii", "replace"))
        try:
            if self._fd is not None:
                data = self._write_fd(data)
            if data:
                self.port.write(data)
        except serial.SerialTimeoutException:
            raise TransportError(f"printer at {self.url} stopped taking data (write timed out)",
                                 hint=_HINT) from None
        except (serial.SerialException, OSError) as err:
            raise TransportError(f"lost the printer at {self.url}: write failed ({err})", hint=_HINT) from None
        self.bytes_out += len(data)

    def _write_fd(self, data: bytes) -> bytes:
        """Write what the descriptor takes now; the rest (if any) is returned for pyserial's blocking write."""
        size = len(data)
        try:
            done = os.write(self._fd, data)  # type: ignore[arg-type]
        except BlockingIOError:
            done = 0
        self.bytes_out += done  # the rest is counted by write()
        return data[done:] if done < size else b""

    def _read_fd(self, block: bool) -> bytes:
        fd = self._fd
        assert fd is not None
        try:
            if not self._poll.poll(self.poll_s * 1000.0 if block else 0.0):
                return b""  # (a raw tty with VMIN=0 would return b"" from read(): not a disconnect)
            data = os.read(fd, 65536)
        except BlockingIOError:
            return b""
        except InterruptedError:
            return b""
        except OSError as err:
            if err.errno == errno.EAGAIN:
                return b""
            raise serial.SerialException(f"read failed: {err}") from None
        if not data:
            raise serial.SerialException("device reports readiness to read but returned no data "
                                         "(device disconnected?)")
        return data

    def read_lines(self, block: bool) -> list[str]:
        """Complete lines received so far; waits up to ``poll_s`` for data when ``block``."""
        if self._unread:
            out, self._unread = self._unread, []
            return out
        return self._lines(self._read(block))

    def read_replies(self, block: bool) -> tuple[int, list[str]]:
        """Like ``read_lines``, but ``(k, [])`` when the complete lines are ``k`` plain ``ok``s (the usual
        answer while streaming: no string per line), else ``(0, lines)``."""
        if self._unread:
            out, self._unread = self._unread, []
            return 0, out
        data = self._read(block)
        buf = self._buf + data if self._buf else data
        end = buf.rfind(b"\n") + 1
        if 0 < end <= len(_OKS) and _OKS.startswith(buf[:end]):
            self._buf = buf[end:]
            if wire_log.isEnabledFor(logging.DEBUG):
                wire_log.debug(">>> ok (x%d)", end // 3)
            return end // 3, []
        self._buf = b""
        return 0, self._lines(buf)

    def _read(self, block: bool) -> bytes:
        try:
            if self._fd is not None:
                data = self._read_fd(block)
            else:
                data = b""
                waiting = self.port.in_waiting
                if waiting or block:
                    data = self.port.read(max(1, waiting))
                    waiting = self.port.in_waiting
                    if waiting:
                        data += self.port.read(waiting)
        except (serial.SerialException, OSError) as err:
            raise TransportError(f"lost the printer at {self.url}: {err}", hint=_HINT) from None
        return data

    def _lines(self, data: bytes) -> list[str]:
        buf = self._buf + data if self._buf else data
        if b"\n" not in buf:
            self._buf = buf
            return []
        head, _, self._buf = buf.rpartition(b"\n")
        out = [ln.strip("\r\x00 ") for ln in head.decode("ascii", "replace").split("\n")]
        if wire_log.isEnabledFor(logging.DEBUG):
            for line in out:
                wire_log.debug(">>> %s", line)
        return [ln for ln in out if ln]

    def unread(self, lines: list[str]) -> None:
        """Give back lines a caller read but did not use; the next ``read_lines`` returns them first."""
        self._unread = list(lines) + self._unread

    def close(self) -> None:
        try:
            self.port.close()
        except (serial.SerialException, OSError) as err:
            log.warning("closing %s: %s", self.url, err)
