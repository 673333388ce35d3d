"""The gates before anything reaches a printer: one pure function over the facts collected for a job.

``check(facts)`` returns the first refusal in a fixed order (``GATES``) or ``None``. A fact that is not known
yet (``None``) skips its gate, so the runner can call ``check`` after every stage and stop as early as
possible; ``check(facts, final=True)`` treats a missing fact as a refusal, and is what runs last before the
transport (the direct print and the queue daemon alike). The function reads no files, database or clock:
the caller collects the facts (``today`` included), so the daemon and the CLI decide identically.

Decisions:

* resin lot: a lot is usable through its expiry date (refused when ``today > expires_on``). A demo resin
  (``clinical_use = false``) printed without ``--lot`` uses the built-in lot ``DEMO``, which never expires;
  parts in a demo resin are never released for a patient anyway. A named lot is always checked.
* printer calibration: any recorded calibration or maintenance whose due date is before today refuses; a
  real printer (``simulated = false``) with no calibration recorded refuses; a simulated printer may have
  none recorded (an overdue one still refuses).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

GATES = ("design_revision", "resin_technology", "resin_lot", "layer_height", "printer_calibration",
         "part_fit", "validation", "protected_faces")
DEMO_LOT = "DEMO"


@dataclass(frozen=True)
class Refusal:
    gate: str
    message: str
    hint: str


@dataclass
class Facts:
    """What the gates look at. ``None`` means not known yet."""

    case: str
    printer_id: str
    printer_technology: str
    printer_simulated: bool
    resin_id: str
    resin_technologies: Sequence[str]
    today: date
    resin_demo: bool = False                   # clinical_use = false: the built-in DEMO lot is allowed
    revision: int | None = None
    registered_design_sha256: str | None = None
    disk_design_sha256: str | None = None
    awaiting_approval: bool = False
    lot: str | None = None
    lot_expires_on: str | None = None          # None with a lot given: the lot is not registered
    printer_layer_heights_mm: Sequence[float] = ()
    resin_layer_heights_mm: Sequence[float] = ()
    dues: Mapping[str, str] = field(default_factory=dict)   # kind -> due date (ISO), latest entry
    fits: bool | None = None
    fit_detail: str = ""
    validation_ok: bool | None = None
    validation_failed: Sequence[str] = ()
    protected_contacts: int | None = None
    unsupported_islands: int | None = None


def calibration_problem(printer_id: str, simulated: bool, dues: Mapping[str, str], today: date) -> str | None:
    """Why the printer may not print today (overdue or never calibrated), or None."""
    for kind in sorted(dues):
        if date.fromisoformat(dues[kind]) < today:
            return (f"printer {printer_id} {kind} overdue: was due {dues[kind]}, today is {today.isoformat()} "
                    "(limit: on or before the due date)")
    if "calibration" not in dues and not simulated:
        return f"printer {printer_id} has no calibration recorded (required for a printer that is not simulated)"
    return None


def _design(f: Facts) -> Refusal | None:
    if f.registered_design_sha256 is None or f.disk_design_sha256 is None:
        return None
    if f.disk_design_sha256 != f.registered_design_sha256:
        return Refusal("design_revision", f"design bytes of case {f.case} revision {f.revision} differ from the "
                       f"registered revision (sha256 {f.disk_design_sha256[:12]} on disk, "
                       f"{f.registered_design_sha256[:12]} registered)",
                       "run `fabctl trace verify`; register the intended design as a new revision")
    if f.awaiting_approval:
        return Refusal("design_revision", f"case {f.case} revision {f.revision} awaits approval",
                       "a repaired revision needs `fabctl repair CASE --approve-by ID` first")
    return None


def _technology(f: Facts) -> Refusal | None:
    if f.printer_technology in f.resin_technologies:
        return None
    return Refusal("resin_technology", f"resin {f.resin_id} is not for {f.printer_technology} printers "
                   f"({f.printer_id}; the resin allows {', '.join(f.resin_technologies) or 'none'})",
                   "choose a resin made for this printer (--resin ID)")


def _lot(f: Facts) -> Refusal | None:
    if f.lot is None:
        return Refusal("resin_lot", f"no lot given for resin {f.resin_id} (required for a clinical resin)",
                       "pass --lot LOT (registered with `fabctl resin lot add`)")
    if f.lot == DEMO_LOT and f.lot_expires_on is None and f.resin_demo:
        return None
    if f.lot_expires_on is None:
        return Refusal("resin_lot", f"resin {f.resin_id} lot {f.lot} is not registered",
                       f"register it: fabctl resin lot add {f.resin_id} {f.lot} --expires DATE")
    if f.today > date.fromisoformat(f.lot_expires_on):
        return Refusal("resin_lot", f"resin {f.resin_id} lot {f.lot} expired on {f.lot_expires_on} "
                       f"(today {f.today.isoformat()}; limit: on or before the expiry date)",
                       "use a lot within its expiry date (fabctl resin lot ls)")
    return None


def _layer(f: Facts) -> Refusal | None:
    if not f.printer_layer_heights_mm or not f.resin_layer_heights_mm:
        return None
    both = {round(h, 6) for h in f.printer_layer_heights_mm} & {round(h, 6) for h in f.resin_layer_heights_mm}
    if both:
        return None
    show = lambda hs: ", ".join(f"{h:g}" for h in sorted(hs))  # noqa: E731
    return Refusal("layer_height", f"no layer height allowed by resin {f.resin_id} ({show(f.resin_layer_heights_mm)}"
                   f" mm) is offered by printer {f.printer_id} ({show(f.printer_layer_heights_mm)} mm)",
                   "choose a resin whose IFU allows one of the printer's layer heights")


def _calibration(f: Facts) -> Refusal | None:
    why = calibration_problem(f.printer_id, f.printer_simulated, f.dues, f.today)
    if why is None:
        return None
    return Refusal("printer_calibration", why,
                   f"calibrate the printer, then record it: fabctl printer calibrate {f.printer_id} --due DATE")


def _fit(f: Facts) -> Refusal | None:
    if f.fits is None or f.fits:
        return None
    return Refusal("part_fit", f"the part does not fit printer {f.printer_id}: {f.fit_detail}",
                   "choose a printer with a larger build volume (--printer ID)")


def _validation(f: Facts) -> Refusal | None:
    if f.validation_ok is None or f.validation_ok:
        return None
    return Refusal("validation", f"validation of case {f.case} revision {f.revision} failed: "
                   f"{', '.join(f.validation_failed) or 'an error check failed'}",
                   f"fabctl validate {f.case} shows where")


def _protected(f: Facts) -> Refusal | None:
    if f.protected_contacts is None:
        return None
    if f.protected_contacts > 0 or (f.unsupported_islands or 0) > 0:
        return Refusal("protected_faces", f"supports of case {f.case} touch a protected face: "
                       f"{f.protected_contacts} protected contacts, {f.unsupported_islands or 0} unsupported "
                       "islands (limit 0 and 0)", f"fabctl support {f.case} --render DIR shows them")
    return None


_CHECKS = {"design_revision": _design, "resin_technology": _technology, "resin_lot": _lot,
           "layer_height": _layer, "printer_calibration": _calibration, "part_fit": _fit,
           "validation": _validation, "protected_faces": _protected}
_NEEDED = {"design_revision": ("registered_design_sha256", "disk_design_sha256"), "part_fit": ("fits",),
           "validation": ("validation_ok",), "protected_faces": ("protected_contacts",)}


def check(facts: Facts, *, final: bool = False) -> Refusal | None:
    """The first refusal in ``GATES`` order, or None. ``final``: a fact still unknown refuses too."""
    for gate in GATES:
        if final and any(getattr(facts, n) is None for n in _NEEDED.get(gate, ())):
            return Refusal(gate, f"gate {gate} was not evaluated for case {facts.case} (a fact is missing)",
                           "this is a bug in the pipeline; nothing was sent")
        r = _CHECKS[gate](facts)
        if r is not None:
            return r
    return None
