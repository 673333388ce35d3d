"""The print pipeline's runner: one loop over the stages, the gates between them, and ``prepare``.

``prepare(db, case_id, printer_id, resin_id, lot, actor, progress)`` collects the facts the gates need
(design bytes against the registered revision, resin lot and expiry, printer calibration, layer heights,
technologies), refuses early, then runs the stages of ``fabctl.pipeline.stages.STAGES`` in order. Each
stage's artifact is looked up by its key in the case's ``ArtifactCache`` and only built when missing; each
stage writes a ``pipeline.stage`` trace event (key, artifact sha256, seconds, cache hit). After every stage
the gates run again over what is known, and once more with every fact required before ``prepare`` returns.
A refusal writes ``print.refused`` (the gate's name) and raises ``CheckFailed`` (exit 3): nothing has been
sent. The queue daemon and ``fabctl print`` call the same ``prepare``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabctl import __version__, intake, inventory, profiles
from fabctl.artifacts import ArtifactCache
from fabctl.case import DESIGN_FILE, CaseStore, default_home, sha256_file
from fabctl.db import Database
from fabctl.errors import CheckFailed
from fabctl.pipeline import gates
from fabctl.pipeline.jobfile import PREFERRED_LAYER_MM
from fabctl.pipeline.stages import STAGES, GateRefused, Work, artifact_sha256
from fabctl.process import DEFAULT_PROCESS, load_process
from fabctl.trace import log
from fabctl.trace.print_events import PrintRefused, StageRecorded

#: progress(stage name, "start" | "done", StageRecord or None)
Progress = Callable[[str, str, Any], None]


@dataclass(frozen=True)
class StageRecord:
    name: str
    key: str
    artifact_sha256: str | None
    seconds: float
    cached: bool
    folder: str | None

    def as_dict(self) -> dict:
        return {"name": self.name, "seconds": round(self.seconds, 3), "cached": self.cached, "key": self.key,
                "artifact_sha256": self.artifact_sha256, "artifact": self.folder}


@dataclass
class Prepared:
    """Everything the transport needs, and what the print's record says about how the job file was made."""

    case: str
    revision: int
    design_sha256: str
    printer_id: str
    printer_sha256: str
    resin_id: str
    resin_sha256: str
    lot: str
    lot_expires: str
    job_file: Path
    job_sha256: str
    job_format: str
    layers: int
    stages: list[StageRecord] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    pictures: list[str] = field(default_factory=list)


def _noop(*_a: Any) -> None:
    return None


def _layer_height(printer: profiles.PrinterProfile, resin: profiles.ResinProfile) -> float | None:
    both = sorted({round(h, 6) for h in printer.layer_heights_mm} & {round(h, 6) for h in resin.ifu.layer_heights_mm.value})
    if not both:
        return None
    return PREFERRED_LAYER_MM if PREFERRED_LAYER_MM in both else both[0]


def collect_facts(db: Database, home: Path, case: str, rev: intake.Revision, printer: profiles.PrinterProfile,
                  resin: profiles.ResinProfile, lot: str | None) -> gates.Facts:
    """The facts known before any stage runs (reads the design file, the inventory and today's UTC date)."""
    design = CaseStore(home).rev_dir(case, rev.revision) / DESIGN_FILE
    disk = sha256_file(design) if design.is_file() else "0" * 64
    demo = not resin.clinical_use
    if lot is None and demo:
        lot = gates.DEMO_LOT
    row = inventory.get_lot(db, resin.id, lot) if lot is not None else None
    return gates.Facts(
        case=case, printer_id=printer.id, printer_technology=printer.technology,
        printer_simulated=printer.simulated, resin_id=resin.id, resin_technologies=list(resin.compatible_technologies),
        today=inventory.today_utc(), resin_demo=demo, revision=rev.revision,
        registered_design_sha256=rev.design_sha256, disk_design_sha256=disk,
        awaiting_approval=rev.needs_approval and rev.approved_by is None, lot=lot,
        lot_expires_on=row.expires_on if row else None, printer_layer_heights_mm=list(printer.layer_heights_mm),
        resin_layer_heights_mm=list(resin.ifu.layer_heights_mm.value),
        dues={k: d.due_on for k, d in inventory.dues(db, printer.id).items()})


def refuse(w: Work, r: gates.Refusal, job_id: str | None = None) -> CheckFailed:
    """Record ``print.refused`` for ``r`` and return the error to raise."""
    log.record(w.db, w.case, PrintRefused(
        gate=r.gate, message=r.message[:600], revision=w.rev.revision, printer_id=w.printer.id,
        resin_id=w.resin.id, resin_lot=w.facts.lot, job_id=job_id, fabctl_version=__version__), w.actor)
    return CheckFailed(f"gate {r.gate}: {r.message}", hint=r.hint)


def run_stages(w: Work, progress: Progress = _noop, cancel: Callable[[], bool] = lambda: False,
               job_id: str | None = None) -> list[StageRecord]:
    """The uniform loop: key, cache lookup or run, load, trace event, gates."""
    out: list[StageRecord] = []
    for stage in STAGES:
        if cancel():
            raise CheckFailed(f"print of case {w.case} cancelled before stage {stage.name}")
        progress(stage.name, "start", None)
        t0 = time.monotonic()
        key = stage.key(w)
        w.keys[stage.name] = key
        folder = w.cache.get(stage.name, key)
        cached = folder is not None
        if folder is None:
            try:
                files = stage.run(w)
            except GateRefused as err:
                raise refuse(w, err.refusal, job_id) from None
            folder = w.cache.put(stage.name, key, files)
        w.folders[stage.name] = folder
        stage.load(w, folder, cached)
        rec = StageRecord(stage.name, key, artifact_sha256(folder), time.monotonic() - t0, cached, str(folder))
        log.record(w.db, w.case, StageRecorded(
            stage=stage.name, key=key, artifact_sha256=rec.artifact_sha256, cached=cached,
            seconds=round(rec.seconds, 6), revision=w.rev.revision, printer_id=w.printer.id, job_id=job_id,
            fabctl_version=__version__), w.actor)
        out.append(rec)
        progress(stage.name, "done", rec)
        r = gates.check(w.facts)
        if r is not None:
            raise refuse(w, r, job_id)
    return out


def prepare(db: Database, case_id: str, printer_id: str | None, resin_id: str | None, lot: str | None,
            actor: str, progress: Progress | None = None, *, home: Path | None = None,
            process_id: str = DEFAULT_PROCESS, cancel: Callable[[], bool] | None = None,
            job_id: str | None = None) -> Prepared:
    """Run the gates and the stages up to the job file (module docs); ``CheckFailed`` for a refusal."""
    home = home or default_home()
    printer = profiles.printer(printer_id or profiles.DEFAULT_PRINTER)
    resin = profiles.resin(resin_id or profiles.DEFAULT_RESIN)
    process = load_process(process_id)
    store = CaseStore(home)
    rev = intake.require_case(db, store, case_id)[-1]
    facts = collect_facts(db, home, case_id, rev, printer, resin, lot)
    w = Work(home=home, db=db, case=case_id, actor=actor, rev=rev, printer=printer, resin=resin, process=process,
             facts=facts, cache=ArtifactCache(store.case_dir(case_id)),
             layer_height_mm=_layer_height(printer, resin))
    r = gates.check(facts)
    if r is not None:
        raise refuse(w, r, job_id)
    stages = run_stages(w, progress or _noop, cancel or (lambda: False), job_id)
    r = gates.check(facts, final=True)
    if r is not None:
        raise refuse(w, r, job_id)
    assert w.job_path is not None and w.stack is not None
    row = inventory.get_lot(db, resin.id, facts.lot) if facts.lot else None
    return Prepared(
        case=case_id, revision=rev.revision, design_sha256=rev.design_sha256, printer_id=printer.id,
        printer_sha256=profiles.profile_hash(printer), resin_id=resin.id, resin_sha256=profiles.profile_hash(resin),
        lot=facts.lot or gates.DEMO_LOT, lot_expires=row.expires_on if row else "none (built-in demo lot)",
        job_file=w.job_path, job_sha256=w.job_doc["job_sha256"], job_format=w.job_doc["job_format"],
        layers=w.stack.n_layers, stages=stages, artifacts={k: str(v) for k, v in w.folders.items()},
        pictures=[str(w.folders["job"] / "preview.png")])
