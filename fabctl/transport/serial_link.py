"""A pyserial port as a line link: open by URL, write bytes, read whole lines, map failures to TransportError.

``serial.serial_for_url`` picks the backend from the URL, so device paths (``/dev/ttyACM0``), ``socket://``,
``rfc2217://`` and any registered scheme (the mock's ``mockprinter://``) work unchanged. Only blocking
calls with timeouts are used, so every URL backend works (research/aesthetics.md §3).

Raw traffic is logged at DEBUG on the ``fabctl.transport.serial_link.wire`` logger (off by default).
"""

from __future__ import annotations

import logging

import serial

from fabctl.errors import TransportError

log = logging.getLogger(__name__)
wire_log = logging.getLogger(__name__ + ".wire")

_HINT = "check the cable/URL and that the printer is powered; the job did not complete"


class PortLink:
    """One open port. ``poll_s`` is the longest a blocking read waits for the first byte."""

    def __init__(self, url: str, baud: int, *, poll_s: float = 0.05, write_timeout_s: float = 10.0) -> None:
        self.url = url
        try:
            self.port = serial.serial_for_url(url, baudrate=baud, timeout=poll_s, write_timeout=write_timeout_s)
        except (serial.SerialException, ValueError, OSError) as err:
            raise TransportError(f"cannot open printer port {url}: {err}",
                                 hint="check the port/URL (a pyserial URL or device path)") from None
        self._buf = bytearray()
        self._unread: list[str] = []
        self.bytes_out = 0
        log.info("opened %s at %d baud", url, baud)

    def write(self, data: bytes) -> None:
        if wire_log.isEnabledFor(logging.DEBUG):
            for line in data.splitlines():
                wire_log.debug("<<< %s", line.decode("ascii", "replace"))
        try:
            self.port.write(data)
        except serial.SerialTimeoutException:
            raise TransportError(f"printer at {self.url} stopped taking data (write timed out)",
                                 hint=_HINT) from None
        except (serial.SerialException, OSError) as err:
            raise TransportError(f"lost the printer at {self.url}: write failed ({err})", hint=_HINT) from None
        self.bytes_out += len(data)

    def read_lines(self, block: bool) -> list[str]:
        """Complete lines received so far; waits up to ``poll_s`` for data when ``block``."""
        if self._unread:
            out, self._unread = self._unread, []
            return out
        try:
            waiting = self.port.in_waiting
            if waiting or block:
                self._buf += self.port.read(max(1, waiting))
                waiting = self.port.in_waiting
                if waiting:
                    self._buf += self.port.read(waiting)
        except (serial.SerialException, OSError) as err:
            raise TransportError(f"lost the printer at {self.url}: {err}", hint=_HINT) from None
        if b"\n" not in self._buf:
            return []
        *lines, rest = self._buf.split(b"\n")
        self._buf = bytearray(rest)
        out = [ln.decode("ascii", "replace").strip("\r\x00 ") for ln in lines]
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
