"""`fabctl support CASE [--printer ID] [--process ID] [--json] [--render DIR]`: supports, proven clean.

Orients the case first (or reuses the orient artifact), generates support points, heads, pillars, braces
and pad, then runs the independent proof. Only a supported part whose proof holds is stored as an artifact
(``artifacts/support-<key>/``: ``print.stl`` the part united with its supports for slicing, ``supports.stl``,
``support.npz``, ``support.json``). A refusal or a failed proof is recorded in the trace and exits 3.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import typer

from fabctl import __version__
from fabctl.artifacts import input_hash
from fabctl.cli.common import emit_json, operator
from fabctl.cli.orient import (
    JSON_OPT,
    PRINTER_OPT,
    PROCESS_OPT,
    RENDER_OPT,
    CaseInputs,
    load_inputs,
    orient_stage,
)
from fabctl.errors import CheckFailed
from fabctl.mesh.orient import OrientedPart
from fabctl.mesh.support_proof import ProofReport, prove, require
from fabctl.mesh.supports import KIND_NAMES, SupportedPart, generate_supports
from fabctl.profiles import profile_hash
from fabctl.trace import log
from fabctl.trace.support_events import SupportRecorded


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


def support_stage(inp: CaseInputs, actor: str) -> tuple[OrientedPart, dict, Path, bool]:
    """The proven supported part's artifact folder (generated, proven and stored when missing)."""
    part, _, okey, _, _ = orient_stage(inp, actor)
    skey = input_hash("support", __version__, okey, profile_hash(inp.process))
    hit = inp.cache.get("support", skey)
    cached = hit is not None
    if hit is None:
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
            log.record(inp.db, inp.case, _event(inp, part, okey, skey, False, "failed", doc,
                                                (rep.problems or ["proof failed"])[0][:600]), actor)
            require(rep)
        hit = inp.cache.put("support", skey, files)
    doc = json.loads((hit / "support.json").read_text())
    log.record(inp.db, inp.case, _event(inp, part, okey, skey, cached, "passed", doc), actor)
    return part, doc, hit, cached


def support_cmd(
    case: str = typer.Argument(..., metavar="CASE", help="Case id, e.g. case-42."),
    printer: str | None = PRINTER_OPT,
    process: str = PROCESS_OPT,
    json_out: bool = JSON_OPT,
    render: Path | None = RENDER_OPT,
) -> None:
    """Generate supports that never touch the skin-contact surface or the channel, and prove it."""
    actor = operator()
    inp = load_inputs(case, printer, process)
    part, doc, folder, cached = support_stage(inp, actor)
    pictures = []
    if render is not None:
        from fabctl.mesh.render_supports import render_part_png

        z = np.load(folder / "support.npz")
        sp = SimpleNamespace(support_vertices=z["support_vertices"], support_faces=z["support_faces"],
                             support_body=z["support_body"], body_kinds=tuple(z["body_kinds"].tolist()),
                             contacts=z["contacts"])
        title = (f"{case} rev {inp.revision}: {doc['support_points']} supports on {inp.printer.id}, "
                 f"protected contacts {doc['protected_contacts']}, unsupported islands {doc['unsupported_islands']}")
        pictures.append(str(render_part_png(Path(render) / f"{case}-support.png", part, sp, title)))
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    out = {"case": case, "revision": inp.revision, "printer": inp.printer.id, "process": inp.process.id,
           "support_points": doc["support_points"], "protected_contacts": doc["protected_contacts"],
           "unsupported_islands": doc["unsupported_islands"], "kinds": doc["kinds"], "proof": doc["proof"],
           "stats": doc["stats"], "transform": part.transform.tolist(), "cached": cached,
           "artifact": str(folder), "files": files, "print_sha256": doc["print_sha256"], "pictures": pictures}
    if json_out:
        emit_json(out)
        return
    p = doc["proof"]
    typer.echo(f"{case} rev {inp.revision}: {doc['support_points']} supports ({doc['kinds']}) on "
               f"{inp.printer.id}{' (cached)' if cached else ''}")
    typer.echo(f"  proof passed: protected contacts {p['protected_contacts']} (nearest "
               f"{p['min_protected_distance_mm']} mm), part intrusions {p['part_intrusions']}, channel "
               f"intrusions {p['channel_intrusions']}, islands {p['islands']} / unsupported "
               f"{p['unsupported_islands']} over {p['layers']} layers")
    typer.echo(f"  print geometry: {folder / 'print.stl' if 'print.stl' in files else 'separate bodies'}")
    for pic in pictures:
        typer.echo(f"  picture: {pic}")
