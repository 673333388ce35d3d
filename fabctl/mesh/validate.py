"""``validate``: every check of a design mesh against a resin, a printer and (optionally) the plan.

Validation never changes the mesh: it reads ``MeshInput``'s read-only arrays and reports. Each check says
whether it passed, how bad a failure is (``error`` blocks printing, ``warning`` and ``info`` do not), the
measured value, the limit, and where (``locations_mm``). ``ok`` is true when every error check passed.

Wall thickness is measured only on a mesh whose orientation can be trusted (closed, consistently wound, every
shell of positive volume); otherwise the check fails as "not measured", naming the reason. The
self-intersections that need no topology (``intersect.candidates``) are found in a forked child process while
the topology and the thickness are measured here (``fabctl.mesh.forked``; the same call runs here when there
is no child); ``intersect.finish`` completes them here with the edge table and the shells. ``timings_s``
holds each stage's own duration, and the self-intersections overlap the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fabctl import profiles
from fabctl.mesh import topology as topo
from fabctl.mesh.channel import ChannelMeasure, measure_channel
from fabctl.mesh.fit import fits_build_volume
from fabctl.mesh.forked import Forked
from fabctl.mesh.intersect import SelfIntersections, candidates, fan_hits, finish
from fabctl.mesh.intersect import compiled as pairs_compiled
from fabctl.mesh.report import (
    MAX_LOCATIONS,
    Channel,
    Check,
    Fit,
    Intersections,
    MeshSummary,
    Settings,
    Shell,
    ThinPatch,
    ValidationReport,
    is_ok,
    rounded,
)
from fabctl.mesh.thickness import Thickness, sample_pass, thin_patches, wall_thickness
from fabctl.mesh.thickness import compiled as balls_compiled
from fabctl.mesh.types import MeshInput
from fabctl.plan import Plan
from fabctl.profiles import PrinterProfile, ResinProfile

Progress = Callable[[str], None]

#: the runway may be this much shorter than planned before ``slot_length`` fails (mm)
SLOT_TOLERANCE_MM = 0.2
#: a shell whose |volume| is below this fraction of the part's bounding-box volume counts as zero volume
ZERO_VOLUME_REL = 1e-9


def _check(name: str, passed: bool, value, limit, message: str, locations=None,
           severity: str = "error") -> Check:
    locs = [] if locations is None else list(locations)
    return Check(name=name, passed=bool(passed), severity=severity, value=value, limit=limit, message=message,
                 locations_mm=rounded(locs), locations_total=len(locs))


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def _holes(geo: topo.Geometry) -> list[tuple[int, np.ndarray]]:
    """Boundary loops: (edge count, centroid) per connected group of one-face edges, largest first."""
    be = topo.boundary_edges(geo.edges)
    if not len(be):
        return []
    verts, inv = np.unique(be, return_inverse=True)
    inv = inv.reshape(-1, 2)
    n = len(verts)
    g = coo_matrix((np.ones(len(inv), dtype=np.int8), (inv[:, 0], inv[:, 1])), shape=(n, n))
    k, lab = connected_components(g.tocsr(), directed=False)
    elab = lab[inv[:, 0]]
    cnt = np.bincount(elab, minlength=k)
    mid = 0.5 * (geo.vertices[be[:, 0]] + geo.vertices[be[:, 1]])
    cen = np.stack([np.bincount(elab, weights=mid[:, i], minlength=k) for i in range(3)], axis=1) / cnt[:, None]
    order = np.argsort(-cnt, kind="stable")
    return [(int(cnt[i]), cen[i]) for i in order]


def _edge_mid(geo: topo.Geometry, edges: np.ndarray) -> np.ndarray:
    return 0.5 * (geo.vertices[edges[:, 0]] + geo.vertices[edges[:, 1]]) if len(edges) else np.zeros((0, 3))


def topology_checks(geo: topo.Geometry) -> tuple[list[Check], list[dict], np.ndarray, dict]:
    """The topology checks: (checks, shell summaries, (m,) shell label per face, facts for later checks)."""
    et = geo.edges
    checks = []
    holes = _holes(geo)
    nb = int((et.counts == 1).sum())
    checks.append(_check(
        "watertight", nb == 0, nb, 0,
        "closed: every edge has two faces" if nb == 0 else
        f"{nb} open edges in {len(holes)} hole(s); largest hole has {holes[0][0]} edges",
        [c for _, c in holes]))
    inc = topo.inconsistent_edges(et)
    checks.append(_check(
        "winding_consistent", len(inc) == 0, len(inc), 0,
        "every face is wound like its neighbours" if not len(inc) else
        f"{len(inc)} edges where neighbouring faces are wound the same way (flipped faces)", _edge_mid(geo, inc)))
    k, labels = topo.shells(geo.faces, et)
    sh = topo.shell_summaries(geo, labels, k)
    box_vol = float(np.prod(np.maximum(geo.bounds[1] - geo.bounds[0], 1e-9)))
    tiny = ZERO_VOLUME_REL * box_vol
    bad = [s for s in sh if s["volume_mm3"] <= tiny]
    total = float(sum(s["volume_mm3"] for s in sh))
    if not bad:
        msg = f"volume {total:.1f} mm³, every shell encloses positive volume"
    elif all(s["volume_mm3"] < -tiny for s in bad) and len(bad) == len(sh):
        msg = f"inside out: signed volume {total:.1f} mm³ (the normals point inwards); repair inverts it"
    else:
        msg = "; ".join(f"shell {s['index']} has {'negative' if s['volume_mm3'] < -tiny else 'zero'} volume "
                        f"({s['volume_mm3']:.3g} mm³, {s['triangles']} faces)" for s in bad[:5])
    checks.append(_check("positive_volume", not bad, _r(total, 3), 0, msg, [s["centroid_mm"] for s in bad]))
    nme = topo.non_manifold_edges(et)
    checks.append(_check(
        "non_manifold_edges", len(nme) == 0, len(nme), 0,
        "no edge has more than two faces" if not len(nme) else f"{len(nme)} edges shared by three or more faces",
        _edge_mid(geo, nme)))
    nmv = topo.non_manifold_vertices(geo.faces, et)
    checks.append(_check(
        "non_manifold_vertices", len(nmv) == 0, len(nmv), 0,
        "every vertex has one fan of faces" if not len(nmv) else
        f"{len(nmv)} vertices where separate fans of faces touch", geo.vertices[nmv]))
    deg = topo.degenerate_faces(geo)
    checks.append(_check(
        "degenerate_faces", len(deg) == 0, len(deg), 0,
        "no zero-area faces" if not len(deg) else f"{len(deg)} faces of zero area (collinear or repeated corners)",
        geo.centroid[deg]))
    dup = topo.duplicate_faces(geo.faces, et)
    checks.append(_check(
        "duplicate_faces", len(dup) == 0, len(dup), 0,
        "no face repeats another" if not len(dup) else f"{len(dup)} faces repeat the corners of another face",
        geo.centroid[dup]))
    facts = {"closed": nb == 0 and not len(nme), "consistent": not len(inc), "positive": not bad}
    return checks, sh, labels, facts


def _shell_check(sh: list[dict]) -> Check:
    k = len(sh)
    extra = sh[1:]
    if k <= 1:
        msg = "one shell"
    else:
        parts = [f"shell {s['index']}: {s['triangles']} faces, {s['volume_mm3']:.3g} mm³ at "
                 f"({', '.join(f'{x:.1f}' for x in s['centroid_mm'])})" for s in extra[:5]]
        more = f" (+{len(extra) - 5} more)" if len(extra) > 5 else ""
        msg = f"{k} shells; a guide is one. Extra: " + "; ".join(parts) + more
    return _check("shell_count", k == 1, k, 1, msg, [s["centroid_mm"] for s in extra])


def _si_check(si: SelfIntersections, F: np.ndarray) -> tuple[Check, Intersections]:
    n = len(si.pairs)
    if n:
        shared = (F[si.pairs[:, 0]][:, :, None] == F[si.pairs[:, 1]][:, None, :]).any(axis=(1, 2))
    else:
        shared = np.zeros(0, dtype=bool)
    inter = int(si.inter_shell.sum())
    msg = ("no triangles cross" if n == 0 else
           f"{n} crossing face pairs ({int((~shared).sum())} between faces with no common vertex, "
           f"{int(shared.sum())} folding over a shared vertex or edge); {n - inter} within a shell, "
           f"{inter} between shells")
    summary = Intersections(pairs=n, intra_shell_pairs=n - inter, inter_shell_pairs=inter,
                            faces=int(len(si.faces)), locations_mm=rounded(si.points))
    return _check("self_intersections", n == 0, n, 0, msg, si.points), summary


def _thickness_checks(th: Thickness | None, why_not: str, resin: ResinProfile, printer: PrinterProfile,
                      total_area: float) -> tuple[list[Check], list[ThinPatch]]:
    wall = float(resin.ifu.min_wall_mm.value)
    feat = float(printer.min_feature_mm)
    if th is None or not len(th.value):
        reason = why_not or "no surface to sample"
        return [
            _check("min_wall_thickness", False, None, wall, f"not measured: {reason}"),
            _check("min_feature_size", False, None, _r(feat), f"not measured: {reason}"),
        ], []
    tmin = th.minimum
    at = th.samples.points[th.argmin]
    patches = thin_patches(th, wall, total_area)
    tp = [ThinPatch(limit_mm=wall, min_thickness_mm=_r(p.min_thickness), area_mm2=_r(p.area, 2),
                    centroid_mm=rounded([p.centroid])[0], thinnest_at_mm=rounded([p.thinnest_at])[0],
                    faces=int(len(np.unique(th.samples.face[p.samples])))) for p in patches]
    if patches:
        msg = (f"thinnest wall {tmin:.3f} mm at ({', '.join(f'{x:.1f}' for x in at)}), under the resin's "
               f"{wall:g} mm in {len(patches)} patch(es), {sum(p.area for p in patches):.1f} mm² in all")
    else:
        msg = f"thinnest wall {tmin:.3f} mm at ({', '.join(f'{x:.1f}' for x in at)}), limit {wall:g} mm"
    checks = [_check("min_wall_thickness", tmin >= wall, _r(tmin), wall, msg, [p.thinnest_at for p in patches])]
    fine = thin_patches(th, feat, total_area)
    what = "two pixels" if printer.raster is not None else "two laser spots"
    fmsg = (f"no feature thinner than {what} ({feat:.3g} mm)" if not fine else
            f"{len(fine)} feature(s) thinner than {what} ({feat:.3g} mm), thinnest {tmin:.3f} mm")
    checks.append(_check("min_feature_size", not fine, _r(tmin), _r(feat), fmsg, [p.thinnest_at for p in fine]))
    return checks, tp


def _channel_checks(ch: ChannelMeasure, plan: Plan, required: float) -> tuple[list[Check], Channel]:
    found = ch.found
    loc = [ch.narrowest_point] if ch.narrowest_point is not None else []
    if not found:
        why = ("the planned axis does not pass within reach of the guide" if ch.t_range is None else
               "the planned axis does not run through a channel enclosed by the guide")
        checks = [
            _check("channel_clearance", False, _r(ch.min_diameter), _r(required), why, loc),
            _check("channel_open", False, False, True, why),
        ]
        if plan.slot_length_mm > 0:
            checks.append(_check("slot_length", False, None, plan.slot_length_mm, why))
    else:
        ok = ch.min_diameter >= required
        n_ob = len(ch.obstruction_points)
        where = ", ".join(f"{x:.1f}" for x in ch.narrowest_point) if ch.narrowest_point is not None else "?"
        checks = [_check(
            "channel_clearance", ok, _r(ch.min_diameter), _r(required),
            f"narrowest bore {ch.min_diameter:.3f} mm at ({where}), {ch.narrowest_t:.1f} mm along the axis; "
            f"needs {required:.3f} mm (designed {plan.channel_diameter_mm:g} mm)", loc)]
        checks.append(_check(
            "channel_open", ok, ok, True,
            f"a {required:.3f} mm cylinder (needle {plan.needle_od_mm:g} mm + clearance) passes end to end "
            f"along the planned axis" if ok else
            f"material inside the {required:.3f} mm needle cylinder: {n_ob} face(s) intrude, the bore narrows "
            f"to {ch.min_diameter:.3f} mm", ch.obstruction_points))
        if plan.slot_length_mm > 0:
            sl = ch.slot_length if ch.slot_length is not None else 0.0
            good = sl >= plan.slot_length_mm - SLOT_TOLERANCE_MM
            checks.append(_check(
                "slot_length", good, _r(sl, 3), plan.slot_length_mm,
                f"runway {sl:.2f} mm along the slot direction (planned {plan.slot_length_mm:g} mm, "
                f"tolerance {SLOT_TOLERANCE_MM:g} mm)"))
    t_range = list(ch.t_range) if ch.t_range is not None else [0.0, 0.0]
    prof = ch.profile[:: max(1, len(ch.profile) // 200)]
    model = Channel(
        entry_mm=rounded([ch.entry])[0], direction=[_r(x, 6) for x in ch.direction],
        axial_range_mm=[_r(x, 3) for x in t_range], required_diameter_mm=_r(required),
        designed_diameter_mm=plan.channel_diameter_mm, measured_min_diameter_mm=_r(ch.min_diameter),
        narrowest_at_mm=rounded([ch.narrowest_point])[0] if ch.narrowest_point is not None else None,
        narrowest_t_mm=_r(ch.narrowest_t, 3) if ch.narrowest_t is not None else None,
        open=bool(found and ch.min_diameter >= required), obstructions=len(ch.obstruction_points),
        obstruction_locations_mm=rounded(ch.obstruction_points),
        slot_length_planned_mm=plan.slot_length_mm,
        slot_length_measured_mm=_r(ch.slot_length, 3) if ch.slot_length is not None else None,
        profile=[[_r(t, 3), _r(dd, 4)] for t, dd in prof if np.isfinite(dd)],
    )
    return checks, model


@dataclass
class Details:
    """What the report was computed from, for pictures: the geometry, the thickness field, the channel."""

    geometry: topo.Geometry
    thickness: Thickness | None
    channel: ChannelMeasure | None
    intersections: SelfIntersections


def kernels_built() -> bool:
    """Whether validation runs the compiled inner loops (all three modules are built, and
    FABCTL_MESH_KERNELS is not 0)."""
    return pairs_compiled() and balls_compiled() and topo.compiled()


def validate(mesh: MeshInput, plan: Plan | None, resin: ResinProfile, printer: PrinterProfile,
             progress: Progress | None = None) -> ValidationReport:
    """Validate ``mesh`` (never modified) and return the report."""
    return validate_details(mesh, plan, resin, printer, progress)[0]


def validate_details(mesh: MeshInput, plan: Plan | None, resin: ResinProfile, printer: PrinterProfile,
                     progress: Progress | None = None) -> tuple[ValidationReport, Details]:
    """``validate``, plus the ``Details`` behind the report."""
    say = progress or (lambda _stage: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now

    geo = topo.Geometry(mesh.vertices, mesh.faces)
    geo.cross  # noqa: B018 (with the triangles, before the fork, so the child inherits them)
    wall = float(resin.ifu.min_wall_mm.value)
    cap = max(10.0, 3.0 * wall)
    # a forked child computes the thickness's sample pass, then the self-intersections (with their own grid),
    # while the topology checks and then the thickness's exact pass run here: the two cores really work at
    # once (see fabctl.mesh.forked). The sample pass starts before the topology says whether the thickness
    # can be trusted; when it cannot, it is never asked for.
    with Forked(partial(candidates, threads=1, triangles=geo.triangles, with_fans=False), geo.vertices,
                geo.faces, geo.cross, first=(partial(sample_pass, cap=cap), (geo,))) as si_job:
        say("topology")
        checks, sh, labels, facts = topology_checks(geo)
        checks.append(_shell_check(sh))
        lap("topology")
        why = ""
        if not facts["closed"]:
            why = "the mesh is not closed (see watertight / non_manifold_edges)"
        elif not facts["consistent"]:
            why = "face orientation is inconsistent (see winding_consistent)"
        elif not facts["positive"]:
            why = "a shell is inside out or flat (see positive_volume)"
        th = None
        if not why:
            say("wall thickness")
            # (its exact pass builds a grid of just the triangles it can reach)
            first = si_job.first_result()
            timings["thickness_samples"] = round(si_job.first_seconds, 4)
            th = wall_thickness(geo, cap=cap, refine_below=max(wall, printer.min_feature_mm), first=first)
        lap("thickness")
        say("self-intersections")
        if si_job.forked:
            # the pairs around uncertified vertex fans are found here meanwhile (the child has enough)
            fans = fan_hits(geo.vertices, geo.faces, geo.cross, geo.triangles)
            cand = si_job.result().with_hits(*fans)
            si = finish(cand, geo.vertices, geo.faces, geo.cross, labels, geo.edges)
            timings["self_intersections"] = round(si_job.seconds, 4)
        else:  # no child: the same call here, sharing what is already built
            cand = candidates(geo.vertices, geo.faces, geo.cross, triangles=geo.triangles)
            si = finish(cand, geo.vertices, geo.faces, geo.cross, labels, geo.edges)
            lap("self_intersections")
    si_check, si_model = _si_check(si, geo.faces)
    checks.insert(len(checks) - 1, si_check)
    total_area = float(geo.area.sum())
    tchecks, patches = _thickness_checks(th, why, resin, printer, total_area)
    checks += tchecks
    clock = time.perf_counter()
    say("build volume")
    bv = printer.build_volume
    fr = fits_build_volume(geo.vertices, np.array([bv.x_mm, bv.y_mm, bv.z_mm]))
    ext = ", ".join(f"{x:.1f}" for x in fr.extents)
    checks.append(_check(
        "fits_build_volume", fr.fits, fr.fits, True,
        f"fits {printer.id} ({bv.x_mm:g} x {bv.y_mm:g} x {bv.z_mm:g} mm) {fr.orientation}: {ext} mm" if fr.fits
        else f"does not fit {printer.id} ({bv.x_mm:g} x {bv.y_mm:g} x {bv.z_mm:g} mm) in any orientation "
             f"tried; smallest box {ext} mm"))
    fit = Fit(fits=fr.fits, orientation=fr.orientation, extents_mm=[_r(x, 3) for x in fr.extents],
              build_volume_mm=[bv.x_mm, bv.y_mm, bv.z_mm],
              rotation=[[_r(x, 6) for x in row] for row in fr.rotation] if fr.rotation is not None else None)
    lap("fit")
    channel = None
    ch = None
    clearance = float(resin.ifu.min_channel_clearance_mm.value)
    if plan is not None:
        say("channel")
        required = plan.needle_od_mm + clearance
        ch = measure_channel(geo, plan, required)
        cchecks, channel = _channel_checks(ch, plan, required)
        checks += cchecks
        lap("channel")
    lo, hi = geo.bounds
    summary = MeshSummary(
        sha256=mesh.source_sha256, triangles=int(len(mesh.faces)), vertices=int(len(mesh.vertices)),
        bodies=len(sh), volume_mm3=_r(sum(s["volume_mm3"] for s in sh), 3), area_mm2=_r(total_area, 3),
        bbox_mm=[_r(x) for x in hi - lo], bounds_mm=[[_r(x) for x in lo], [_r(x) for x in hi]])
    shells = [Shell(index=s["index"], triangles=s["triangles"], volume_mm3=_r(s["volume_mm3"], 4),
                    area_mm2=_r(s["area_mm2"], 4), centroid_mm=rounded([s["centroid_mm"]])[0], closed=s["closed"])
              for s in sh[:MAX_LOCATIONS]]
    settings = Settings(
        resin=resin.id, printer=printer.id, resin_sha256=profiles.profile_hash(resin),
        printer_sha256=profiles.profile_hash(printer), min_wall_mm=wall, min_feature_mm=_r(printer.min_feature_mm),
        min_channel_clearance_mm=clearance,
        thickness_sample_spacing_mm=_r(th.samples.spacing) if th is not None else 0.0,
        thickness_cap_mm=cap, thickness_samples=int(len(th.value)) if th is not None else 0,
        kernels="compiled" if kernels_built() else "numpy")
    report = ValidationReport(
        ok=is_ok(checks), mesh=summary, min_wall_thickness_mm=_r(th.minimum) if th is not None and len(th.value)
        else None, checks=checks, shells=shells, thin_patches=patches[:MAX_LOCATIONS], self_intersections=si_model,
        channel=channel, fit=fit, settings=settings, timings_s=timings)
    return report, Details(geo, th, ch, si)
