"""The orient and support stages: the oriented part and the supported part with its proof, as artifacts.

``orient_stage`` and ``support_stage`` reuse an artifact whose key (``CaseInputs.orient_key`` /
``support_key``) matches, and record ``orient.recorded`` / ``support.recorded`` (or their refusals) in the
case's trace either way. Only a supported part whose independent proof holds is stored (``print.stl`` the
part united with its supports for slicing, ``supports.stl``, ``support.npz``, ``support.json``).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from fabctl import __version__
from fabctl.errors import CheckFailed
from fabctl.mesh.orient import OrientedPart, ScoreTerms, orient_part
from fabctl.mesh.protect import Channel, Protection
from fabctl.mesh.support_proof import ProofReport, prove, require
from fabctl.mesh.supports import KIND_NAMES, SupportedPart, generate_supports
from fabctl.pipeline.inputs import CaseInputs, protection_of
from fabctl.profiles import profile_hash
from fabctl.trace import log
from fabctl.trace.support_events import OrientRecorded, OrientRefused, SupportRecorded


def _orient_files(part: OrientedPart, prot: Protection, inp: CaseInputs) -> dict[str, bytes]:
    buf = io.BytesIO()
    ch = part.channel
    np.savez(buf, transform=part.transform, vertices=part.vertices, faces=part.faces, protected=part.protected,
             reasons=part.reasons, up_design=part.up_design, regions=part.regions,
             channel=np.concatenate([ch.entry, ch.axis, ch.slot, [ch.half_slot_mm, ch.radius_mm, *ch.t_range]]))
    doc = {"case": inp.case, "revision": inp.revision, "design_sha256": inp.design_sha256,
           "printer": inp.printer.id, "process": inp.process.id, "scores": part.scores.as_dict(),
           "transform": part.transform.tolist(), "up_design": part.up_design.tolist(),
           "protected": prot.summary(), "candidates_evaluated": part.candidates_evaluated,
           "feasible_candidates": part.feasible_candidates, "build_volume_mm": list(part.build_volume_mm),
           "fabctl_version": __version__}
    return {"orient.json": (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(), "part.npz": buf.getvalue()}


def part_from_artifact(d: Path) -> tuple[OrientedPart, dict]:
    doc = json.loads((d / "orient.json").read_text())
    z = np.load(d / "part.npz")
    c = z["channel"]
    sc = dict(doc["scores"])
    sc["fits"] = sc.pop("fits_build_volume")
    sc["footprint_mm"] = tuple(sc["footprint_mm"])
    part = OrientedPart(
        transform=z["transform"], vertices=z["vertices"], faces=z["faces"], protected=z["protected"],
        reasons=z["reasons"], channel=Channel(c[0:3], c[3:6], c[6:9], float(c[9]), float(c[10]),
                                              (float(c[11]), float(c[12]))),
        up_design=z["up_design"], scores=ScoreTerms(**sc), candidates_evaluated=doc["candidates_evaluated"],
        feasible_candidates=doc["feasible_candidates"], build_volume_mm=tuple(doc["build_volume_mm"]),
        regions=z["regions"])
    return part, doc


def compute_orient(inp: CaseInputs, actor: str) -> dict[str, bytes]:
    """The orient artifact's files; records ``orient.refused`` and re-raises when no orientation works."""
    prot = protection_of(inp)
    try:
        part = orient_part(inp.vertices, inp.faces, prot, inp.process, inp.bed)
    except CheckFailed as err:
        log.record(inp.db, inp.case, OrientRefused(
            revision=inp.revision, design_sha256=inp.design_sha256, process_sha256=profile_hash(inp.process),
            printer=inp.printer.id, reason=err.message[:600], fabctl_version=__version__), actor)
        raise
    return _orient_files(part, prot, inp)


def record_orient(inp: CaseInputs, key: str, cached: bool, folder: Path, actor: str) -> tuple[OrientedPart, dict]:
    """Read the orient artifact and record ``orient.recorded``."""
    part, doc = part_from_artifact(folder)
    log.record(inp.db, inp.case, OrientRecorded(
        revision=inp.revision, design_sha256=inp.design_sha256, plan_sha256=inp.plan_sha256,
        process_profile=inp.process.id, process_sha256=profile_hash(inp.process), printer=inp.printer.id,
        printer_sha256=profile_hash(inp.printer), artifact_key=key, cached=cached, transform=doc["transform"],
        up_design=doc["up_design"], scores=doc["scores"], protected=doc["protected"],
        candidates_evaluated=doc["candidates_evaluated"], feasible_candidates=doc["feasible_candidates"],
        fabctl_version=__version__), actor)
    return part, doc


def orient_stage(inp: CaseInputs, actor: str) -> tuple[OrientedPart, dict, str, bool, Path]:
    """The oriented part (from its artifact when one exists); records the trace event either way."""
    key = inp.orient_key()
    hit = inp.cache.get("orient", key)
    cached = hit is not None
    if hit is None:
        hit = inp.cache.put("orient", key, compute_orient(inp, actor))
    part, doc = record_orient(inp, key, cached, hit, actor)
    return part, doc, key, cached, hit


def _stl(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    import trimesh

    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False).export(file_type="stl")


def _files(sp: SupportedPart, rep: ProofReport, okey: str) -> dict[str, bytes]:
    files = {"supports.stl": _stl(sp.support_vertices, sp.support_faces)}
    if sp.print_vertices is not None:
        files["print.stl"] = _stl(sp.print_vertices, sp.print_faces)
    buf = io.BytesIO()
    np.savez(buf, contacts=sp.contacts, head_dirs=sp.head_dirs, kinds=sp.kinds, junctions=sp.junctions,
             support_vertices=sp.support_vertices, support_faces=sp.support_faces, support_body=sp.support_body,
             body_kinds=np.array(sp.body_kinds))
    files["support.npz"] = buf.getvalue()
    doc = {"orient_key": okey, "support_points": int(len(sp.contacts)),
           "protected_contacts": rep.protected_contacts, "unsupported_islands": rep.unsupported_islands,
           "proof": rep.as_dict(), "stats": sp.stats,
           "kinds": {KIND_NAMES[k]: int((sp.kinds == k).sum()) for k in KIND_NAMES},
           "print_sha256": hashlib.sha256(files["print.stl"]).hexdigest() if "print.stl" in files else None,
           "fabctl_version": __version__}
    files["support.json"] = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    return files


def _event(inp: CaseInputs, part: OrientedPart, okey: str, skey: str, cached: bool, proof: str,
           doc: dict | None, reason: str | None = None) -> SupportRecorded:
    doc = doc or {}
    counts = {k: v for k, v in doc.get("proof", {}).items() if k != "problems"}
    return SupportRecorded(
        revision=inp.revision, design_sha256=inp.design_sha256, orient_key=okey, artifact_key=skey,
        process_sha256=profile_hash(inp.process), printer=inp.printer.id, printer_sha256=profile_hash(inp.printer),
        cached=cached, transform=part.transform.tolist(), support_points=doc.get("support_points", 0),
        protected_contacts=doc.get("protected_contacts", 0), unsupported_islands=doc.get("unsupported_islands", 0),
        proof=proof, proof_counts=counts, stats=doc.get("stats", {}), print_sha256=doc.get("print_sha256"),
        reason=reason, fabctl_version=__version__)


class ProofFailed(CheckFailed):
    """The support proof failed: supports touch a protected face, intrude, or leave an island unsupported."""

    def __init__(self, message: str, doc: dict) -> None:
        super().__init__(message, hint="fabctl support CASE --render DIR shows where")
        self.doc = doc


def compute_support(inp: CaseInputs, part: OrientedPart, okey: str, skey: str, actor: str) -> dict[str, bytes]:
    """The support artifact's files when the proof holds; records the refusal or failure and raises otherwise
    (``ProofFailed`` carries the proof's counts)."""
    try:
        sp = generate_supports(part, inp.process)
    except CheckFailed as err:
        log.record(inp.db, inp.case, _event(inp, part, okey, skey, False, "refused", None, err.message[:600]),
                   actor)
        raise
    rep = prove(part.vertices, part.faces, part.hard, part.channel, sp.contacts, sp.support_vertices,
                sp.support_faces, inp.process, part.regions)
    files = _files(sp, rep, okey)
    if not rep.ok:
        doc = json.loads(files["support.json"])
        first = (rep.problems or ["proof failed"])[0][:600]
        log.record(inp.db, inp.case, _event(inp, part, okey, skey, False, "failed", doc, first), actor)
        try:
            require(rep)
        except CheckFailed as err:
            raise ProofFailed(err.message, doc) from None
        raise ProofFailed(first, doc)
    return files


def record_support(inp: CaseInputs, part: OrientedPart, okey: str, skey: str, cached: bool, folder: Path,
                   actor: str) -> dict:
    doc = json.loads((folder / "support.json").read_text())
    log.record(inp.db, inp.case, _event(inp, part, okey, skey, cached, "passed", doc), actor)
    return doc


def support_stage(inp: CaseInputs, actor: str) -> tuple[OrientedPart, dict, Path, bool]:
    """The proven supported part's artifact folder (generated, proven and stored when missing)."""
    part, _, okey, _, _ = orient_stage(inp, actor)
    skey = inp.support_key(okey)
    hit = inp.cache.get("support", skey)
    cached = hit is not None
    if hit is None:
        hit = inp.cache.put("support", skey, compute_support(inp, part, okey, skey, actor))
    return part, record_support(inp, part, okey, skey, cached, hit, actor), hit, cached
