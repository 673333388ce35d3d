"""Synthetic PVP guide plates for the orient/support tests, built with manifold3d booleans.

Design frame: +Z points away from the patient; the plate's skin side faces -Z and lies on a bent skin sheet;
a boss on the outer side carries a channel whose axis is tilted from -Z by ``tilt_deg`` towards +Y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from manifold3d import Manifold

from fabctl.plan import Plan


@dataclass
class Guide:
    vertices: np.ndarray
    faces: np.ndarray
    plan: Plan
    skin: tuple[np.ndarray, np.ndarray]

    @property
    def mesh(self) -> trimesh.Trimesh:
        return trimesh.Trimesh(self.vertices, self.faces, process=False)


def _sheet_z(x: np.ndarray, y: np.ndarray, bend_r: float, sag_r: float) -> np.ndarray:
    """Height of the (concave towards -Z) skin sheet: a bend about X plus a gentle sag along X."""
    return np.sqrt(np.maximum(bend_r ** 2 - y ** 2, 0.0)) - bend_r + (x ** 2) / (2.0 * sag_r)


def _warp(bend_r: float, sag_r: float):
    def fn(v: np.ndarray) -> np.ndarray:
        out = np.array(v, dtype=np.float64, copy=True)
        out[:, 2] = v[:, 2] + _sheet_z(v[:, 0], v[:, 1], bend_r, sag_r)
        return out

    return fn


def _tm(m: Manifold) -> tuple[np.ndarray, np.ndarray]:
    mesh = m.to_mesh()
    return np.asarray(mesh.vert_properties)[:, :3].astype(np.float64), np.asarray(mesh.tri_verts).astype(np.int64)


def _axis_cyl(d: float, t0: float, t1: float, seg: int, tilt_deg: float, origin: np.ndarray) -> Manifold:
    c = Manifold.cylinder(t1 - t0, d / 2.0, d / 2.0, seg).translate([0.0, 0.0, t0])
    return c.rotate([-tilt_deg, 0.0, 0.0]).translate(list(origin))


def make_guide(size: tuple[float, float] = (60.0, 40.0), thick: float = 3.0, bend_r: float = 70.0,
               sag_r: float = 160.0, boss_d: float = 12.0, boss_h: float = 14.0, channel_d: float = 3.3,
               tilt_deg: float = 25.0, slot_mm: float = 0.0, ribs: int = 0,
               regions: list[dict] | None = None) -> Guide:
    """A bent plate with a boss and a tilted channel; ``ribs`` adds ridges on the outer side."""
    warp = _warp(bend_r, sag_r)
    plate = Manifold.cube([size[0], size[1], thick], center=True).translate([0, 0, thick / 2])
    plate = plate.refine_to_length(2.0).warp_batch(warp)
    top_c = np.array([0.0, 0.0, thick])
    axis_up = np.array([0.0, np.sin(np.radians(tilt_deg)), np.cos(np.radians(tilt_deg))])
    boss = _axis_cyl(boss_d, -thick - 8.0, boss_h, 64, tilt_deg, top_c)
    above = Manifold.cube([size[0] * 3, size[1] * 3, 80.0], center=True).translate([0, 0, 40.0])
    above = above.refine_to_length(3.0).warp_batch(warp)
    body = plate + (boss ^ above)
    for k in range(ribs):
        x = -size[0] / 2 + (k + 1) * size[0] / (ribs + 1)
        rib = Manifold.cube([1.6, size[1] * 0.9, 6.0], center=True).translate([x, 0, thick + 2.0])
        body = body + (rib.refine_to_length(2.0).warp_batch(warp))
    bore = _axis_cyl(channel_d, -40.0, 60.0, 48, tilt_deg, top_c)
    if slot_mm > 0:
        slot = Manifold.cube([slot_mm, channel_d, 100.0], center=True).translate([0, 0, 10.0])
        bore = bore + slot.rotate([-tilt_deg, 0.0, 0.0]).translate(list(top_c))
        bore = bore + _axis_cyl(channel_d, -40.0, 60.0, 48, tilt_deg, top_c + [slot_mm / 2, 0, 0])
        bore = bore + _axis_cyl(channel_d, -40.0, 60.0, 48, tilt_deg, top_c + [-slot_mm / 2, 0, 0])
    v, f = _tm(body - bore)
    # entry: where the axis meets the skin sheet (z ~ sheet height below the plate centre)
    t = np.linspace(-20, 20, 40001)
    pts = top_c + t[:, None] * axis_up
    gap = np.abs(pts[:, 2] - _sheet_z(pts[:, 0], pts[:, 1], bend_r, sag_r))
    entry = pts[int(np.argmin(gap))]
    plan = Plan(vertebral_level="L3", side="left", needle_gauge=11, needle_od_mm=3.048,
                entry_point_mm=[float(x) for x in entry], direction=[float(x) for x in -axis_up],
                target_depth_mm=80.0, channel_diameter_mm=channel_d, slot_length_mm=slot_mm,
                slot_direction=[1.0, 0.0, 0.0], skin_surface="skin.stl", protected_regions=regions or [])
    return Guide(v, f, plan, skin_sheet(size, bend_r, sag_r))


def skin_sheet(size: tuple[float, float], bend_r: float, sag_r: float,
               step: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """An open skin patch (grid) a little larger than the plate, on the plate's underside."""
    xs = np.arange(-size[0] / 2 - 6, size[0] / 2 + 6 + 1e-9, step)
    ys = np.arange(-size[1] / 2 - 6, size[1] / 2 + 6 + 1e-9, step)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    v = np.column_stack([gx.ravel(), gy.ravel(), _sheet_z(gx.ravel(), gy.ravel(), bend_r, sag_r)])
    nx, ny = len(xs), len(ys)
    i, j = np.meshgrid(np.arange(nx - 1), np.arange(ny - 1), indexing="ij")
    a = (i * ny + j).ravel()
    f = np.concatenate([np.column_stack([a, a + ny, a + 1]), np.column_stack([a + 1, a + ny, a + ny + 1])])
    return v, f


def subdivided(g: Guide, times: int) -> Guide:
    v, f = g.vertices, g.faces
    for _ in range(times):
        v, f = trimesh.remesh.subdivide(v, f)
    return Guide(np.asarray(v), np.asarray(f), g.plan, g.skin)


def make_dome(radius: float = 20.0, channel_d: float = 3.3) -> Guide:
    """A solid dome whose flat base (z = 0, facing -Z) is the skin-contact surface, with a vertical bore:
    base down needs the least support of any pose, and all of it on the contact surface."""
    dome = Manifold.sphere(radius, 96) ^ Manifold.cube([3 * radius] * 3, center=True).translate([0, 0, 1.5 * radius])
    bore = Manifold.cylinder(3 * radius, channel_d / 2.0, channel_d / 2.0, 48).translate([0, 0, -radius])
    v, f = _tm(dome - bore)
    plan = Plan(vertebral_level="L3", side="left", needle_gauge=11, needle_od_mm=3.048,
                entry_point_mm=[0.0, 0.0, 0.0], direction=[0.0, 0.0, -1.0], target_depth_mm=80.0,
                channel_diameter_mm=channel_d, slot_length_mm=0.0, slot_direction=[1.0, 0.0, 0.0],
                skin_surface="skin.stl")
    xs = np.arange(-radius - 6, radius + 6 + 1e-9, 1.0)
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    sv = np.column_stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)])
    n = len(xs)
    i, j = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    a = (i * n + j).ravel()
    sf = np.concatenate([np.column_stack([a, a + n, a + 1]), np.column_stack([a + 1, a + n, a + n + 1])])
    return Guide(v, f, plan, (sv, sf))
