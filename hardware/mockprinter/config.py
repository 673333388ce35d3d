"""The mock printer's configuration: firmware behaviour and fault injection, from a dict or a URL query.

Faults are ``kind@N[:arg]`` items, comma-separated (``corrupt@120,drop_ok@130,busy@140:1.5``). ``N`` is a
wire line number (the ``N<n>`` of a numbered line; handshake ``M110``/``M115`` lines never trigger), except
for ``resin_out`` where it is a layer index (0 = the first exposed layer) and ``corrupt_every`` where every
line whose number is a multiple of ``N`` is hit. Each fault fires once per line (the resent copy passes).

=============== =========================================================================================
kind            effect
=============== =========================================================================================
corrupt         a byte of line N is changed on arrival: checksum mismatch, ``Resend: N``
corrupt_every   the same for every line n with n % N == 0 (error-rate experiments)
drop_ok         line N is executed but its ``ok`` is never sent
resend          line N is discarded and asked for again with ``rs N<N>`` (no error message)
dup_resend      line N is rejected and the resend request is sent twice (a duplicate request)
busy            line N runs ``arg`` seconds longer (real time), with ``busy: processing`` keepalives
disconnect      the link drops when line N arrives
halt            ``Error:Printer halted. kill() called!`` instead of executing line N; no more answers
hang            the firmware freezes silently when line N arrives (no error, no more answers)
reset           the firmware reboots when line N arrives: state lost, ``start`` banner
silent_reset    the same without the banner (a host must notice from the line numbers)
resin_out       the vat runs dry when layer N starts: an error, then halted
=============== =========================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FAULT_KINDS = frozenset({
    "corrupt", "corrupt_every", "drop_ok", "resend", "dup_resend", "busy", "disconnect", "halt", "hang",
    "reset", "silent_reset", "resin_out",
})


@dataclass(frozen=True)
class Fault:
    kind: str
    at: int
    arg: float = 0.0


def parse_faults(spec: str) -> tuple[Fault, ...]:
    """``"corrupt@12,busy@40:1.5"`` -> faults; ``ValueError`` names a bad item."""
    out: list[Fault] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        kind, sep, rest = item.partition("@")
        if not sep or kind not in FAULT_KINDS:
            raise ValueError(f"fault {item!r}: expected kind@N[:arg] with kind in {sorted(FAULT_KINDS)}")
        at, _, arg = rest.partition(":")
        try:
            fault = Fault(kind, int(at), float(arg) if arg else 0.0)
        except ValueError:
            raise ValueError(f"fault {item!r}: N must be an integer and arg a number") from None
        if fault.at < 0 or (kind == "corrupt_every" and fault.at < 1):
            raise ValueError(f"fault {item!r}: N out of range")
        out.append(fault)
    return tuple(out)


@dataclass(frozen=True)
class MockConfig:
    """How the simulated laser-SLA controller behaves.

    ``rx_buffer``: receive buffer in bytes (bytes beyond it are dropped, or ``overflow="error"``).
    ``bufsize``: command queue slots (Marlin ``BUFSIZE``). ``baud``: emulated line rate (bytes move from
    the wire into the receive buffer at baud/10 per second); 0 = unlimited. ``exposure_s``: beam time per
    layer, times ``exposure_scale`` (tests use 0.001); moves take distance/feed times the same scale.
    """

    name: str = "sim-laser"
    serial_number: str = "MOCK-0001"
    rx_buffer: int = 127
    bufsize: int = 4
    baud: int = 0
    advanced_ok: bool = False
    ok_after_resend: bool = True
    exposure_s: float = 2.0
    exposure_scale: float = 1.0
    busy_interval_s: float = 2.0
    overflow: str = "drop"
    faults: tuple[Fault, ...] = field(default=())

    def __post_init__(self) -> None:
        if not 16 <= self.rx_buffer <= 1 << 20:
            raise ValueError(f"rx_buffer {self.rx_buffer} out of range 16..1048576")
        if not 1 <= self.bufsize <= 64:
            raise ValueError(f"bufsize {self.bufsize} out of range 1..64")
        if self.baud < 0 or self.exposure_scale < 0 or self.exposure_s < 0 or self.busy_interval_s <= 0:
            raise ValueError("baud, exposure_s, exposure_scale must be >= 0 and busy_interval_s > 0")
        if self.overflow not in ("drop", "error"):
            raise ValueError(f"overflow {self.overflow!r}: use 'drop' or 'error'")

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> MockConfig:
        """Keys are the field names (``busy_interval`` is accepted for ``busy_interval_s``)."""
        known = {f.name: f for f in fields(cls)}
        kw: dict[str, Any] = {}
        for key, value in doc.items():
            name = {"busy_interval": "busy_interval_s", "serial": "serial_number"}.get(key, key)
            if name not in known:
                raise ValueError(f"unknown mock printer option {key!r}")
            kw[name] = _coerce(name, value)
        return cls(**kw)

    @classmethod
    def from_url(cls, url: str) -> MockConfig:
        """``mockprinter://NAME?rx_buffer=127&exposure_scale=0.001&faults=corrupt@12``."""
        parts = urlsplit(url)
        if parts.scheme != "mockprinter":
            raise ValueError(f"expected a mockprinter:// URL, got {url!r}")
        doc: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.netloc:
            doc["name"] = parts.netloc
        return cls.from_dict(doc)

    def with_faults(self, spec: str) -> MockConfig:
        return replace(self, faults=self.faults + parse_faults(spec))


_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _coerce(name: str, value: Any) -> Any:
    if name == "faults":
        return parse_faults(value) if isinstance(value, str) else tuple(value)
    if name in ("name", "serial_number", "overflow"):
        return str(value)
    if name in ("advanced_ok", "ok_after_resend"):
        if isinstance(value, bool):
            return value
        if str(value).lower() not in _BOOLS:
            raise ValueError(f"{name}: expected a boolean, got {value!r}")
        return _BOOLS[str(value).lower()]
    if name in ("rx_buffer", "bufsize", "baud"):
        return int(value)
    return float(value)
