"""Build examples/case-42: a PVP guide plate designed on real anatomy.

Inputs (committed, byte-exact copies, see ``case-42/anatomy/ATTRIBUTION.md``):

- ``anatomy/hubmap_vh_male_lumbar_back_patch_mm.stl``: lumbar back skin of the HuBMAP Visible Human male, mm.
  Frame ("skin frame", used for every output): +x lateral (the patient's left, glTF convention), +y cranial,
  +z anterior; the back faces -z.
- ``anatomy/lumbar_L3_mean_ssm.stl``: mean-shape L3 of an SSM, mm ("SSM frame"): +x anterior, +y lateral,
  +z cranial, symmetric about y = 0.

Steps: register the vertebra under the skin (a rigid transform), plan a unilateral, medially inclined
trajectory from the skin to the contralateral half of the vertebral body (grid search on a voxel model of the
vertebra), then build the guide: a 3 mm plate conforming to the skin, a midline marking ridge, and a boss with
a runway-shaped slot along the trajectory. The booleans use manifold3d (``pip install manifold3d``).

Run: ``.venv/bin/python examples/build_case42.py [--out DIR] [--no-preview]``. Deterministic: no randomness,
fixed grids, so a rerun writes byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import trimesh
from scipy import ndimage

HERE = Path(__file__).resolve().parent
CASE_DIR = HERE / "case-42"
ANATOMY_DIR = CASE_DIR / "anatomy"
SKIN_FILE = "hubmap_vh_male_lumbar_back_patch_mm.stl"
L3_FILE = "lumbar_L3_mean_ssm.stl"
INPUT_SHA256 = {
    SKIN_FILE: "212be5ce0195c5f0a921a25cbddef6857184f0240c00a244a1db28b15c580f3d",
    L3_FILE: "59d2791d81229d1fd3df6b412e8b5ebff6a79007e4b07269555f32344a869ea3",
}

# --- registration (skin frame, mm) -------------------------------------------------------------------------
MIDLINE_X_MM = 0.0  # the VH male skin is symmetric about x = 0; the patch's spinal furrow lies there
L3_LEVEL_Y_MM = 200.0  # L3 body centre ~0.61 x stature above the floor; the model's y = 0 is at mid-height
BODY_CENTRE_DEPTH_MM = 88.0  # skin (midline) to the centre of the L3 body, along +z
# --- plan ---------------------------------------------------------------------------------------------------
SIDE = "left"  # entry on the patient's left = +x in the skin frame
NEEDLE_GAUGE = 11
NEEDLE_OD_MM = 3.048
CHANNEL_DIAMETER_MM = 3.3
SLOT_LENGTH_MM = 10.0
TARGET_PAST_MIDLINE_MM = 6.0  # needle tip this far into the contralateral half (~1/4 of the half-width)
TARGET_AP_FRACTION = 0.8  # tip 80 % of the way from the body's posterior to anterior wall (anterior third)
CANAL_CLEARANCE_MM = 4.0  # axis to the spinal canal
PEDICLE_HEIGHT_MARGIN_MM = 4.0  # at the pedicle, the axis stays this far inside its cranio-caudal extent
MAX_SAGITTAL_TILT_DEG = 15.0
# --- guide ----------------------------------------------------------------------------------------------------
PLATE_THICKNESS_MM = 3.0
GRID_STEP_MM = 1.5
PLATE_MEDIAL_MARGIN_MM = 12.0  # plate edge past the midline, on the contralateral side
PLATE_LATERAL_MARGIN_MM = 14.0  # plate edge lateral of the entry (the skin patch ends at x = 97.5 mm)
PLATE_LENGTH_MM = 90.0  # cranio-caudal
PLATE_CORNER_RADIUS_MM = 8.0
RIDGE_WIDTH_MM = 2.5  # wider than the clinical resins' 2.0 mm minimum wall
RIDGE_HEIGHT_MM = 1.0
RIDGE_END_MARGIN_MM = 6.0
BOSS_WIDTH_MM = 12.0  # across the runway; length = width + slot length
BOSS_HEIGHT_MM = 13.0  # along the axis, above the plate's top surface
ARC_SEGMENTS = 32  # per half circle of the stadium outlines
SIMPLIFY_TOLERANCE_MM = 0.01  # surfaces move less than this when slivers are collapsed
VOXEL_MM = 0.5
STL_HEADER = b"fabctl case-42 guide; units mm"


# ----------------------------------------------------------------------------------------------------------
# small geometry kernels
# ----------------------------------------------------------------------------------------------------------
def unit(v: np.ndarray) -> np.ndarray:
    """Normalise (..., 3) vectors along the last axis."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def ray_hits(tri: np.ndarray, origins: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Möller–Trumbore: parameter t of every ray/triangle crossing.

    tri (F,3,3), origins (N,3), direction (3,) shared by all rays -> t (N,F), NaN where the line misses.
    """
    v0 = tri[:, 0]
    e1 = tri[:, 1] - v0
    e2 = tri[:, 2] - v0
    pvec = np.cross(direction, e2)
    det = np.einsum("fi,fi->f", e1, pvec)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    out = np.full((len(origins), len(tri)), np.nan)
    chunk = max(1, 2_000_000 // len(tri))
    for a in range(0, len(origins), chunk):
        s = origins[a : a + chunk, None, :] - v0[None]  # (n,F,3)
        u = np.einsum("nfi,fi->nf", s, pvec) * inv
        q = np.cross(s, e1)
        v = np.einsum("nfi,i->nf", q, direction) * inv
        t = np.einsum("nfi,fi->nf", q, e2) * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1)
        out[a : a + chunk] = np.where(hit, t, np.nan)
    return out


def first_hit(tri: np.ndarray, origins: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Smallest positive t per ray (N,), NaN where the ray misses the mesh."""
    t = ray_hits(tri, origins, direction)
    t = np.where(t > 0, t, np.inf)
    best = t.min(axis=1)
    return np.where(np.isfinite(best), best, np.nan)


def occupancy_grid(tri: np.ndarray, lo: np.ndarray, step: float, shape: tuple[int, int, int]) -> np.ndarray:
    """Voxels (centres lo + index*step) inside a closed mesh, by the parity of rays along +x.

    tri (F,3,3) -> bool (nx,ny,nz). Each triangle is tested only against the rays inside its (y,z) box.
    """
    nx, ny, nz = shape
    yz = tri[:, :, 1:]
    j0 = np.clip(np.ceil((yz[:, :, 0].min(1) - lo[1]) / step), 0, ny).astype(int)
    j1 = np.clip(np.floor((yz[:, :, 0].max(1) - lo[1]) / step), -1, ny - 1).astype(int)
    k0 = np.clip(np.ceil((yz[:, :, 1].min(1) - lo[2]) / step), 0, nz).astype(int)
    k1 = np.clip(np.floor((yz[:, :, 1].max(1) - lo[2]) / step), -1, nz - 1).astype(int)
    nj = np.maximum(j1 - j0 + 1, 0)
    nk = np.maximum(k1 - k0 + 1, 0)
    count = nj * nk
    fi = np.repeat(np.arange(len(tri)), count)
    local = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    j = j0[fi] + local // nk[fi]
    k = k0[fi] + local % nk[fi]
    q = np.stack([lo[1] + j * step, lo[2] + k * step], axis=1)
    a, b, c = yz[fi, 0], yz[fi, 1], yz[fi, 2]

    def cross2(p: np.ndarray, r: np.ndarray) -> np.ndarray:
        return p[:, 0] * r[:, 1] - p[:, 1] * r[:, 0]

    den = cross2(b - a, c - a)
    good = np.abs(den) > 1e-15
    den = np.where(good, den, 1.0)
    s = cross2(q - a, c - a) / den
    t = cross2(b - a, q - a) / den
    inside = good & (s >= 0) & (t >= 0) & (s + t <= 1)
    x = tri[fi, 0, 0] + s * (tri[fi, 1, 0] - tri[fi, 0, 0]) + t * (tri[fi, 2, 0] - tri[fi, 0, 0])
    i = np.clip(np.ceil((x[inside] - lo[0]) / step), 0, nx).astype(int)
    flat = (i * ny + j[inside]) * nz + k[inside]
    crossings = np.bincount(flat, minlength=(nx + 1) * ny * nz).reshape(nx + 1, ny, nz)
    return (np.cumsum(crossings, axis=0)[:nx] % 2) == 1


def prism(
    polygon: np.ndarray, origin: np.ndarray, frame: np.ndarray, z0: float, z1: float
) -> trimesh.Trimesh:
    """Extrude a convex polygon.

    polygon (m,2) counter-clockwise in the (frame[0], frame[1]) plane; frame (3,3) rows are a right-handed
    basis whose third row is the extrusion axis; the prism spans origin + z*frame[2] for z in [z0, z1].
    """
    m = len(polygon)
    ring = origin + polygon[:, :1] * frame[0] + polygon[:, 1:] * frame[1]
    vertices = np.vstack([ring + z0 * frame[2], ring + z1 * frame[2]])
    i = np.arange(m)
    n = (i + 1) % m
    fan = np.arange(1, m - 1)
    faces = np.vstack(
        [
            np.column_stack([np.zeros(m - 2, int), fan + 1, fan]),  # bottom, facing -axis
            np.column_stack([np.full(m - 2, m), m + fan, m + fan + 1]),  # top, facing +axis
            np.column_stack([i, n, m + n]),
            np.column_stack([i, m + n, m + i]),
        ]
    )
    return trimesh.Trimesh(vertices, faces, process=False)


def stadium(
    width: float, length: float, segments: int = ARC_SEGMENTS, circumscribe: bool = False
) -> np.ndarray:
    """Counter-clockwise outline (2*(segments+1), 2) of a stadium: long axis along the first coordinate.

    With ``circumscribe`` the arcs' polygon lies outside the true circle, so a bore is never undersize.
    """
    r = width / 2.0
    if circumscribe:
        r /= math.cos(math.pi / (2 * segments))
    half = (length - width) / 2.0
    a = np.linspace(-math.pi / 2, math.pi / 2, segments + 1)
    right = np.column_stack([half + r * np.cos(a), r * np.sin(a)])
    left = np.column_stack([-half - r * np.cos(a), -r * np.sin(a)])
    return np.vstack([right, left])


def rounded_rectangle(lo: np.ndarray, hi: np.ndarray, radius: float, segments: int = 8) -> np.ndarray:
    """Counter-clockwise outline (4*(segments+1), 2) of the rectangle [lo, hi] with rounded corners."""
    corners = [(hi[0] - radius, lo[1] + radius), (hi[0] - radius, hi[1] - radius),
               (lo[0] + radius, hi[1] - radius), (lo[0] + radius, lo[1] + radius)]  # fmt: skip
    parts = []
    for q, (cx, cy) in enumerate(corners):
        a = np.linspace(-math.pi / 2 + q * math.pi / 2, q * math.pi / 2, segments + 1)
        parts.append(np.column_stack([cx + radius * np.cos(a), cy + radius * np.sin(a)]))
    return np.vstack(parts)


def slab(bottom: np.ndarray, top: np.ndarray) -> trimesh.Trimesh:
    """Closed solid between two grids of points, bottom (nu,nv,3) and top (nu,nv,3).

    The grids are indexed (u, v) with u x v pointing from top to bottom (into the patient); bottom faces face
    that way, top faces the other, and the four sides are stitched along the grid boundary.
    """
    nu, nv, _ = bottom.shape
    idx = np.arange(nu * nv).reshape(nu, nv)
    a, b = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel()
    c, d = idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    off = nu * nv
    loop = np.concatenate([idx[:, 0], idx[-1, 1:], idx[-2::-1, -1], idx[0, -2:0:-1]])  # CCW seen from u x v
    p, q = loop, np.roll(loop, -1)
    faces = np.vstack(
        [
            np.column_stack([a, b, c]), np.column_stack([a, c, d]),  # bottom
            np.column_stack([a, c, b]) + off, np.column_stack([a, d, c]) + off,  # top
            np.column_stack([p, p + off, q + off]), np.column_stack([p, q + off, q]),  # sides
        ]
    )  # fmt: skip
    return trimesh.Trimesh(np.vstack([bottom.reshape(-1, 3), top.reshape(-1, 3)]), faces, process=False)


def grid_normals(grid: np.ndarray) -> np.ndarray:
    """Unit normals (nu,nv,3) of a grid surface (nu,nv,3), oriented along d/du x d/dv."""
    return unit(np.cross(np.gradient(grid, axis=0), np.gradient(grid, axis=1)))


def to_manifold(mesh: trimesh.Trimesh):  # manifold3d is imported lazily: no return annotation
    """trimesh -> manifold3d.Manifold (float64); raises if the input is not an oriented 2-manifold."""
    import manifold3d

    out = manifold3d.Manifold(
        manifold3d.Mesh64(
            vert_properties=np.ascontiguousarray(mesh.vertices, dtype=np.float64),
            tri_verts=np.ascontiguousarray(mesh.faces, dtype=np.uint64),
        )
    )
    if out.status() != manifold3d.Error.NoError or out.is_empty():
        raise ValueError(f"not a manifold solid: {out.status()}")
    return out


def from_manifold(solid) -> trimesh.Trimesh:
    """manifold3d.Manifold -> trimesh (vertices merged by manifold, not re-processed)."""
    mesh = solid.to_mesh64()
    return trimesh.Trimesh(np.asarray(mesh.vert_properties)[:, :3], np.asarray(mesh.tri_verts), process=False)


def write_binary_stl(path: Path, mesh: trimesh.Trimesh) -> None:
    """Binary STL, float32, neutral 80-byte header (no names), attribute bytes 0."""
    tri = mesh.triangles.astype(np.float32)
    normals = unit(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]).astype(np.float64))
    record = np.zeros(len(tri), dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    record["n"] = np.nan_to_num(normals).astype(np.float32)
    record["v"] = tri
    header = STL_HEADER.ljust(80, b" ")
    path.write_bytes(header + np.uint32(len(tri)).tobytes() + record.tobytes())


# ----------------------------------------------------------------------------------------------------------
# anatomy: the vertebra
# ----------------------------------------------------------------------------------------------------------
def vertebra_model(l3: trimesh.Trimesh) -> dict:
    """Voxel model and landmarks of the SSM vertebra (SSM frame, mm).

    Returns a dict: ``lo`` (3,), ``step``, ``occ`` (nx,ny,nz) bone, ``canal`` (nx,ny,nz) the spinal canal
    (the most posterior enclosed hole of the axial sections, extruded over the whole height), ``posterior_wall_x``
    (anterior edge of the canal at the midline = posterior wall of the body), ``body`` (bone anterior of it),
    ``body_centre`` (3,), ``spinous_tip`` (3,), and ``isthmus``: the x of the narrowest coronal section of the
    ipsilateral pedicle (bone lateral of the canal, within 20 mm of it) with that section's y and z ranges.
    """
    step = VOXEL_MM
    lo = np.floor(l3.bounds[0] / step) * step - 2.0
    shape = tuple(int(n) for n in np.ceil((l3.bounds[1] + 2.0 - lo) / step) + 1)
    occ = occupancy_grid(l3.triangles, lo, step, shape)
    holes = np.zeros_like(occ)
    for k in range(shape[2]):
        holes[:, :, k] = ndimage.binary_fill_holes(occ[:, :, k]) & ~occ[:, :, k]
    labels, n = ndimage.label(holes)
    xs = lo[0] + step * np.arange(shape[0])
    ys = lo[1] + step * np.arange(shape[1])
    on_midline = np.abs(ys) < 1.0
    best, best_x = 0, np.inf
    for lab in range(1, n + 1):  # a handful of components: the canal and endplate hollows
        ii, jj, _ = np.nonzero(labels == lab)
        if on_midline[jj].any() and len(ii) > 50 and xs[ii].mean() < best_x:
            best, best_x = lab, xs[ii].mean()
    canal2d = (labels == best).any(axis=2)
    canal = np.repeat(canal2d[:, :, None], shape[2], axis=2)
    ii, jj = np.nonzero(canal2d)
    posterior_wall_x = float(xs[ii[on_midline[jj]]].max())
    x_of = xs[:, None, None]
    body = occ & (x_of > posterior_wall_x)
    ijk = np.argwhere(body)
    side = 1.0 if SIDE == "left" else -1.0  # ipsilateral is SSM +y for a left entry
    zs = lo[2] + step * np.arange(shape[2])
    canal_edge = (side * ys[jj]).max()
    lateral = (side * ys > canal_edge) & (side * ys < canal_edge + 20.0)
    span = np.nonzero((xs >= xs[ii].min() + 2.0) & (xs <= posterior_wall_x - 1.0))[0]
    area = occ[span][:, lateral].sum(axis=(1, 2))
    i_isthmus = span[np.argmin(area)]
    pj, pk = np.nonzero(occ[i_isthmus] & lateral[:, None])
    return {
        "lo": lo,
        "step": step,
        "occ": occ,
        "canal": canal,
        "posterior_wall_x": posterior_wall_x,
        "body": body,
        "body_centre": lo + step * ijk.mean(axis=0),
        "spinous_tip": l3.vertices[np.argmin(l3.vertices[:, 0])],
        "isthmus": {
            "x": float(xs[i_isthmus]),
            "y": (float(ys[pj].min()), float(ys[pj].max())),
            "z": (float(zs[pk].min()), float(zs[pk].max())),
        },
    }


def ssm_to_skin_rotation() -> np.ndarray:
    """(3,3) rotation: SSM +x anterior -> skin +z, SSM +y lateral -> skin +x, SSM +z cranial -> skin +y."""
    return np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def skin_z(skin: trimesh.Trimesh, xy: np.ndarray) -> np.ndarray:
    """z of the skin (first hit of a ray going anterior) under points xy (N,2) -> (N,)."""
    origins = np.column_stack([xy, np.full(len(xy), skin.bounds[0, 2] - 50.0)])
    return origins[:, 2] + first_hit(skin.triangles, origins, np.array([0.0, 0.0, 1.0]))


def register(vert: dict, skin: trimesh.Trimesh) -> np.ndarray:
    """4x4 SSM -> skin transform: the vertebra's mid-sagittal plane on the skin midline, its body centre at
    L3_LEVEL_Y_MM and BODY_CENTRE_DEPTH_MM anterior of the midline skin."""
    rot = ssm_to_skin_rotation()
    c = vert["body_centre"]
    z0 = skin_z(skin, np.array([[MIDLINE_X_MM, L3_LEVEL_Y_MM]]))[0]
    goal = np.array([MIDLINE_X_MM, L3_LEVEL_Y_MM, z0 + BODY_CENTRE_DEPTH_MM])
    transform = np.eye(4)
    transform[:3, :3] = rot
    transform[:3, 3] = goal - rot @ np.array([c[0], 0.0, c[2]])
    return transform


def apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to points (...,3)."""
    return points @ transform[:3, :3].T + transform[:3, 3]


# ----------------------------------------------------------------------------------------------------------
# plan
# ----------------------------------------------------------------------------------------------------------
def pick_target(vert: dict) -> np.ndarray:
    """Needle tip (SSM frame): TARGET_PAST_MIDLINE_MM into the contralateral half, at the body's mid-height,
    TARGET_AP_FRACTION of the way from the body's posterior to its anterior wall along that line."""
    side = 1.0 if SIDE == "left" else -1.0  # ipsilateral half is SSM +y for a left entry
    y, z = -side * TARGET_PAST_MIDLINE_MM, vert["body_centre"][2]
    lo, step = vert["lo"], vert["step"]
    j, k = (int(round((v - lo[n]) / step)) for n, v in ((1, y), (2, z)))
    xs = lo[0] + step * np.nonzero(vert["body"][:, j, k])[0]
    return np.array([xs.min() + (xs.max() - xs.min()) * TARGET_AP_FRACTION, y, z])


def plan_trajectory(vert: dict, transform: np.ndarray, skin: trimesh.Trimesh) -> dict:
    """Grid search of skin entry points for the line to the target.

    Keeps entries whose axis stays CANAL_CLEARANCE_MM from the canal, passes the ipsilateral pedicle's
    isthmus within its cranio-caudal extent less PEDICLE_HEIGHT_MARGIN_MM (through or beside the pedicle,
    never below it into the intervertebral foramen where the nerve root exits, nor above it), with a sagittal
    tilt of at most MAX_SAGITTAL_TILT_DEG; takes the one closest to the midline, then the least tilted.
    """
    side = 1.0 if SIDE == "left" else -1.0
    target_ssm = pick_target(vert)
    target = apply(transform, target_ssm)
    lateral, cranial = np.meshgrid(np.arange(40.0, 120.01, 0.5), np.arange(-20.0, 20.01, 1.0), indexing="ij")
    xy = np.column_stack([MIDLINE_X_MM + side * lateral.ravel(), target[1] + cranial.ravel()])
    entries = np.column_stack([xy, skin_z(skin, xy)])
    ok = np.isfinite(entries[:, 2])
    inv = np.linalg.inv(transform)
    e_ssm = apply(inv, entries[ok])
    frac = np.linspace(0.0, 1.0, 600)
    pts = e_ssm[:, None, :] + frac[None, :, None] * (target_ssm - e_ssm)[:, None, :]  # (n,600,3)
    lo, step, occ = vert["lo"], vert["step"], vert["occ"]
    idx = np.rint((pts - lo) / step).astype(int)
    idx = np.clip(idx, 0, np.array(occ.shape) - 1)
    d_canal = ndimage.distance_transform_edt(~vert["canal"], sampling=step)
    look = (idx[..., 0], idx[..., 1], idx[..., 2])
    canal_clear = d_canal[look].min(axis=1)
    isthmus = vert["isthmus"]
    at = (isthmus["x"] - e_ssm[:, 0]) / (target_ssm[0] - e_ssm[:, 0])
    z_at = e_ssm[:, 2] + at * (target_ssm[2] - e_ssm[:, 2])
    z_lo, z_hi = isthmus["z"]
    d = unit(target - entries[ok])
    tilt = np.degrees(np.arctan2(np.abs(d[:, 1]), np.hypot(d[:, 0], d[:, 2])))
    good = (
        (canal_clear >= CANAL_CLEARANCE_MM)
        & (z_at >= z_lo + PEDICLE_HEIGHT_MARGIN_MM)
        & (z_at <= z_hi - PEDICLE_HEIGHT_MARGIN_MM)
        & (tilt <= MAX_SAGITTAL_TILT_DEG)
    )
    if not good.any():
        raise RuntimeError("no entry point meets the trajectory constraints")
    lat = lateral.ravel()[ok]
    order = np.lexsort((tilt, lat))
    best = order[good[order]][0]
    entry = entries[ok][best]
    depth_inside = ndimage.distance_transform_edt(occ, sampling=step)
    tip_idx = tuple(np.rint((target_ssm - lo) / step).astype(int))
    return {
        "entry": entry,
        "target": target,
        "target_ssm": target_ssm,
        "direction": unit(target - entry),
        "canal_clearance_mm": float(canal_clear[best]),
        "isthmus_crossing_ssm_mm": [
            float(isthmus["x"]),
            float(e_ssm[best, 1] + at[best] * (target_ssm[1] - e_ssm[best, 1])),
            float(z_at[best]),
        ],
        "target_cortex_clearance_mm": float(depth_inside[tip_idx]),
    }


def bone_intervals(l3_skin: trimesh.Trimesh, entry: np.ndarray, direction: np.ndarray, length: float) -> list:
    """Exact [t_in, t_out] intervals (mm from the entry) where the segment runs inside the vertebra."""
    t = ray_hits(l3_skin.triangles, entry[None], direction)[0]
    t = np.sort(t[np.isfinite(t)])
    assert len(t) % 2 == 0, "line grazes the vertebra; parity undefined"
    return [(float(a), float(min(b, length))) for a, b in zip(t[::2], t[1::2], strict=True) if a < length]


# ----------------------------------------------------------------------------------------------------------
# guide
# ----------------------------------------------------------------------------------------------------------
def plate_frame(skin: trimesh.Trimesh, centre_xy: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Best-fit plane of the skin vertices under the footprint: rows u (lateral), v (cranial), n (into the
    patient), origin = the plane point above centre_xy. Returns (4,3): origin, u, v, n."""
    v = skin.vertices
    near = np.all(np.abs(v[:, :2] - centre_xy) <= half + 5.0, axis=1)
    centroid = v[near].mean(axis=0)
    n = np.linalg.svd(v[near] - centroid)[2][2]
    n = n if n[2] > 0 else -n
    u = unit(np.array([1.0, 0.0, 0.0]) - n[0] * n)
    vv = np.cross(n, u)
    origin = np.array([centre_xy[0], centre_xy[1], 0.0])
    origin = origin + (centroid - origin) @ n / n[2] * np.array([0.0, 0.0, 1.0])  # on the plane, above centre
    return np.vstack([origin, u, vv, n])


def skin_grid(skin: trimesh.Trimesh, frame: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Skin sampled on a regular GRID_STEP_MM grid of the plane, by rays along n: (nu,nv,3)."""
    origin, u, v, n = frame
    us = np.arange(lo[0], hi[0] + 1e-9, GRID_STEP_MM)
    vs = np.arange(lo[1], hi[1] + 1e-9, GRID_STEP_MM)
    uu, vv = np.meshgrid(us, vs, indexing="ij")
    start = origin + uu[..., None] * u + vv[..., None] * v - 60.0 * n
    t = first_hit(skin.triangles, start.reshape(-1, 3), n).reshape(uu.shape)
    if np.isnan(t).any():
        raise RuntimeError("plate footprint runs off the skin patch")
    return start + t[..., None] * n


def midline_ridge(top: np.ndarray, outward: np.ndarray, side: float) -> tuple[trimesh.Trimesh, np.ndarray]:
    """Marking ridge on the plate's top surface (nu,nv,3) along x = MIDLINE_X_MM, cranio-caudal.

    Per grid row, the columns where the top surface crosses the midline +- RIDGE_WIDTH_MM/2 are interpolated;
    the ridge is a slab from 0.5 mm under the top surface to RIDGE_HEIGHT_MM above it, RIDGE_END_MARGIN_MM
    short of the plate's ends. Returns the solid and its top centre line (rows,3).
    """
    nu, nv, _ = top.shape
    end = int(np.ceil(RIDGE_END_MARGIN_MM / GRID_STEP_MM)) + 1
    rows = np.arange(end, nv - end)
    offsets = np.array([-0.5, 0.5, 0.0]) * RIDGE_WIDTH_MM * side
    cols = np.array([[np.interp(side * (MIDLINE_X_MM + o), side * top[:, j, 0], np.arange(nu)) for j in rows]
                     for o in offsets])  # (3,rows) fractional column indices  # fmt: skip
    i0 = np.floor(cols).astype(int)
    w = (cols - i0)[..., None]

    def sample(grid: np.ndarray) -> np.ndarray:  # (3,rows,3)
        return (1 - w) * grid[i0, rows] + w * grid[i0 + 1, rows]

    base, normal = sample(top), unit(sample(outward))
    ridge = slab(base[:2] - 0.5 * normal[:2], base[:2] + RIDGE_HEIGHT_MM * normal[:2])
    return ridge, base[2] + RIDGE_HEIGHT_MM * normal[2]


def build_guide(skin: trimesh.Trimesh, plan: dict) -> tuple[trimesh.Trimesh, dict]:
    """Plate ∪ boss ∪ ridge − runway slot, clipped to the rounded footprint. Returns the mesh and its layout."""
    side = 1.0 if SIDE == "left" else -1.0
    entry, d = plan["entry"], plan["direction"]
    lateral = side * (entry[0] - MIDLINE_X_MM)
    u_lo, u_hi = -PLATE_MEDIAL_MARGIN_MM, lateral + PLATE_LATERAL_MARGIN_MM
    half = np.array([(u_hi - u_lo) / 2.0, PLATE_LENGTH_MM / 2.0])
    centre_xy = np.array([MIDLINE_X_MM + side * (u_lo + u_hi) / 2.0, entry[1]])
    frame = plate_frame(skin, centre_xy, half)
    origin, u, v, n = frame
    if side < 0:  # keep u x v = n with u pointing laterally
        u, v = -u, -v
    lo, hi = -half - GRID_STEP_MM, half + GRID_STEP_MM
    bottom = skin_grid(skin, np.vstack([origin, u, v, n]), lo, hi)
    outward = -grid_normals(bottom)  # d/du x d/dv points into the patient
    top = bottom + PLATE_THICKNESS_MM * outward
    plate = slab(bottom, top)
    above = slab(bottom + outward, bottom + 60.0 * outward)  # 1 mm above the skin and up: clips the boss

    outline = rounded_rectangle(-half, half, PLATE_CORNER_RADIUS_MM)
    footprint = prism(outline, origin, np.vstack([u, -v, -n]), -40.0, 80.0)

    ridge, ridge_line = midline_ridge(top, outward, side)

    # boss and slot: stadium prisms along the axis, long axis cranio-caudal (normal to the axis)
    slot_dir = unit(np.array([0.0, 1.0, 0.0]) - d[1] * d)
    across = np.cross(slot_dir, d)
    axis_frame = np.vstack([slot_dir, across, -d])  # extrusion axis points out of the patient
    t_top = PLATE_THICKNESS_MM / abs(float(d @ n))  # plate top along the axis, approx.
    boss = prism(
        stadium(BOSS_WIDTH_MM, BOSS_WIDTH_MM + SLOT_LENGTH_MM),
        entry,
        axis_frame,
        -10.0,
        t_top + BOSS_HEIGHT_MM,
    )
    slot = prism(
        stadium(CHANNEL_DIAMETER_MM, CHANNEL_DIAMETER_MM + SLOT_LENGTH_MM, circumscribe=True),
        entry, axis_frame, -15.0, t_top + BOSS_HEIGHT_MM + 15.0,
    )  # fmt: skip
    solid = ((to_manifold(plate) + (to_manifold(boss) ^ to_manifold(above)) + to_manifold(ridge))
             ^ to_manifold(footprint)) - to_manifold(slot)  # fmt: skip
    guide = from_manifold(solid.simplify(SIMPLIFY_TOLERANCE_MM))  # collapses boolean slivers
    layout = {
        "slot_direction": slot_dir,
        "plate_frame": np.vstack([origin, u, v, n]),
        "plate_half_extent_mm": half,
        "ridge_line": ridge_line,
        "boss_top_t": -(t_top + BOSS_HEIGHT_MM),
        "bottom": bottom,
    }
    return guide, layout


# ----------------------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------------------
def inside_near_axis(tri: np.ndarray, points: np.ndarray, origin: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Points (N,3) inside a closed mesh (F,3,3), by the parity of rays along d -> bool (N,).

    Only triangles that can reach the lines through the points are tested: those whose bounding sphere comes
    within the points' largest distance of the axis (origin, d).
    """

    def off_axis(p: np.ndarray) -> np.ndarray:
        r = p - origin
        return np.linalg.norm(r - np.outer(r @ d, d), axis=1)

    centre = tri.mean(axis=1)
    radius = np.linalg.norm(tri - centre[:, None], axis=2).max(axis=1)
    near = off_axis(centre) - radius <= off_axis(points).max() + 1e-6
    t = ray_hits(tri[near], points, d)
    return (np.nan_to_num(t, nan=-1.0) > 0).sum(axis=1) % 2 == 1


def channel_probe(entry: np.ndarray, d: np.ndarray, slot_dir: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """Points (N,3) of needle-sized cylinders (radius NEEDLE_OD_MM/2) along the axis, for t in [t0, t1],
    at runway positions -SLOT_LENGTH_MM/2, 0, +SLOT_LENGTH_MM/2 along slot_dir, plus the axes themselves."""
    across = np.cross(slot_dir, d)
    a = np.linspace(0.0, 2 * math.pi, 24, endpoint=False)
    ring = np.concatenate([[[0.0, 0.0]], 0.5 * NEEDLE_OD_MM * np.column_stack([np.cos(a), np.sin(a)])])
    ts = np.arange(t0, t1 + 1e-9, 0.5)
    shifts = np.array([-0.5, 0.0, 0.5]) * SLOT_LENGTH_MM
    p = (entry + ts[:, None, None, None] * d + shifts[None, :, None, None] * slot_dir
         + ring[None, None, :, :1] * slot_dir + ring[None, None, :, 1:] * across)  # fmt: skip
    return p.reshape(-1, 3)


def needle_first_contacts(l3_skin: trimesh.Trimesh, plan: dict, transform: np.ndarray, vert: dict) -> dict:
    """Exact first bone contact of the needle: along the axis and along 24 lines of its outer surface.

    Returns the distances from the entry (mm) and whether each first contact is on the body (SSM x anterior
    of the body's posterior wall) or on the posterior elements.
    """
    entry, d = plan["entry"], plan["direction"]
    length = float(np.linalg.norm(plan["target"] - entry))
    a = np.linspace(0.0, 2 * math.pi, 24, endpoint=False)
    e1 = unit(np.cross(d, [0.0, 1.0, 0.0]))
    e2 = np.cross(d, e1)
    offsets = np.vstack(
        [[0.0, 0.0, 0.0], 0.5 * NEEDLE_OD_MM * (np.outer(np.cos(a), e1) + np.outer(np.sin(a), e2))]
    )
    t = ray_hits(l3_skin.triangles, entry + offsets, d)
    t = np.where((t > 0) & (t < length), t, np.inf).min(axis=1)
    hit = np.isfinite(t)
    points = entry + offsets[hit] + t[hit, None] * d
    on_body = apply(np.linalg.inv(transform), points)[:, 0] > vert["posterior_wall_x"]
    return {
        "axis_first_bone_mm": float(t[0]),
        "axis_first_bone_is_body": bool(on_body[0]) if hit[0] else None,
        "needle_surface_first_bone_mm": float(t[hit].min()),
        "needle_surface_contacts_on_posterior_elements": int((~on_body).sum()),
    }


def summarise(guide: trimesh.Trimesh, plan: dict, layout: dict, l3_skin: trimesh.Trimesh, to_ssm: np.ndarray,
              posterior_wall_x: float) -> dict:  # fmt: skip
    """Numbers for the README and the report; raises if the guide or the trajectory fails a check.

    to_ssm (4,4) maps the skin frame back to the SSM frame, where bone anterior of posterior_wall_x is the body.
    """
    side = 1.0 if SIDE == "left" else -1.0
    entry, d, target = plan["entry"], plan["direction"], plan["target"]
    depth = float(np.linalg.norm(target - entry))
    bodies = guide.split(only_watertight=False)
    probe = channel_probe(entry, d, layout["slot_direction"], layout["boss_top_t"] - 1.0, 1.0)
    blocked = int(inside_near_axis(guide.triangles, probe, entry, d).sum())
    bottom = layout["bottom"]
    n_out = -grid_normals(bottom)
    sample, normals = bottom[6::12, 6::12].reshape(-1, 3), n_out[6::12, 6::12].reshape(-1, 3)
    plain = (np.linalg.norm(sample - entry, axis=1) > 25.0) & (np.abs(sample[:, 0] - MIDLINE_X_MM) > 5.0)
    thick = []
    for p, nn in zip(sample[plain], normals[plain], strict=True):
        t = ray_hits(guide.triangles, (p - 0.5 * nn)[None], nn)[0]
        t = np.sort(t[np.isfinite(t)])
        if len(t) == 2:  # inside the rounded footprint
            thick.append(t[1] - t[0])
    # bone intervals along the axis, split where the axis crosses the body's posterior wall (SSM x)
    d_ssm = to_ssm[:3, :3] @ d
    t_wall = (posterior_wall_x - apply(to_ssm, entry)[0]) / d_ssm[0]
    intervals = []
    for a, b in bone_intervals(l3_skin, entry, d, depth):
        cuts = [a, *([t_wall] if a < t_wall < b else []), b]
        intervals += list(zip(cuts[:-1], cuts[1:], strict=True))
    in_body = np.array([(a + b) / 2 > t_wall for a, b in intervals])
    length = np.array([b - a for a, b in intervals])
    midline_t = (MIDLINE_X_MM - entry[0]) / d[0]
    summary = {
        "watertight": bool(guide.is_watertight),
        "winding_consistent": bool(guide.is_winding_consistent),
        "bodies": len(bodies),
        "volume_mm3": float(guide.volume),
        "extents_mm": guide.extents.tolist(),
        "triangles": len(guide.faces),
        "plate_thickness_mm": [float(min(thick)), float(max(thick)), len(thick)],
        "channel_probe_points_inside_solid": blocked,
        "channel_probe_points": len(probe),
        "entry_from_midline_mm": float(side * (entry[0] - MIDLINE_X_MM)),
        "medial_inclination_from_sagittal_deg": float(np.degrees(np.arcsin(abs(d[0])))),
        "axial_plane_angle_deg": float(np.degrees(np.arctan2(abs(d[0]), d[2]))),
        "sagittal_tilt_deg": float(np.degrees(np.arcsin(d[1]))),
        "target_depth_mm": depth,
        "target_past_midline_mm": float(-side * (target[0] - MIDLINE_X_MM)),
        "bone_intervals_mm": [
            [round(a, 2), round(b, 2), "body" if body else "posterior elements"]
            for (a, b), body in zip(intervals, in_body, strict=True)
        ],  # fmt: skip
        "path_fraction_in_posterior_elements": float(length[~in_body].sum() / depth),
        "path_fraction_in_body": float(length[in_body].sum() / depth),
        "path_in_contralateral_half_mm": depth - midline_t,
        "canal_clearance_mm": plan["canal_clearance_mm"],
        "isthmus_crossing_ssm_mm": plan["isthmus_crossing_ssm_mm"],
        "target_cortex_clearance_mm": plan["target_cortex_clearance_mm"],
    }
    failed = {
        "watertight": not guide.is_watertight,
        "winding consistent": not guide.is_winding_consistent,
        "one body": len(bodies) != 1,
        "positive volume": guide.volume <= 0,
        "plate thickness": max(abs(t - PLATE_THICKNESS_MM) for t in thick) > 0.05,
        "channel open": blocked > 0,
        "tip in the body": not (in_body[-1] and intervals[-1][1] >= depth - 1e-9),
        "crosses the midline in the body": not (in_body[-1] and intervals[-1][0] < midline_t),
    }
    if any(failed.values()):
        raise RuntimeError(f"guide fails: {[k for k, bad in failed.items() if bad]}")
    return summary


# ----------------------------------------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------------------------------------
def _round(v: np.ndarray, digits: int = 4) -> list[float]:
    return [round(float(x), digits) for x in v]


def plan_document(plan: dict, layout: dict) -> dict:
    """plan.json content (fabctl.plan.Plan); directions keep 12 digits so |d| = 1 within 1e-6."""
    ridge = layout["ridge_line"]
    marks = ridge[np.linspace(0, len(ridge) - 1, 12).round().astype(int)]
    regions = [{"name": f"marking-line-{i:02d}", "center_mm": _round(p, 3), "radius_mm": 4.5}
               for i, p in enumerate(marks)]  # fmt: skip
    top = plan["entry"] + layout["boss_top_t"] * plan["direction"]
    regions.append({"name": "channel-mouth", "center_mm": _round(top, 3), "radius_mm": 9.0})
    return {
        "schema_version": 1,
        "vertebral_level": "L3",
        "side": SIDE,
        "needle_gauge": NEEDLE_GAUGE,
        "needle_od_mm": NEEDLE_OD_MM,
        "entry_point_mm": _round(plan["entry"]),
        "direction": [round(float(x), 12) for x in plan["direction"]],
        "target_depth_mm": round(float(np.linalg.norm(plan["target"] - plan["entry"])), 3),
        "channel_diameter_mm": CHANNEL_DIAMETER_MM,
        "slot_length_mm": SLOT_LENGTH_MM,
        "slot_direction": [round(float(x), 12) for x in layout["slot_direction"]],
        "skin_surface": "skin.stl",
        "protected_regions": regions,
    }


def skin_under_plate(skin: trimesh.Trimesh, layout: dict, margin: float = 10.0) -> trimesh.Trimesh:
    """The original skin-patch faces whose centroid projects inside the plate footprint + margin."""
    origin, u, v, _ = layout["plate_frame"]
    rel = skin.triangles_center - origin
    half = layout["plate_half_extent_mm"] + margin
    keep = (np.abs(rel @ u) <= half[0]) & (np.abs(rel @ v) <= half[1])
    return skin.submesh([np.nonzero(keep)[0]], append=True)


def registration_document(transform: np.ndarray, vert: dict, skin: trimesh.Trimesh, plan: dict) -> dict:
    """registration.json: the SSM -> skin transform and the landmarks the tests and README use."""
    tip = apply(transform, vert["spinous_tip"])
    body = apply(transform, vert["body_centre"])
    skin_mid = skin_z(skin, np.array([[MIDLINE_X_MM, tip[1]], [MIDLINE_X_MM, body[1]]]))
    return {
        "what": "rigid transform taking anatomy/lumbar_L3_mean_ssm.stl (SSM frame) into the skin frame of "
        "anatomy/hubmap_vh_male_lumbar_back_patch_mm.stl, guide.stl and plan.json",
        "frame": "mm; +x lateral = patient's left, +y cranial, +z anterior (the back faces -z)",
        "transform_ssm_to_skin": [_round(r, 9) for r in transform],
        "midline_x_mm": MIDLINE_X_MM,
        "body_posterior_wall_ssm_x_mm": round(vert["posterior_wall_x"], 3),
        "body_centre_ssm_mm": _round(vert["body_centre"], 3),
        "body_centre_mm": _round(body, 3),
        "body_centre_depth_mm": round(float(body[2] - skin_mid[1]), 3),
        "spinous_tip_mm": _round(tip, 3),
        "spinous_tip_depth_mm": round(float(tip[2] - skin_mid[0]), 3),
        "target_mm": _round(plan["target"], 3),
        "target_ssm_mm": _round(plan["target_ssm"], 3),
    }


def render_preview(path: Path, guide: trimesh.Trimesh, l3_skin: trimesh.Trimesh, skin: trimesh.Trimesh,
                   plan: dict, ridge_line: np.ndarray, notes: list[str]) -> None:  # fmt: skip
    """Two flat-shaded orthographic views with PIL (painter's algorithm): posterior (guide over the vertebra)
    and axial from cranial (a 12 mm slab of skin at the entry level, vertebra, guide, trajectory in red)."""
    from PIL import Image, ImageDraw

    near = np.abs(skin.triangles_center[:, 1] - plan["entry"][1]) < 6.0
    skin_slab = skin.submesh([np.nonzero(near)[0]], append=True)
    bone, blue, tan = (235, 232, 220), (70, 130, 200), (225, 200, 185)
    views = [  # title, rows: screen right, screen up, toward the eye (proper rotations)
        ("posterior view", np.array([[-1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]]), [(l3_skin, bone), (guide, blue)]),
        ("axial view from cranial", np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]),
         [(skin_slab, tan), (l3_skin, bone), (guide, blue)]),
    ]  # fmt: skip
    size, scale = 480, 2.2
    centre = np.array(
        [plan["entry"][0] / 2.0, plan["target"][1], (plan["entry"][2] + plan["target"][2]) / 2.0]
    )
    image = Image.new("RGB", (2 * size, size), "white")
    draw = ImageDraw.Draw(image)
    light = unit(np.array([0.3, 0.5, 1.0]))
    for k, (title, axes, parts) in enumerate(views):
        p = np.concatenate([(m.triangles - centre) @ axes.T for m, _ in parts])  # (F,3,3) screen coordinates
        shade = np.concatenate([0.35 + 0.65 * np.abs(m.face_normals @ axes.T @ light) for m, _ in parts])
        colour = np.concatenate([np.tile(c, (len(m.faces), 1)) for m, c in parts]) * shade[:, None]
        xy = np.stack([k * size + size / 2 + scale * p[:, :, 0], size / 2 - scale * p[:, :, 1]], axis=-1)
        for i in np.argsort(p[:, :, 2].mean(axis=1), kind="stable"):
            draw.polygon([tuple(q) for q in xy[i].round(2)], fill=tuple(int(x) for x in colour[i]))
        s = (np.array([plan["entry"] - 30 * plan["direction"], plan["target"]]) - centre) @ axes.T
        draw.line(
            [(k * size + size / 2 + scale * q[0], size / 2 - scale * q[1]) for q in s],
            fill=(200, 0, 0),
            width=2,
        )
        if k == 0:  # the marking ridge is 1.5 mm wide: outline it
            r = (ridge_line - centre) @ axes.T
            draw.line(
                [(size / 2 + scale * q[0], size / 2 - scale * q[1]) for q in r], fill=(20, 30, 90), width=2
            )
        draw.text((k * size + 8, 8), title, fill="black")
    for i, note in enumerate(notes):
        draw.text((8, size - 16 * (len(notes) - i) - 4), note, fill="black")
    image.save(path, format="PNG", optimize=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> dict:
    """Build case-42 into --out (default examples/case-42); print and return the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CASE_DIR)
    parser.add_argument("--no-preview", action="store_true")
    args = parser.parse_args(argv)
    for name, digest in INPUT_SHA256.items():
        if sha256(ANATOMY_DIR / name) != digest:
            raise RuntimeError(f"{ANATOMY_DIR / name} is not the expected byte-exact copy")
    skin = trimesh.load(ANATOMY_DIR / SKIN_FILE, force="mesh")
    l3 = trimesh.load(ANATOMY_DIR / L3_FILE, force="mesh")
    vert = vertebra_model(l3)
    transform = register(vert, skin)
    l3_skin = l3.copy()
    l3_skin.apply_transform(transform)
    plan = plan_trajectory(vert, transform, skin)
    guide, layout = build_guide(skin, plan)
    summary = summarise(guide, plan, layout, l3_skin, np.linalg.inv(transform), vert["posterior_wall_x"])
    summary.update(needle_first_contacts(l3_skin, plan, transform, vert))

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_binary_stl(out / "guide.stl", guide)
    write_binary_stl(out / "skin.stl", skin_under_plate(skin, layout))
    doc = plan_document(plan, layout)
    (out / "plan.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    reg = registration_document(transform, vert, skin, plan)
    (out / "registration.json").write_text(json.dumps(reg, indent=2) + "\n", encoding="utf-8")
    summary.update({k: reg[k] for k in ("body_centre_depth_mm", "spinous_tip_depth_mm")})
    if not args.no_preview:
        notes = [
            f"case-42, L3, {SIDE} entry {summary['entry_from_midline_mm']:.1f} mm from the midline, "
            f"{summary['medial_inclination_from_sagittal_deg']:.1f} deg medial, depth {summary['target_depth_mm']:.1f} mm",
            f"guide {summary['volume_mm3'] / 1000:.1f} cm3, plate {PLATE_THICKNESS_MM:g} mm, "
            f"11G runway {CHANNEL_DIAMETER_MM:g} x {CHANNEL_DIAMETER_MM + SLOT_LENGTH_MM:g} mm",
        ]
        render_preview(out / "preview.png", guide, l3_skin, skin, plan, layout["ridge_line"], notes)
    summary["guide_sha256"] = sha256(out / "guide.stl")
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
