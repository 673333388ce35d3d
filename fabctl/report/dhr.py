"""The device history record of one case, collected from its trace (clinical-traceability.md §2).

``collect`` reads the case's events as payload dicts by type and fills one ``RecordField`` per §2 checklist
row: its value with the event(s) it came from, or ``n/a`` and why. ``SOURCES`` is the one table from event
types to checklist fields: a new event type is mapped by adding a line there. Fields fabctl does not hold by
design (order reference, imaging) carry their reason in ``NOT_HELD``. The PDF, the HTML and the label are
drawn from the ``DeviceHistoryRecord`` this returns, so they always say the same thing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from fabctl import __version__, intake
from fabctl.case import PLAN_FILE, CaseStore, sha256_file
from fabctl.db import Database
from fabctl.trace import log
from fabctl.trace.log import TraceEvent


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordField(_M):
    id: str
    key: str
    label: str
    value: str | None = None
    na_reason: str | None = None
    source: list[int] = []

    @property
    def text(self) -> str:
        return self.value if self.value is not None else f"n/a: {self.na_reason}"


class Section(_M):
    id: str
    title: str
    fields: list[RecordField]


class CheckRow(_M):
    name: str
    passed: bool
    severity: str
    value: str
    limit: str


class Picture(_M):
    key: str
    title: str
    path: str | None = None
    sha256: str | None = None
    missing: str | None = None


class SignatureRow(_M):
    """A Part 11-style signature in the record: who, when, what it means, the hash it is bound to."""

    what: str
    user_id: str
    role: str
    signed_utc: str
    meaning: str
    signed_sha256: str
    case_seq: int

    @property
    def who(self) -> str:
        return self.user_id if self.role == "-" else f"{self.user_id} ({self.role})"


class EventRow(_M):
    case_seq: int
    at_utc: str
    actor: str
    type: str
    hash: str


class LabelInfo(_M):
    case_id: str
    serial: str | None
    level: str | None
    side: str | None
    sterile_status: str
    use_by: str
    released: bool


class DeviceHistoryRecord(_M):
    case_id: str
    generated_utc: str
    fabctl_version: str
    released: bool
    status: str
    trace_ok: bool
    trace_problems: list[str]
    head_hash: str
    head_case_seq: int
    sections: list[Section]
    checks: list[CheckRow]
    pictures: list[Picture]
    signatures: list[SignatureRow]
    events: list[EventRow]
    label: LabelInfo

    def fields(self) -> list[RecordField]:
        return [f for s in self.sections for f in s.fields]


class Facts:
    """A case's events by type (latest wins), plus its stored plan (checked against the trace's hash)."""

    def __init__(self, case_id: str, events: list[TraceEvent], plan: dict | None) -> None:
        self.case_id, self.events, self.plan = case_id, events, plan
        self.by_type: dict[str, list[TraceEvent]] = {}
        for e in events:
            self.by_type.setdefault(e.type, []).append(e)

    def last(self, type_: str) -> TraceEvent | None:
        evs = self.by_type.get(type_)
        return evs[-1] if evs else None


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _limit(value: object, lim: dict | None, unit: str) -> str:
    if not lim:
        return f"{_fmt(value)} {unit}"
    return (f"{_fmt(value)} {unit} (limit {_fmt(lim.get('min'))}-{_fmt(lim.get('max'))} {unit}, "
            f"{lim.get('status')}{', ' + lim['source'] if lim.get('source') else ''})")


P = dict
Extract = Callable[[P], str | None]

#: checklist field id -> [(event type, value from its payload)], first type present wins (latest event).
SOURCES: dict[str, list[tuple[str, Extract]]] = {
    "A2": [("device.assigned", lambda p: ", ".join(p["serials"]))],
    "B4": [
        ("design.approved",
         lambda p: f"revision {p['revision']}; approved by {p['approved_by']}; meaning approval"),
        ("design.registered",
         lambda p: f"revision {p['revision']} ({p['origin']}); "
         + ("awaiting approval" if p["needs_approval"] else "intake revision, no approval step needed")),
    ],
    "B5": [("design.registered",
            lambda p: f"sha256 {p['design_sha256']}; source {p['source_format']} "
            f"sha256 {p['source_sha256']}; "
            f"{p['units']} ({p['units_source']}); {p['triangles']} facets; bbox {_fmt(p['bbox_mm'])} mm")],
    "B6": [("validation.recorded",
            lambda p: ("PASSED" if p["ok"] else "FAILED: " + ", ".join(p["failed"]))
            + f" on revision {p['revision']}; min wall {_fmt(p['min_wall_thickness_mm'])} mm; resin "
            f"{p['resin']}, printer {p['printer']}; {len(p['checks'])} checks (table below)")],
    "C1": [("device.assigned", lambda p: f"{p['build_id']} (job {p['job_id']})")],
    "C2": [("print.started", lambda p: f"fabctl {p['fabctl_version']} (built-in slicer and job writer)"),
           ("slice.recorded", lambda p: f"fabctl {p['fabctl_version']} (built-in slicer and job writer)")],
    "C3": [("slice.recorded",
            lambda p: f"printer {p['printer_id']}, resin {p['resin_id']}, layer {_fmt(p['layer_height_mm'])} "
            f"mm (first {_fmt(p['first_layer_height_mm'])} mm), {p['layer_count']} layers, {p['job_format']}"
            + ("; AS-IS inspection slice, no supports" if p["as_is"] else ""))],
    "C3h": [
        ("print.started",
         lambda p: f"printer profile {p['printer_profile_sha256']}; "
         f"resin profile {p['resin_profile_sha256']}"),
        ("slice.recorded",
         lambda p: f"printer profile {p['printer_profile_sha256']}; "
         f"resin profile {p['resin_profile_sha256']}"),
    ],
    "C3p": [("orient.recorded", lambda p: f"process {p['process_profile']} sha256 {p['process_sha256']}")],
    "C4": [("orient.recorded",
            lambda p: f"up axis in design frame {_fmt([round(x, 4) for x in p['up_design']])}; "
            f"{p['feasible_candidates']}/{p['candidates_evaluated']} candidates feasible; "
            f"printer {p['printer']}")],
    "C5": [("slice.recorded",
            lambda p: f"x {p['placement_mm'][0]:g}, y {p['placement_mm'][1]:g}, "
            f"z {p['placement_mm'][2]:g} mm")],
    "C6": [("device.assigned",
            lambda p: f"{p['quantity_made']} guide(s) of this case on build {p['build_id']}")],
    "C7": [("support.recorded",
            lambda p: f"{p['support_points']} support points; protected contacts {p['protected_contacts']}; "
            f"unsupported islands {p['unsupported_islands']}; proof {p['proof']}")],
    "C8": [("print.started", lambda p: f"sha256 {p['job_sha256']} ({p['job_format']})"),
           ("slice.recorded",
            lambda p: f"sha256 {p['job_sha256']} ({p['job_format']}; sliced, not printed)")],
    "D1": [("print.started",
            lambda p: f"{p['printer_id']}: {p['printer_model']}, serial {p['printer_serial']}, "
            f"via {p['transport']}")],
    "D2": [("print.started", lambda p: p["printer_firmware"])],
    "E1": [("print.started", lambda p: f"{p['resin_id']} (profile sha256 {p['resin_profile_sha256']})"),
           ("slice.recorded", lambda p: f"{p['resin_id']} (planned; not printed)")],
    "E2": [("print.finished", lambda p: p["resin_lot"]), ("print.started", lambda p: p["resin_lot"])],
    "E3": [("print.started",
            lambda p: f"lot expires {p['resin_lot_expires']}; opened-on date not recorded")],
    "F2": [("print.finished", lambda p: p["state"] + (f" ({p['reason']})" if p.get("reason") else "")),
           ("print.refused", lambda p: f"refused before printing at gate {p['gate']}: {p['message']}")],
    "G1": [("postprocess.recorded",
            lambda p: f"{p['wash_solvent']} (IFU: {p['wash_solvent_ifu']}), "
            + _limit(p["wash_min"], p["wash_min_limit"], "min"))],
    "G2": [("postprocess.recorded", lambda p: _limit(p["dry_min"], p["dry_min_limit"], "min"))],
    "G3": [("postprocess.recorded",
            lambda p: f"{p['cure_wavelength_nm']} nm; "
            + _limit(p["cure_temp_c"], p["cure_temp_c_limit"], "°C") + "; "
            + _limit(p["cure_min"], p["cure_min_limit"], "min")
            + (f"; unit {p['cure_unit']}" if p.get("cure_unit") else ""))],
    "G4": [("postprocess.recorded", lambda p: p.get("support_removal") or "method not stated")],
    "H1": [("inspection.recorded", lambda p: p["visual"])],
    "H2": [("inspection.recorded",
            lambda p: f"needle go/no-go {p['needle_go']}; fit {p['fit']}; channel "
            + (f"{_fmt(p['channel_mm'])} mm" if p.get("channel_mm") is not None else "not measured")
            + f" (min {_fmt(p['channel_min_mm'])} mm for needle OD {_fmt(p['needle_od_mm'])} mm)"
            + f"; after load {p['load_id']} result {p['load_result_utc']}")],
    "H4": [("inspection.recorded", lambda p: p.get("ncr_ref") or "none")],
    "J1": [("sterilization.load_added",
            lambda p: f"{p['load_id']}: {p['method']} {_fmt(p['temp_c'])} °C {_fmt(p['hold_min'])} min; "
            f"sterilizer {p['sterilizer_id']} cycle {p['cycle_no']}; {len(p['contents'])} item(s): "
            + ", ".join(f"{c['case_id']}/{c['serial']}" for c in p["contents"]))],
    "J2": [("sterilization.load_result",
            lambda p: f"CI {p['ci']}; BI {p['bi']}; {p['status']}"
            + (f"; quarantined {', '.join(q['serial'] for q in p['quarantined'])}"
               if p["quarantined"] else ""))],
    "J3": [("sterilization.load_released",
            lambda p: f"released by {p['released_by']} at {p['released_utc']}; "
            f"signed sha256 {p['signature_sha256']}")],
    "K2": [("release.signed",
            lambda p: f"{p['user_id']} ({p['role']}) at {p['signed_utc']}; meaning {p['meaning']}; "
            f"signed record sha256 {p['record_sha256']}")],
    "K4": [("release.signed", lambda p: p["retention_until"])],
}

#: the §2 checklist in order: (id, key, label, reason when no event holds it)
CHECKLIST: list[tuple[str, str, list[tuple[str, str, str, str]]]] = [
    ("A", "Identity and order", [
        ("A1", "case_id", "Case id (pseudonymous)", ""),
        ("A2", "device_serial", "Device serial",
         "no device.assigned event: the case has not been printed to done"),
        ("A3", "device_type", "Device type and intended use", ""),
        ("A4", "anatomic_target", "Anatomic target (level, side)",
         "the stored plan is missing or does not match the trace"),
        ("A5", "order_ref", "Order reference, prescriber",
         "fabctl holds no order or prescriber: they stay in the hospital's order system, "
         "linked by the case id"),
        ("A6", "regulatory_basis", "Regulatory basis",
         "set by the hospital's quality owner; not a fabctl field"),
        ("A7", "udi", "UDI", "no UDI is issued: the device serial (A2) is the production identifier"),
    ]),
    ("B", "Source data and design", [
        ("B1", "imaging_ref", "Imaging reference", "fabctl receives the design, never the CT; the imaging "
         "reference stays in the planning system"),
        ("B2", "imaging_params", "Imaging parameters", "not received with the design (see B1)"),
        ("B3", "design_software", "Design software and version", "the design file carries no trustworthy "
         "software record (its free-text header is scrubbed at intake)"),
        ("B4", "design_revision", "Design revision and approval", "no design.registered event"),
        ("B5", "design_file_sha256", "Design file sha256, format, units, facets",
         "no design.registered event"),
        ("B6", "mesh_checks", "Validation result", "the design was not validated (`fabctl validate CASE`)"),
        ("B7", "instrument_spec", "Instrument (needle) and channel", "the stored plan is missing"),
    ]),
    ("C", "Build preparation", [
        ("C1", "build_id", "Build id", "not printed: no build"),
        ("C2", "slicer_version", "Slicer and software version", "not sliced"),
        ("C3", "print_profile", "Print settings (printer, resin, layer)", "not sliced (`fabctl slice`)"),
        ("C3h", "profile_hashes", "Printer and resin profile sha256", "not sliced or printed"),
        ("C3p", "process_profile", "Process profile sha256", "not oriented (`fabctl orient`)"),
        ("C4", "orientation", "Orientation", "not oriented (`fabctl orient`)"),
        ("C5", "build_position", "Build position", "not sliced"),
        ("C6", "packing", "Packing (parts in the build)", "not printed: no build"),
        ("C7", "supports", "Supports and proof", "no supports generated (`fabctl support`)"),
        ("C8", "slice_file_sha256", "Job file sha256 and format", "not sliced"),
    ]),
    ("D", "Machine and environment", [
        ("D1", "printer", "Printer make, model, serial", "not printed: no print.started event"),
        ("D2", "printer_firmware", "Printer firmware", "not printed: no print.started event"),
        ("D3", "consumable_serials", "Tank / platform serials", "not recorded: printer profiles have no "
         "consumable serials"),
        ("D4", "calibration_status", "Calibration status",
         "not recorded in the trace by this fabctl version"),
        ("D5", "room_conditions", "Room conditions", "not measured by fabctl"),
    ]),
    ("E", "Material", [
        ("E1", "material", "Resin", "not printed"),
        ("E2", "material_lot", "Resin lot", "not printed"),
        ("E3", "material_expiry", "Resin lot expiry", "not printed"),
        ("E4", "material_coa_ref", "Certificate of analysis", "not recorded by fabctl"),
        ("E5", "resin_in_tank_age", "Resin in tank age", "not recorded by fabctl"),
    ]),
    ("F", "Print execution", [
        ("F1", "print_times", "Print start and end (UTC)", "not printed"),
        ("F2", "print_result", "Print outcome", "no print.finished event"),
        ("F3", "operator_id", "Print operator(s)", "not printed"),
    ]),
    ("G", "Post-processing", [
        ("G1", "wash", "Wash", "no postprocess.recorded event"),
        ("G2", "dry", "Dry", "no postprocess.recorded event"),
        ("G3", "post_cure", "Post-cure", "no postprocess.recorded event"),
        ("G4", "support_removal", "Support removal", "no postprocess.recorded event"),
        ("G5", "inserts", "Inserts", "the plan has no inserts: a one-piece resin guide"),
        ("G6", "pre_sterilization_cleaning", "Pre-sterilization cleaning", "not recorded as its own step"),
    ]),
    ("H", "Inspection and acceptance", [
        ("H1", "visual_inspection", "Visual inspection", "no inspection.recorded event"),
        ("H2", "dimensional_check", "Needle go/no-go, fit, channel", "no inspection.recorded event"),
        ("H3", "coupon_results", "Coupon results", "no test coupon is printed by this process"),
        ("H4", "nonconformance_ref", "Nonconformance report", "no inspection.recorded event"),
    ]),
    ("I", "Labeling and packaging", [
        ("I1", "label_content", "Label content", ""),
        ("I2", "packaging", "Packaging", "pouch type and lot are not recorded by fabctl"),
    ]),
    ("J", "Sterilization", [
        ("J1", "sterilization_load_id", "Sterilization load (id, sterilizer, cycle, parameters)",
         "not added to a sterilization load"),
        ("J2", "sterilization_result", "Chemical / biological indicators", "no load result recorded"),
        ("J3", "load_release", "Load release", "the load is not released"),
    ]),
    ("K", "Release and use", [
        ("K1", "quantity", "Quantity made / released", ""),
        ("K2", "release_signature", "Release signature (who, when, meaning, signed hash)", "NOT RELEASED"),
        ("K3", "delivered_to", "Delivered to / used", "hand-off to theatre is recorded outside fabctl"),
        ("K4", "retention_until", "Retain record until", "set at release; NOT RELEASED"),
    ]),
    ("L", "Record integrity", [
        ("L1", "audit_log", "Audit log", ""),
        ("L2", "record_hash", "Trace verification and head hash", ""),
    ]),
]


def _plan(store: CaseStore, facts: Facts) -> dict | None:
    reg = facts.last("design.registered")
    if reg is None:
        return None
    path = store.rev_dir(facts.case_id, reg.payload["revision"]) / PLAN_FILE
    if not path.is_file() or sha256_file(path) != reg.payload["plan_sha256"]:
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _computed(f: Facts, label: LabelInfo, trace_ok: bool, problems: list[str]) -> dict[str, tuple]:
    """Fields drawn from more than one event or from the stored plan: id -> (value, source seqs)."""
    out: dict[str, tuple] = {}
    created = f.last("case.created")
    out["A1"] = (f.case_id, [created.case_seq] if created else [])
    reg = f.last("design.registered")
    plan_src = [reg.case_seq] if reg else []
    if f.plan:
        p = f.plan
        out["A3"] = (f"patient-specific PVP needle guide plate, skin-contact, single use; "
                     f"{p['side']} trajectory at {p['vertebral_level']}", plan_src)
        out["A4"] = (f"{p['vertebral_level']}, {p['side']}", plan_src)
        out["B7"] = (f"{p['needle_gauge']}G needle, OD {_fmt(p['needle_od_mm'])} mm; channel "
                     f"{_fmt(p['channel_diameter_mm'])} mm, runway {_fmt(p['slot_length_mm'])} mm; "
                     f"target depth {_fmt(p['target_depth_mm'])} mm "
                     "(plan.json, sha256 checked against the trace)",
                     plan_src)
    else:
        out["A3"] = ("patient-specific PVP needle guide plate, skin-contact, single use", [])
    queued = [e for e in f.by_type.get("job.state", []) if e.payload.get("to_state") == "queued"]
    started, done = f.last("print.started"), f.last("print.finished")
    times = ([f"queued {queued[-1].at_utc}"] if queued else []) + (
        [f"started {started.payload['started_utc']}"] if started else []) + (
        [f"finished {done.payload['finished_utc']}"] if done else ["not finished"] if started else [])
    if started or done:
        out["F1"] = ("; ".join(times), [e.case_seq for e in (queued[-1:] + [started, done]) if e])
    runs = [e for t in ("print.started", "print.finished") for e in f.by_type.get(t, [])]
    if runs:
        out["F3"] = (", ".join(sorted({e.actor for e in runs})), [e.case_seq for e in runs])
    made = f.by_type.get("device.assigned", [])
    rel = f.last("release.signed")
    n_made = sum(e.payload["quantity_made"] for e in made)
    n_rel, extra = 0, ""
    if rel and label.released:
        rec = rel.payload.get("record", {})
        qty = rec.get("quantity") if isinstance(rec.get("quantity"), dict) else {}
        n_rel = qty.get("released", len(rec.get("serials") or []))
        shown = ("made", "released", "scrapped")
        extra = ", ".join(f"{k} {v}" for k, v in qty.items() if k not in shown and v)
    scrapped = f.by_type.get("device.scrapped", [])
    out["K1"] = (f"made {n_made}; released {n_rel}" + ("" if rel else " (not released)")
                 + (f"; scrapped {len(scrapped)} ({', '.join(e.payload['serial'] for e in scrapped)})"
                    if scrapped else "") + (f"; {extra}" if extra else ""),
                 [e.case_seq for e in made + scrapped] + ([rel.case_seq] if rel else []))
    out["I1"] = (f"case {label.case_id}; serial {label.serial or 'none'}; {label.level or '?'} "
                 f"{label.side or '?'}; single use; {label.sterile_status}; use by {label.use_by}; "
                 "QR code of the serial (file <case>-label.png)", [])
    out["L1"] = (f"{len(f.events)} events, append-only and hash-chained (table at the end)", [])
    head = f.events[-1] if f.events else None
    verdict = "trace verifies: every hash chain intact, stored files match" if trace_ok else (
        f"TRACE DOES NOT VERIFY: {len(problems)} problem(s); first: {problems[0]}")
    out["L2"] = (f"{verdict}; head event {head.case_seq if head else 0} hash {head.hash if head else '-'}",
                 [head.case_seq] if head else [])
    return out


def _label(f: Facts, trace_ok: bool) -> LabelInfo:
    made = f.last("device.assigned")
    rel = f.last("release.signed")
    result = f.last("sterilization.load_result")
    released_load = f.last("sterilization.load_released")
    added = f.last("sterilization.load_added")
    quarantined = result is not None and result.payload["status"] == "quarantined"
    released = rel is not None and trace_ok and not (quarantined and result.case_seq > rel.case_seq)
    if quarantined:
        sterile = f"QUARANTINED (load {result.payload['load_id']}): DO NOT USE"
    elif released_load is not None:
        p = released_load.payload
        sterile = f"STERILE: {p['method']} {_fmt(p['temp_c'])} °C, load {p['load_id']}"
    elif added is not None:
        sterile = f"NOT STERILE: load {added.payload['load_id']} not released"
    else:
        sterile = "NOT STERILE"
    rec = rel.payload.get("record", {}) if rel else {}
    use_by = rec.get("use_by") or rec.get("sterile_use_by") or "n/a (no use-by recorded; event-related)"
    return LabelInfo(case_id=f.case_id, serial=made.payload["serials"][0] if made else None,
                     level=f.plan["vertebral_level"] if f.plan else None,
                     side=f.plan["side"] if f.plan else None, sterile_status=sterile, use_by=str(use_by),
                     released=released)


def _checks(f: Facts) -> list[CheckRow]:
    v = f.last("validation.recorded")
    if v is None:
        return []
    return [CheckRow(name=c["name"], passed=c["passed"], severity=c["severity"],
                     value="" if c.get("value") is None else _fmt(c["value"]),
                     limit="" if c.get("limit") is None else _fmt(c["limit"])) for c in v.payload["checks"]]


def _signatures(f: Facts) -> list[SignatureRow]:
    out = []
    for e in f.by_type.get("design.approved", []):
        out.append(SignatureRow(what=f"design revision {e.payload['revision']}",
                                user_id=e.payload["approved_by"], role="-", signed_utc=e.at_utc,
                                meaning="approval", signed_sha256=e.payload["design_sha256"],
                                case_seq=e.case_seq))
    for e in f.by_type.get("sterilization.load_released", []):
        out.append(SignatureRow(what=f"sterilization load {e.payload['load_id']}",
                                user_id=e.payload["released_by"], role="-",
                                signed_utc=e.payload["released_utc"], meaning="approval",
                                signed_sha256=e.payload["signature_sha256"], case_seq=e.case_seq))
    for e in f.by_type.get("release.signed", []):
        out.append(SignatureRow(what="release for clinical use", user_id=e.payload["user_id"],
                                role=e.payload["role"], signed_utc=e.payload["signed_utc"],
                                meaning=e.payload["meaning"], signed_sha256=e.payload["record_sha256"],
                                case_seq=e.case_seq))
    return out


#: picture key -> (title, file names to look for, the command that makes it)
PICTURES: list[tuple[str, str, Callable[[str, int], list[str]], str]] = [
    ("thickness", "Wall-thickness map", lambda c, r: [f"{c}-r{r}.png", f"{c}-thickness.png"],
     "fabctl validate {case} --render DIR"),
    ("supports", "Oriented part with supports", lambda c, r: [f"{c}-support.png"],
     "fabctl support {case} --render DIR"),
    ("layers", "Layer preview", lambda c, r: [f"{c}-layers.png", f"{c}-preview.png", f"{c}-r{r}-layers.png"],
     "fabctl print {case} (the job's preview.png) or "
     "fabctl slice {case} ... --preview DIR/{case}-layers.png"),
]


def _job_preview(art: Path, facts: Facts | None) -> Path | None:
    """``preview.png`` of the job artifact the print used (``pipeline.stage`` job key), if it is there."""
    if facts is None:
        return None
    jobs = [e for e in facts.by_type.get("pipeline.stage", []) if e.payload.get("stage") == "job"]
    for e in reversed(jobs):
        p = art / f"job-{e.payload['key']}" / "preview.png"
        if p.is_file():
            return p
    return None


def find_pictures(store: CaseStore, case_id: str, revision: int, dirs: list[Path],
                  facts: Facts | None = None) -> list[Picture]:
    """Each picture from ``dirs`` then the case's artifact folders, or why it is missing."""
    art = store.case_dir(case_id) / "artifacts"
    search = [Path(d) for d in dirs] + ([art, *sorted(p for p in art.iterdir() if p.is_dir())]
                                        if art.is_dir() else [])
    out = []
    for key, title, names, cmd in PICTURES:
        hit = next((d / n for d in search for n in names(case_id, revision) if (d / n).is_file()), None)
        if hit is None and key == "layers":
            hit = _job_preview(art, facts)
        if hit is not None:
            out.append(Picture(key=key, title=title, path=str(hit), sha256=sha256_file(hit)))
        else:
            where = ", ".join(str(d) for d in dirs) or "no --pictures folder given"
            out.append(Picture(key=key, title=title, missing=(
                f"MISSING: no {' or '.join(names(case_id, revision))} in the case's artifacts or in {where}; "
                f"make it with `{cmd.format(case=case_id)}` and pass --pictures DIR")))
    return out


def collect(db: Database, store: CaseStore, case_id: str, picture_dirs: list[Path] | None = None,
            now: datetime | None = None) -> DeviceHistoryRecord:
    """The device history record of ``case_id`` from its trace, store and pictures."""
    intake.require_case(db, store, case_id)
    events = log.events(db, case_id)
    rep = log.verify(db)
    problems = [p.line() for p in rep.problems if p.case_id == case_id]
    problems += [p for p in intake.store_problems(db, store) if p.startswith(f"case {case_id}:")
                 or p.startswith(f"case {case_id} ")]
    trace_ok = not problems
    facts = Facts(case_id, events, None)
    facts.plan = _plan(store, facts)
    label = _label(facts, trace_ok)
    computed = _computed(facts, label, trace_ok, problems)
    sections = []
    for sid, title, rows in CHECKLIST:
        fields = []
        for fid, key, flabel, reason in rows:
            fld = RecordField(id=fid, key=key, label=flabel)
            if fid in computed:
                fld.value, fld.source = computed[fid][0], computed[fid][1]
            for type_, get in SOURCES.get(fid, []):
                ev = facts.last(type_)
                if ev is not None and fld.value is None:
                    fld.value, fld.source = get(ev.payload), [ev.case_seq]
            if fld.value is None:
                fld.na_reason = reason or "not recorded"
            fields.append(fld)
        sections.append(Section(id=sid, title=title, fields=fields))
    reg = facts.last("design.registered")
    head = events[-1]
    status = "RELEASED" if label.released else "DRAFT / NOT RELEASED"
    if not trace_ok:
        status += ": TRACE DOES NOT VERIFY"
    return DeviceHistoryRecord(
        case_id=case_id, generated_utc=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        fabctl_version=__version__, released=label.released, status=status, trace_ok=trace_ok,
        trace_problems=problems, head_hash=head.hash, head_case_seq=head.case_seq, sections=sections,
        checks=_checks(facts),
        pictures=find_pictures(store, case_id, reg.payload["revision"] if reg else 1, picture_dirs or [],
                               facts),
        signatures=_signatures(facts),
        events=[EventRow(case_seq=e.case_seq, at_utc=e.at_utc, actor=e.actor, type=e.type, hash=e.hash)
                for e in events],
        label=label)


def record_sha256(rec: DeviceHistoryRecord) -> str:
    """sha256 of the record's canonical JSON (what the PDF and HTML show)."""
    doc = rec.model_dump(mode="json")
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
