"""From a printer profile to its driver: an explicit table, no plugin loading by name.

``open_printer(profile, **overrides)`` builds (does not connect) the driver for ``profile.transport``.
Network drivers are imported lazily, so a machine without them (or their dependencies) can still stream
over serial. Every driver class offers ``from_profile(transport_settings, **overrides)``.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from fabctl.errors import TransportError
from fabctl.profiles import PrinterProfile
from fabctl.transport.base import Printer

log = logging.getLogger(__name__)

# kind -> (module, class). Explicit: adding a transport is one line here.
DRIVERS: dict[str, tuple[str, str]] = {
    "serial": ("fabctl.transport.serial", "SerialPrinter"),
    "hotfolder": ("fabctl.transport.hotfolder", "HotFolderPrinter"),
    "octoprint": ("fabctl.transport.octoprint", "OctoPrintPrinter"),
    "prusalink": ("fabctl.transport.prusalink", "PrusaLinkPrinter"),
}


def driver_class(kind: str) -> type:
    """The driver class for a transport ``kind``; ``TransportError`` when it is unknown or not installed."""
    if kind not in DRIVERS:
        raise TransportError(f"transport {kind!r} is not known", hint=f"known: {', '.join(sorted(DRIVERS))}")
    module_name, class_name = DRIVERS[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and module_name.startswith(err.name):
            raise TransportError(f"transport {kind!r} is not available") from None
        raise TransportError(f"transport {kind!r} is not available (missing {err.name})") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise TransportError(f"transport {kind!r} is not available ({module_name} has no {class_name})")
    return cls


def open_printer(profile: PrinterProfile, **overrides: Any) -> Printer:
    """The driver for ``profile``'s transport, configured from the profile; ``overrides`` win.

    Serial overrides: ``url``, ``baud``, ``rx_buffer_bytes``, any ``StreamSettings`` field, ``on_status``.
    """
    settings = profile.transport
    cls = driver_class(settings.kind)
    log.debug("printer %s: %s driver", profile.id, settings.kind)
    printer = cls.from_profile(settings, **overrides)
    return printer
