"""Millimetres everywhere inside; conversion only at the edges, and never a guess.

A mesh file either states its unit (3MF's ``unit=``) or the user declares one (``--units``). A size that makes
the declared unit implausible for a guide plate is refused with a hint naming the units that would fit; it is
never silently rescaled.
"""

from __future__ import annotations

from fabctl.errors import UnitsError

#: factor that turns one of the unit into millimetres
MM_PER_UNIT: dict[str, float] = {
    "um": 1e-3,
    "mm": 1.0,
    "cm": 10.0,
    "m": 1000.0,
    "in": 25.4,
    "ft": 304.8,
}

#: 3MF ``<model unit=...>`` names (3MF core spec §3.4) to ours
THREEMF_UNITS: dict[str, str] = {
    "micron": "um",
    "millimeter": "mm",
    "centimeter": "cm",
    "meter": "m",
    "inch": "in",
    "foot": "ft",
}

#: the units a user may declare on the command line
CLI_UNITS = ("mm", "cm", "m", "in")

#: a guide plate's largest extent lies in this range (a few mm to a 300 mm build)
GUIDE_EXTENT_MIN_MM = 5.0
GUIDE_EXTENT_MAX_MM = 300.0


def mm_per(unit: str) -> float:
    """Millimetres in one ``unit``; raises ``UnitsError`` for a unit we do not know."""
    try:
        return MM_PER_UNIT[unit]
    except KeyError:
        known = ", ".join(MM_PER_UNIT)
        raise UnitsError(f"unknown unit {unit!r}", hint=f"use one of: {known}") from None


def check_guide_extent(max_extent_mm: float, unit: str) -> None:
    """Refuse a part whose largest extent (already in mm) is implausible for a guide.

    ``unit`` is the unit the extent was converted from; the hint names the declared units that would put
    the part in range, so a metre-scale or inch-scale file is caught, never rescaled behind the user's back.
    """
    lo, hi = GUIDE_EXTENT_MIN_MM, GUIDE_EXTENT_MAX_MM
    if lo <= max_extent_mm <= hi:
        return
    raw = max_extent_mm / mm_per(unit)
    fits = [u for u in CLI_UNITS if lo <= raw * MM_PER_UNIT[u] <= hi]
    hint = (
        f"if the file is in {' or '.join(fits)}, pass --units {fits[0]}"
        if fits
        else "no common unit makes this a plausible guide; check the file"
    )
    raise UnitsError(
        f"largest extent {max_extent_mm:.4g} mm (read as {unit}) is outside the plausible range for a "
        f"guide plate, {lo:g} to {hi:g} mm",
        hint=hint,
    )
