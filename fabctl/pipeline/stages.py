"""The stages of the print pipeline as uniform objects: ``name``, ``key(work)``, ``run(work)`` -> artifact
files, ``load(work, folder, cached)`` -> the stage's results and gate facts into ``Work``.

Each key hashes exactly what its stage reads (fabctl/pipeline/inputs.py explains the orient and support
keys); chaining the previous stage's key makes a change upstream rerun everything below it, and a setting
read only downstream (a resin's exposure: the job file) rerun only the stages that read it.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from fabctl import __version__, intake
from fabctl.artifacts import ArtifactCache, input_hash
from fabctl.db import Database
from fabctl.mesh import layercheck
from fabctl.mesh.report import ValidationReport
from fabctl.mesh.slice import slice_mesh
from fabctl.mesh.validate import validate_details
from fabctl.pipeline import gates, jobfile
from fabctl.pipeline.inputs import CaseInputs, inputs_for
from fabctl.pipeline.orient_support import (
    ProofFailed,
    compute_orient,
    compute_support,
    record_orient,
    record_support,
)
from fabctl.process import ProcessProfile
from fabctl.profiles import PrinterProfile, ResinProfile, profile_hash
from fabctl.slicestack import SliceStack
from fabctl.trace import log
from fabctl.trace.slice_events import SliceRecorded
from fabctl.trace.validation_events import ValidationRecorded

STAGE_NAMES = ("revision", "validate", "orient", "support", "slice", "job")


class GateRefused(Exception):
    """Raised inside a stage when its result is a gate refusal (the runner records and reports it)."""

    def __init__(self, refusal: gates.Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass
class Work:
    """One print's state as the stages fill it in."""

    home: Path
    db: Database
    case: str
    actor: str
    rev: intake.Revision
    printer: PrinterProfile
    resin: ResinProfile
    process: ProcessProfile
    facts: gates.Facts
    cache: ArtifactCache
    layer_height_mm: float | None = None
    inp: CaseInputs | None = None
    keys: dict[str, str] = field(default_factory=dict)
    folders: dict[str, Path] = field(default_factory=dict)
    part: Any = None
    stack: SliceStack | None = None
    job_path: Path | None = None
    job_doc: dict = field(default_factory=dict)


def artifact_sha256(folder: Path) -> str:
    """sha256 over the artifact's files: sorted names with each file's sha256."""
    h = hashlib.sha256(b"fabctl-artifact-manifest-v1\0")
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            h.update(f"{p.name}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def _json(doc: dict) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _geometry(p: PrinterProfile) -> dict:
    """What validation and slicing read of a printer: technology, build volume, raster or laser."""
    return p.model_dump(mode="json", include={"technology", "build_volume", "raster", "laser"})


def revision_key(case: str, rev: intake.Revision) -> str:
    """The revision stage's key: the case, the revision and its files' hashes."""
    return input_hash("revision", __version__, case, rev.revision, rev.design_sha256, rev.plan_sha256,
                      rev.skin_sha256)


def validate_key(case: str, rev: intake.Revision, resin: ResinProfile, printer: PrinterProfile) -> str:
    """The validate stage's key. ``fabctl validate CASE`` stores its report under it too, so a print of the same
    revision with the same resin and printer geometry reuses that validation instead of running it again."""
    return input_hash("validate", __version__, revision_key(case, rev), resin.ifu.model_dump(mode="json"),
                      _geometry(printer))


class RevisionStage:
    """The approved revision: its hashes (the design bytes were checked by the design gate) and inputs."""

    name = "revision"

    def key(self, w: Work) -> str:
        return revision_key(w.case, w.rev)

    def run(self, w: Work) -> dict[str, bytes]:
        r = w.rev
        return {"revision.json": _json({"case": w.case, "revision": r.revision, "design_sha256": r.design_sha256,
                                        "plan_sha256": r.plan_sha256, "skin_sha256": r.skin_sha256})}

    def load(self, w: Work, folder: Path, cached: bool) -> None:
        w.inp = inputs_for(w.db, w.home, w.case, w.rev, w.printer, w.process)


class ValidateStage:
    name = "validate"

    def key(self, w: Work) -> str:
        return validate_key(w.case, w.rev, w.resin, w.printer)

    def run(self, w: Work) -> dict[str, bytes]:
        assert w.inp is not None and w.inp.mesh is not None
        report, _ = validate_details(w.inp.mesh, w.inp.plan, w.resin, w.printer)
        return {"validation.json": report.model_dump_json(indent=2).encode()}

    def load(self, w: Work, folder: Path, cached: bool) -> None:
        report = ValidationReport.model_validate_json((folder / "validation.json").read_bytes())
        fit = next((c for c in report.checks if c.name == "fits_build_volume"), None)
        w.facts.validation_ok = report.ok
        w.facts.validation_failed = [c.name for c in report.failed]
        if fit is not None:
            w.facts.fits, w.facts.fit_detail = fit.passed, fit.message
        if fit is not None and not fit.passed and [c.name for c in report.failed] == ["fits_build_volume"]:
            w.facts.validation_ok = True   # the part_fit gate speaks for this one
        log.record(w.db, w.case, ValidationRecorded.from_report(
            report, w.rev.revision, w.rev.design_sha256, w.rev.plan_sha256, __version__), w.actor)


class OrientStage:
    name = "orient"

    def key(self, w: Work) -> str:
        assert w.inp is not None
        return w.inp.orient_key()

    def run(self, w: Work) -> dict[str, bytes]:
        assert w.inp is not None
        return compute_orient(w.inp, w.actor)

    def load(self, w: Work, folder: Path, cached: bool) -> None:
        assert w.inp is not None
        w.part, doc = record_orient(w.inp, w.keys["orient"], cached, folder, w.actor)
        if not doc["scores"].get("fits_build_volume", True):
            w.facts.fits = False
            w.facts.fit_detail = (f"no orientation fits the build volume {doc['build_volume_mm']} mm with "
                                  "supports and pad")


class SupportStage:
    name = "support"

    def key(self, w: Work) -> str:
        assert w.inp is not None
        return w.inp.support_key(w.keys["orient"])

    def run(self, w: Work) -> dict[str, bytes]:
        assert w.inp is not None
        try:
            return compute_support(w.inp, w.part, w.keys["orient"], w.keys["support"], w.actor)
        except ProofFailed as err:
            w.facts.protected_contacts = int(err.doc.get("protected_contacts", 0))
            w.facts.unsupported_islands = int(err.doc.get("unsupported_islands", 0))
            raise GateRefused(gates.check(w.facts) or gates.Refusal(
                "protected_faces", f"the support proof of case {w.case} failed: {err.message}",
                f"fabctl support {w.case} --render DIR shows where")) from None

    def load(self, w: Work, folder: Path, cached: bool) -> None:
        assert w.inp is not None
        doc = record_support(w.inp, w.part, w.keys["orient"], w.keys["support"], cached, folder, w.actor)
        w.facts.protected_contacts = int(doc["protected_contacts"])
        w.facts.unsupported_islands = int(doc["unsupported_islands"])


def _print_mesh(w: Work) -> tuple[np.ndarray, np.ndarray, str]:
    """The supported part in the printer frame (``print.stl``; else the part and supports side by side)."""
    import trimesh

    d = w.folders["support"]
    if (d / "print.stl").is_file():
        data = (d / "print.stl").read_bytes()
        m = trimesh.load(io.BytesIO(data), file_type="stl", process=True)
        return np.asarray(m.vertices), np.asarray(m.faces, dtype=np.int64), hashlib.sha256(data).hexdigest()
    s = trimesh.load(d / "supports.stl", process=True)
    v = np.vstack([w.part.vertices, s.vertices])
    f = np.vstack([w.part.faces, np.asarray(s.faces) + len(w.part.vertices)]).astype(np.int64)
    return v, f, input_hash(v, f)


class SliceStage:
    name = "slice"

    def key(self, w: Work) -> str:
        return input_hash("slice", __version__, w.keys["support"], w.layer_height_mm, _geometry(w.printer))

    def run(self, w: Work) -> dict[str, bytes]:
        assert w.layer_height_mm is not None
        v, f, sha = _print_mesh(w)
        place = np.array([0.0, 0.0, -float(v[:, 2].min())])   # oriented and centred; lowest point to z = 0
        stack = slice_mesh(v, f, w.layer_height_mm, placement_mm=place, source_sha256=sha)
        report = layercheck.check_layers(stack)
        buf = io.BytesIO()
        np.savez(buf, z_mm=stack.z_mm, points_mm=stack.points_mm, loop_offsets=stack.loop_offsets,
                 layer_offsets=stack.layer_offsets, loop_parent=stack.loop_parent, placement_mm=stack.placement_mm)
        doc = {"layer_height_mm": stack.layer_height_mm, "first_layer_height_mm": stack.first_layer_height_mm,
               "source_sha256": sha, "open_chains": stack.open_chains, "layers": stack.n_layers,
               "height_mm": float(v[:, 2].max() - v[:, 2].min()), "checks": report.counts,
               "findings": [x.as_dict() for x in report.islands + report.resin_traps + report.suction_cups][:100],
               "volume_ml": layercheck.resin_ml(stack), "fabctl_version": __version__}
        return {"stack.npz": buf.getvalue(), "slice.json": _json(doc)}

    def load(self, w: Work, folder: Path, cached: bool) -> None:
        doc = json.loads((folder / "slice.json").read_text())
        z = np.load(folder / "stack.npz")
        w.stack = SliceStack(z_mm=z["z_mm"], layer_height_mm=doc["layer_height_mm"],
                             first_layer_height_mm=doc["first_layer_height_mm"], points_mm=z["points_mm"],
                             loop_offsets=z["loop_offsets"], layer_offsets=z["layer_offsets"],
                             loop_parent=z["loop_parent"], placement_mm=z["placement_mm"],
                             source_sha256=doc["source_sha256"], open_chains=doc["open_chains"])
        w.job_doc["slice"] = doc
        bv = w.printer.build_volume
        (x0, y0), (x1, y1) = w.stack.bounds_xy_mm
        eps = 1e-6
        if x0 < -eps or y0 < -eps or x1 > bv.x_mm + eps or y1 > bv.y_mm + eps or doc["height_mm"] > bv.z_mm:
            w.facts.fits = False
            w.facts.fit_detail = (f"sliced part spans x {x0:.1f}..{x1:.1f}, y {y0:.1f}..{y1:.1f}, height "
                                  f"{doc['height_mm']:.1f} mm; build volume {bv.x_mm:g} x {bv.y_mm:g} x "
                                  f"{bv.z_mm:g} mm")


def _job_settings(p: PrinterProfile) -> dict:
    return p.model_dump(mode="json", exclude={"transport", "alt_transports", "name", "source", "simulated"})


class JobStage:
    name = "job"

    def key(self, w: Work) -> str:
        return input_hash("job", __version__, w.keys["slice"], _job_settings(w.printer), w.resin.id,
                          w.resin.exposure.model_dump(mode="json"), w.case, w.rev.registered_utc)

    def run(self, w: Work) -> dict[str, bytes]:
        assert w.stack is not None
        name = f"{w.case}{jobfile.EXT[w.printer.job_format]}"
        with tempfile.TemporaryDirectory(prefix="fabctl-job-") as tmp:
            out = Path(tmp) / name
            # the file states the design revision's time, not the build's: same inputs, same bytes
            sha, fmt, t_print = jobfile.build_job(w.stack, w.printer, w.resin, out, w.case,
                                                  created=datetime.fromisoformat(w.rev.registered_utc))
            jobfile.write_preview(Path(tmp) / "preview.png", w.stack, w.printer, None)
            files = {name: out.read_bytes(), "preview.png": (Path(tmp) / "preview.png").read_bytes()}
        doc = {"job_file": name, "job_sha256": sha, "job_format": fmt, "print_time_s": round(t_print, 1),
               "printer": w.printer.id, "resin": w.resin.id, "fabctl_version": __version__}
        return {**files, "job.json": _json(doc)}

    def load(self, w: Work, folder: Path, cached: bool) -> None:
        assert w.stack is not None
        doc = json.loads((folder / "job.json").read_text())
        w.job_path = folder / doc["job_file"]
        w.job_doc.update(doc)
        s = w.job_doc["slice"]
        c = s["checks"]
        log.record(w.db, w.case, SliceRecorded(
            revision=w.rev.revision, design_sha256=w.rev.design_sha256, job_sha256=doc["job_sha256"],
            job_format=doc["job_format"], printer_id=w.printer.id, printer_profile_sha256=profile_hash(w.printer),
            resin_id=w.resin.id, resin_profile_sha256=profile_hash(w.resin), as_is=False,
            layer_count=w.stack.n_layers, layer_height_mm=w.stack.layer_height_mm,
            first_layer_height_mm=w.stack.first_layer_height_mm,
            placement_mm=[float(x) for x in w.stack.placement_mm], volume_ml=s["volume_ml"],
            print_time_s=doc["print_time_s"], islands=c["islands"], resin_traps=c["resin_traps"],
            suction_cups=c["suction_cups"], open_chains=s["open_chains"], fabctl_version=__version__), w.actor)


STAGES = (RevisionStage(), ValidateStage(), OrientStage(), SupportStage(), SliceStage(), JobStage())


def resin_is_demo(resin: ResinProfile) -> bool:
    return not resin.clinical_use

