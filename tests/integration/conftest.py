"""Integration fixtures shared by the serial-transport tests: make ``hardware/``'s ``mockprinter`` importable.

Until ``pip install -e hardware`` is part of the dev setup, the source tree's ``hardware/`` folder is put on
``sys.path`` when ``mockprinter`` cannot be imported.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HARDWARE = Path(__file__).resolve().parents[2] / "hardware"

if importlib.util.find_spec("mockprinter") is None:
    sys.path.insert(0, str(HARDWARE))
