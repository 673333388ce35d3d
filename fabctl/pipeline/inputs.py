"""What the orient, support and later stages read for one case, and the hashes that key their artifacts.

Keys hash exactly the settings a stage reads, so an edit reruns exactly the stages it affects: orientation
reads the process profile's ``orient`` and ``protect`` settings, the support settings that shape its cost
model (``ORIENT_SUPPORT_FIELDS``) and the printer's build volume; support reads the oriented part and the
``support``, ``protect`` and ``proof`` settings. Printer and resin edits that do not change those (an
exposure, a transport URL) leave both artifacts valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fabctl import __version__, intake, profiles
from fabctl.artifacts import ArtifactCache, input_hash
from fabctl.case import DESIGN_FILE, PLAN_FILE, SKIN_FILE, CaseStore
from fabctl.db import Database, open_db
from fabctl.errors import CheckFailed
from fabctl.mesh.io import read_mesh
from fabctl.mesh.protect import Protection, protected_faces
from fabctl.mesh.types import MeshInput
from fabctl.plan import Plan, load_plan
from fabctl.process import ProcessProfile, load_process
from fabctl.profiles import PrinterProfile

#: support settings the orientation cost model reads (fabctl/mesh/orient.py); the others only shape supports
ORIENT_SUPPORT_FIELDS = ("area_per_point_mm2", "base_diameter_mm", "critical_angle_deg", "head_length_mm",
                         "object_elevation_mm", "pad_brim_mm", "pad_thickness_mm")


@dataclass
class CaseInputs:
    """Everything the orient and support stages read for one case, with the hashes that key them."""

    case: str
    revision: int
    design_sha256: str
    plan_sha256: str
    skin_sha256: str | None
    vertices: np.ndarray
    faces: np.ndarray
    plan: Plan
    skin: tuple[np.ndarray, np.ndarray] | None
    process: ProcessProfile
    printer: PrinterProfile
    db: Database
    cache: ArtifactCache
    mesh: MeshInput | None = None

    @property
    def bed(self) -> tuple[float, float, float]:
        b = self.printer.build_volume
        return (b.x_mm, b.y_mm, b.z_mm)

    def orient_key(self) -> str:
        p = self.process
        sup = {k: getattr(p.support, k) for k in ORIENT_SUPPORT_FIELDS}
        return input_hash("orient", __version__, self.design_sha256, self.plan_sha256, self.skin_sha256,
                          p.orient.model_dump(mode="json"), p.protect.model_dump(mode="json"), sup,
                          list(self.bed))

    def support_key(self, orient_key: str) -> str:
        p = self.process
        return input_hash("support", __version__, orient_key, p.support.model_dump(mode="json"),
                          p.protect.model_dump(mode="json"), p.proof.model_dump(mode="json"))


def latest_revision(db: Database, home: Path, case: str) -> intake.Revision:
    """The case's latest design revision (``CaseError``, exit 2, for an unknown case)."""
    return intake.require_case(db, CaseStore(home), case)[-1]


def require_printable(case: str, rev: intake.Revision) -> None:
    if not rev.printable:
        why = "its stored files differ from the trace" if not rev.files_ok else "it awaits approval"
        raise CheckFailed(f"case {case} revision {rev.revision} is not printable: {why}",
                          hint="`fabctl case show` and `fabctl trace verify` tell more")


def inputs_for(db: Database, home: Path, case: str, rev: intake.Revision, printer: PrinterProfile,
               process: ProcessProfile) -> CaseInputs:
    """Read the stored design, plan and skin of ``rev``."""
    store = CaseStore(home)
    d = store.rev_dir(case, rev.revision)
    mesh = read_mesh(d / DESIGN_FILE, "mm")
    plan = load_plan(d / PLAN_FILE)
    skin = None
    if plan.skin_surface and (d / SKIN_FILE).is_file():
        s = read_mesh(d / SKIN_FILE, "mm", check_extent=False)
        skin = (s.vertices, s.faces)
    return CaseInputs(case, rev.revision, rev.design_sha256, rev.plan_sha256, rev.skin_sha256, mesh.vertices,
                      mesh.faces, plan, skin, process, printer, db, ArtifactCache(store.case_dir(case)), mesh)


def load_inputs(home: Path, case: str, printer_id: str | None, process_id: str) -> CaseInputs:
    """The latest design revision of ``case``; refuses (exit 3) a revision that is not printable."""
    db = open_db(home)
    rev = latest_revision(db, home, case)
    require_printable(case, rev)
    printer = profiles.printer(printer_id or profiles.DEFAULT_PRINTER)
    return inputs_for(db, home, case, rev, printer, load_process(process_id))


def protection_of(inp: CaseInputs) -> Protection:
    return protected_faces(inp.vertices, inp.faces, inp.plan, inp.process.protect, inp.skin)
