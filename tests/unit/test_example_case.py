"""examples/case-42: the committed guide, plan and registration are a consistent, printable PVP guide.

The checks here are written independently of examples/build_case42.py (own ray casting), so a bug in the
build script's own checks does not hide here.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from fabctl.plan import load_plan

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "examples" / "case-42"
SCRIPT = ROOT / "examples" / "build_case42.py"
OUTPUTS = ("guide.stl", "skin.stl", "plan.json", "registration.json")


def ray_hits(tri: np.ndarray, origins: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """t (N,F) of the lines origin + t*direction through triangles (F,3,3); NaN where a line misses."""
    v0, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    p = np.cross(direction, e2)
    det = np.einsum("fi,fi->f", e1, p)
    inv = 1.0 / np.where(np.abs(det) > 1e-12, det, np.nan)
    s = origins[:, None, :] - v0[None]
    u = np.einsum("nfi,fi->nf", s, p) * inv
    q = np.cross(s, e1)
    v = np.einsum("nfi,i->nf", q, direction) * inv
    t = np.einsum("nfi,fi->nf", q, e2) * inv
    return np.where((u >= 0) & (v >= 0) & (u + v <= 1), t, np.nan)


@pytest.fixture(scope="module")
def guide() -> trimesh.Trimesh:
    return trimesh.load(CASE / "guide.stl", force="mesh", process=True)


@pytest.fixture(scope="module")
def skin() -> trimesh.Trimesh:
    return trimesh.load(CASE / "skin.stl", force="mesh", process=True)


@pytest.fixture(scope="module")
def plan():
    return load_plan(CASE / "plan.json")


@pytest.fixture(scope="module")
def registration() -> dict:
    return json.loads((CASE / "registration.json").read_text(encoding="utf-8"))


def _outward(skin: trimesh.Trimesh, point: np.ndarray) -> np.ndarray:
    """Outward (posterior, -z) unit normal of the skin face nearest to point."""
    n = skin.face_normals[np.argmin(np.linalg.norm(skin.triangles_center - point, axis=1))]
    return n if n[2] < 0 else -n


def test_guide_is_one_closed_printable_body(guide: trimesh.Trimesh) -> None:
    assert guide.is_watertight
    assert guide.is_winding_consistent
    assert len(guide.split(only_watertight=False)) == 1
    assert 10_000 < guide.volume < 60_000  # mm³
    assert (guide.area_faces > 0).all()
    assert max(guide.extents) < 145  # fits a Form 3B / Form 2 platform in some orientation


def test_stl_header_is_neutral() -> None:
    raw = (CASE / "guide.stl").read_bytes()
    header = raw[:80]
    assert not header.lower().startswith(b"solid")
    assert b"case-42" in header and b"mm" in header
    assert len(raw) == 84 + 50 * int.from_bytes(raw[80:84], "little")


def test_plan_matches_the_design(plan) -> None:
    assert plan.vertebral_level == "L3"
    assert plan.side == "left"
    assert plan.needle_gauge == 11 and plan.needle_od_mm == pytest.approx(3.048)
    assert plan.needle_od_mm < plan.channel_diameter_mm <= plan.needle_od_mm + 0.4
    assert plan.slot_length_mm == pytest.approx(10.0)
    assert plan.skin_surface == "skin.stl" and (CASE / plan.skin_surface).is_file()
    d, s = np.array(plan.direction), np.array(plan.slot_direction)
    assert abs(np.linalg.norm(d) - 1) < 1e-9 and abs(d @ s) < 1e-9
    assert abs(s[1]) > 0.95  # the runway runs cranio-caudally (+y is cranial)


@pytest.mark.parametrize("fx", [0.2, 0.4, 0.6])
@pytest.mark.parametrize("fy", [0.15, 0.5, 0.85])
def test_plate_is_3mm_thick(
    guide: trimesh.Trimesh, skin: trimesh.Trimesh, plan, fx: float, fy: float
) -> None:
    """Along the skin normal, the guide is one 3 mm layer starting at the skin (away from ridge and boss)."""
    xy = guide.bounds[0, :2] + np.array([fx, fy]) * guide.extents[:2]
    # the sample grid stays clear of the boss and the marking ridge
    assert np.linalg.norm(xy - plan.entry_point_mm[:2]) >= 25.0 and abs(xy[0]) >= 5.0
    start = np.array([[*xy, -200.0]])
    t = ray_hits(skin.triangles, start, np.array([0.0, 0.0, 1.0]))[0]
    on_skin = start[0] + np.nanmin(t[t > 0]) * np.array([0.0, 0.0, 1.0])
    n = _outward(skin, on_skin)
    hits = ray_hits(guide.triangles, (on_skin - 1.0 * n)[None], n)[0]
    hits = np.sort(hits[np.isfinite(hits)])
    assert len(hits) == 2, hits
    assert hits[0] == pytest.approx(1.0, abs=0.05)  # the underside lies on the skin
    assert hits[1] - hits[0] == pytest.approx(3.0, abs=0.1)


def test_entry_is_on_the_skin_and_the_guide_outside(guide, skin, plan) -> None:
    entry, d = np.array(plan.entry_point_mm), np.array(plan.direction)
    t = ray_hits(skin.triangles, (entry - 20 * d)[None], d)[0]
    assert np.nanmin(np.abs(t - 20.0)) < 0.01  # the axis meets the skin at the entry point
    n = _outward(skin, entry)
    assert d @ n < -0.5  # into the patient
    # no part of the guide lies under the skin: every vertex is at or posterior of (-z) the skin below it
    v = guide.vertices
    t = ray_hits(skin.triangles, np.column_stack([v[:, :2], np.full(len(v), -300.0)]), np.array([0.0, 0, 1]))
    skin_z = -300.0 + np.nanmin(np.where(t > 0, t, np.nan), axis=1)
    assert not np.isnan(skin_z).any(), "skin.stl does not cover the guide"
    assert (v[:, 2] <= skin_z + 0.05).all()  # chords of the 1.5 mm resampling cut convex creases by < 0.03
    assert np.median(skin_z - v[:, 2]) > 1.0


def test_channel_is_open_for_the_needle(guide: trimesh.Trimesh, plan) -> None:
    """Lines parallel to the axis on the needle's surface, at both runway ends and the middle, miss the guide."""
    entry, d, s = np.array(plan.entry_point_mm), np.array(plan.direction), np.array(plan.slot_direction)
    b = np.cross(s, d)
    a = np.linspace(0.0, 2 * math.pi, 36, endpoint=False)
    ring = 0.5 * plan.needle_od_mm * (np.outer(np.cos(a), s) + np.outer(np.sin(a), b))
    shift = np.array([-0.5, -0.25, 0.0, 0.25, 0.5])[:, None, None] * plan.slot_length_mm * s
    origins = (entry + shift + np.vstack([np.zeros(3), ring])[None]).reshape(-1, 3)
    t = ray_hits(guide.triangles, origins, d)
    assert np.isnan(t).all(), f"{np.isfinite(t).any(axis=1).sum()} needle lines touch the guide"
    # the channel does go through the guide: the guide surrounds the axis just off the runway
    wall = entry + (0.5 * plan.slot_length_mm + plan.channel_diameter_mm) * s
    assert np.isfinite(ray_hits(guide.triangles, wall[None], d)).sum() >= 2


def test_trajectory_reaches_the_contralateral_half_of_the_L3_body(plan, registration) -> None:
    l3 = trimesh.load(CASE / "anatomy" / "lumbar_L3_mean_ssm.stl", force="mesh")
    transform = np.array(registration["transform_ssm_to_skin"])
    assert np.allclose(transform[:3, :3] @ transform[:3, :3].T, np.eye(3), atol=1e-9)
    l3.apply_transform(transform)
    to_ssm = np.linalg.inv(transform)
    entry, d, depth = np.array(plan.entry_point_mm), np.array(plan.direction), plan.target_depth_mm
    t = ray_hits(l3.triangles, entry[None], d)[0]
    t = np.sort(t[np.isfinite(t) & (t > 0)])
    intervals = [(a, b) for a, b in zip(t[::2], t[1::2], strict=True) if a < depth]
    t_in, t_out = intervals[-1]
    assert t_in < depth < t_out  # the tip is in bone
    ssm_x = lambda t_: (to_ssm[:3, :3] @ (entry + t_ * d) + to_ssm[:3, 3])[0]  # noqa: E731
    wall_x = registration["body_posterior_wall_ssm_x_mm"]
    assert ssm_x(depth) > wall_x + 10.0  # the tip is well inside the vertebral body, not the posterior arch
    t_wall = t_in + (wall_x - ssm_x(t_in)) / (ssm_x(t_in + 1.0) - ssm_x(t_in))
    assert t_in < t_wall < depth  # bone is continuous from the pedicle into the body: no breach in between
    midline = registration["midline_x_mm"]
    tip = entry + depth * d
    assert entry[0] - midline > 0 and tip[0] - midline < -3.0  # left entry, tip in the right half
    t_mid = (midline - entry[0]) / d[0]
    assert t_wall < t_mid < depth  # the needle crosses the midline inside the body
    assert 30.0 < math.degrees(math.asin(abs(d[0]))) < 50.0  # medially inclined from the sagittal plane

    # not through the spinal canal: no soft-tissue point of the path is enclosed by bone in its axial plane
    ts = np.arange(0.0, depth, 0.5)
    soft = ts[~np.any([(ts > a) & (ts < b) for a, b in intervals], axis=0)]
    soft = soft[np.abs(np.array([ssm_x(t_) for t_ in soft]) - wall_x) < 25.0]
    assert len(soft) > 10
    a = np.linspace(0.0, 2 * math.pi, 12, endpoint=False)
    rays = transform[:3, :3] @ np.vstack([np.cos(a), np.sin(a), np.zeros_like(a)])  # SSM axial plane
    enclosed = np.ones(len(soft), bool)
    for ray in rays.T:
        hit = ray_hits(l3.triangles, entry + np.outer(soft, d), ray)
        enclosed &= (hit > 0).any(axis=1)
    assert not enclosed.any(), f"path enclosed by the neural arch at t = {soft[enclosed]}"


def test_registration_depths_are_plausible(registration) -> None:
    assert 70.0 <= registration["body_centre_depth_mm"] <= 90.0
    assert 10.0 <= registration["spinous_tip_depth_mm"] <= 45.0
    assert abs(registration["spinous_tip_mm"][0] - registration["midline_x_mm"]) < 2.0


def test_anatomy_copies_are_byte_exact() -> None:
    expected = {
        "hubmap_vh_male_lumbar_back_patch_mm.stl": "212be5ce0195c5f0a921a25cbddef6857184f0240c00a244a1db28b15c580f3d",
        "lumbar_L3_mean_ssm.stl": "59d2791d81229d1fd3df6b412e8b5ebff6a79007e4b07269555f32344a869ea3",
    }
    for name, digest in expected.items():
        assert hashlib.sha256((CASE / "anatomy" / name).read_bytes()).hexdigest() == digest


def test_build_script_is_deterministic(tmp_path: Path) -> None:
    """Rebuilding into a temp dir reproduces the committed outputs (about 15-25 s).

    Byte for byte with the same library versions; across versions of numpy/manifold3d the last bits of a
    float may move, so a mismatch in bytes falls back to geometry equal within 1e-4 mm.
    """
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--no-preview"], check=True,
                   capture_output=True, timeout=240)  # fmt: skip
    for name in OUTPUTS:
        new, old = (tmp_path / name).read_bytes(), (CASE / name).read_bytes()
        if new == old:
            continue
        if name.endswith(".stl"):
            a, b = trimesh.load(tmp_path / name), trimesh.load(CASE / name)
            assert a.faces.shape == b.faces.shape, name
            assert np.allclose(a.vertices, b.vertices, atol=1e-4), name
        elif name.endswith(".json"):
            ja, jb = json.loads(new), json.loads(old)
            assert set(ja) == set(jb), name
            assert _flat(ja) == pytest.approx(_flat(jb), abs=1e-4), name
        else:
            raise AssertionError(f"{name} differs")


def _flat(doc: object) -> list[float]:
    """Every number in a JSON document, in order."""
    if isinstance(doc, dict):
        return [x for k in sorted(doc) for x in _flat(doc[k])]
    if isinstance(doc, list):
        return [x for v in doc for x in _flat(v)]
    return [float(doc)] if isinstance(doc, int | float) and not isinstance(doc, bool) else []
