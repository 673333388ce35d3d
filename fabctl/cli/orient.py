"""`fabctl orient CASE [--printer ID] [--process ID] [--json] [--render DIR]`: choose the print orientation.

Reads the case's latest design revision (design.stl, plan.json, skin.stl), finds the protected faces, runs
the deterministic optimiser and stores the result as an artifact keyed by the sha256 of its inputs
(``$FABCTL_HOME/cases/<case>/artifacts/orient-<key>/``): the same design, plan, skin, process profile,
printer and fabctl version reuse it. Every run records ``orient.recorded`` (or ``orient.refused``) in the
case's trace. The stage logic is shared with ``fabctl support``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import typer

from fabctl import __version__, intake, profiles
from fabctl.artifacts import ArtifactCache, input_hash
from fabctl.case import DESIGN_FILE, PLAN_FILE, SKIN_FILE, CaseStore
from fabctl.cli.common import emit_json, home, operator
from fabctl.db import Database, open_db
from fabctl.errors import CheckFailed
from fabctl.mesh.io import read_mesh
from fabctl.mesh.orient import OrientedPart, ScoreTerms, orient_part
from fabctl.mesh.protect import Channel, Protection, protected_faces
from fabctl.plan import Plan, load_plan
from fabctl.process import DEFAULT_PROCESS, ProcessProfile, load_process
from fabctl.profiles import PrinterProfile, profile_hash
from fabctl.trace import log
from fabctl.trace.support_events import OrientRecorded, OrientRefused

PRINTER_OPT = typer.Option(None, "--printer", help="Printer profile id (default: the embedded default).")
PROCESS_OPT = typer.Option(DEFAULT_PROCESS, "--process", help="Process profile id (profiles/process/).")
JSON_OPT = typer.Option(False, "--json", help="One JSON document on stdout.")
RENDER_OPT = typer.Option(None, "--render", help="Write pictures (PNG) into this folder.")


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

    @property
    def bed(self) -> tuple[float, float, float]:
        b = self.printer.build_volume
        return (b.x_mm, b.y_mm, b.z_mm)

    def orient_key(self) -> str:
        return input_hash("orient", __version__, self.design_sha256, self.plan_sha256, self.skin_sha256,
                          profile_hash(self.process), profile_hash(self.printer))


def load_inputs(case: str, printer_id: str | None, process_id: str) -> CaseInputs:
    """The latest design revision of ``case``; refuses (exit 3) a revision that is not printable."""
    db = open_db(home())
    store = CaseStore(home())
    rev = intake.require_case(db, store, case)[-1]
    if not rev.printable:
        why = "its stored files differ from the trace" if not rev.files_ok else "it awaits approval"
        raise CheckFailed(f"case {case} revision {rev.revision} is not printable: {why}",
                          hint="`fabctl case show` and `fabctl trace verify` tell more")
    d = store.rev_dir(case, rev.revision)
    mesh = read_mesh(d / DESIGN_FILE, "mm")
    plan = load_plan(d / PLAN_FILE)
    skin = None
    if plan.skin_surface and (d / SKIN_FILE).is_file():
        s = read_mesh(d / SKIN_FILE, "mm", check_extent=False)
        skin = (s.vertices, s.faces)
    printer = profiles.printer(printer_id or profiles.DEFAULT_PRINTER)
    return CaseInputs(case, rev.revision, rev.design_sha256, rev.plan_sha256, rev.skin_sha256, mesh.vertices,
                      mesh.faces, plan, skin, load_process(process_id), printer, db,
                      ArtifactCache(store.case_dir(case)))


def protection_of(inp: CaseInputs) -> Protection:
    return protected_faces(inp.vertices, inp.faces, inp.plan, inp.process.protect, inp.skin)


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


def _part_from_artifact(d: Path) -> tuple[OrientedPart, dict]:
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


def orient_stage(inp: CaseInputs, actor: str) -> tuple[OrientedPart, dict, str, bool, Path]:
    """The oriented part (from its artifact when one exists); records the trace event either way."""
    key = inp.orient_key()
    hit = inp.cache.get("orient", key)
    cached = hit is not None
    if hit is None:
        prot = protection_of(inp)
        try:
            part = orient_part(inp.vertices, inp.faces, prot, inp.process, inp.bed)
        except CheckFailed as err:
            log.record(inp.db, inp.case, OrientRefused(
                revision=inp.revision, design_sha256=inp.design_sha256, process_sha256=profile_hash(inp.process),
                printer=inp.printer.id, reason=err.message[:600], fabctl_version=__version__), actor)
            raise
        hit = inp.cache.put("orient", key, _orient_files(part, prot, inp))
    part, doc = _part_from_artifact(hit)
    log.record(inp.db, inp.case, OrientRecorded(
        revision=inp.revision, design_sha256=inp.design_sha256, plan_sha256=inp.plan_sha256,
        process_profile=inp.process.id, process_sha256=profile_hash(inp.process), printer=inp.printer.id,
        printer_sha256=profile_hash(inp.printer), artifact_key=key, cached=cached, transform=doc["transform"],
        up_design=doc["up_design"], scores=doc["scores"], protected=doc["protected"],
        candidates_evaluated=doc["candidates_evaluated"], feasible_candidates=doc["feasible_candidates"],
        fabctl_version=__version__), actor)
    return part, doc, key, cached, hit


def orient_cmd(
    case: str = typer.Argument(..., metavar="CASE", help="Case id, e.g. case-42."),
    printer: str | None = PRINTER_OPT,
    process: str = PROCESS_OPT,
    json_out: bool = JSON_OPT,
    render: Path | None = RENDER_OPT,
) -> None:
    """Choose the print orientation: protected surfaces never need support; fits the build volume."""
    actor = operator()
    inp = load_inputs(case, printer, process)
    part, doc, _, had, folder = orient_stage(inp, actor)
    pictures = []
    if render is not None:
        from fabctl.mesh.render_supports import render_part_png

        pictures.append(str(render_part_png(Path(render) / f"{case}-orient.png", part, None,
                                            f"{case} rev {inp.revision}: orientation on {inp.printer.id}")))
    out = {"case": case, "revision": inp.revision, "printer": inp.printer.id, "process": inp.process.id,
           "cached": had, "artifact": str(folder), **{k: doc[k] for k in (
               "transform", "up_design", "scores", "protected", "candidates_evaluated", "feasible_candidates")},
           "pictures": pictures}
    if json_out:
        emit_json(out)
        return
    s = doc["scores"]
    typer.echo(f"{case} rev {inp.revision}: up = {np.round(doc['up_design'], 4).tolist()} (design frame), "
               f"yaw {s['yaw_deg']:g} deg on {inp.printer.id}{' (cached)' if had else ''}")
    for k in ("supported_area_mm2", "support_count_est", "peak_layer_area_mm2", "print_height_mm",
              "channel_angle_deg", "bore_span_mm", "region_overhang_mm2", "protected_overhang_mm2",
              "protected_minima"):
        typer.echo(f"  {k:>24}: {s[k]}")
    typer.echo(f"  {'score':>24}: {s['total']}  ({', '.join(f'{k} {v:.4f}' for k, v in s['weighted'].items())})")
    for p in pictures:
        typer.echo(f"  picture: {p}")
