"""pyserial URL handler for ``mockprinter://NAME?option=value&...``: the mock firmware in this process.

pyserial imports ``<package>.protocol_<scheme>`` for each package in ``serial.protocol_handler_packages``;
``mockprinter.register()`` appends ``"mockprinter"``. Opening the URL boots a ``MarlinSim`` on a thread;
closing it stops the thread. Options are ``MockConfig`` fields (``rx_buffer``, ``bufsize``, ``baud``,
``advanced_ok``, ``ok_after_resend``, ``exposure_s``, ``exposure_scale``, ``busy_interval``, ``overflow``,
``serial``, ``faults``). The last simulation opened under each NAME stays in ``SIMS`` for inspection.
"""

from __future__ import annotations

import threading

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from mockprinter.config import MockConfig
from mockprinter.links import MemoryLink, Runner
from mockprinter.marlin import MarlinSim

SIMS: dict[str, MarlinSim] = {}
_SIMS_LOCK = threading.Lock()


def last_sim(name: str) -> MarlinSim:
    """The simulation most recently opened as ``mockprinter://name``."""
    with _SIMS_LOCK:
        return SIMS[name]


class Serial(SerialBase):
    """A serial port whose far end is the simulated firmware."""

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        try:
            cfg = MockConfig.from_url(self.portstr)
        except ValueError as err:
            raise SerialException(f'expected "mockprinter://NAME[?option=value&...]": {err}') from None
        self.sim = MarlinSim(cfg)
        with _SIMS_LOCK:
            SIMS[cfg.name] = self.sim
        self._link = MemoryLink()
        self._runner = Runner(self.sim, self._link, name=f"mockprinter-{cfg.name}").start()
        self.is_open = True

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            self._runner.stop()
        super().close()

    def _reconfigure_port(self) -> None:
        """Nothing to configure: the emulated line rate is the ``baud`` option."""

    def _need_open(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()

    @property
    def in_waiting(self) -> int:
        self._need_open()
        return len(self._link.to_host)

    def read(self, size: int = 1) -> bytes:
        self._need_open()
        data = self._link.host_read(size, self._timeout)
        if data is None:
            raise SerialException("mock printer disconnected")
        return data

    def write(self, data: bytes) -> int:
        self._need_open()
        raw = bytes(data)
        if not self._link.host_write(raw):
            raise SerialException("mock printer disconnected")
        return len(raw)

    def reset_input_buffer(self) -> None:
        self._need_open()
        with self._link.cond:
            self._link.to_host.clear()

    def reset_output_buffer(self) -> None:
        self._need_open()

    @property
    def out_waiting(self) -> int:
        return 0

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True

    def _update_dtr_state(self) -> None:
        """No modem lines."""

    def _update_rts_state(self) -> None:
        """No modem lines."""

    def _update_break_state(self) -> None:
        """No break."""
