"""The validation report: what ``fabctl validate --json`` prints and what the trace records a summary of.

Every model is strict (``extra="forbid"``). Lengths are millimetres, areas mm², volumes mm³. Location lists
are capped at ``MAX_LOCATIONS`` entries; the matching ``*_total`` field says how many there were.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["error", "warning", "info"]
Scalar = bool | int | float | str | None

#: at most this many locations are listed per check / per report section
MAX_LOCATIONS = 25

#: the check names of DESIGN.md §4, in report order, plus the ones fabctl adds
CHECK_NAMES = (
    "watertight",
    "winding_consistent",
    "positive_volume",
    "non_manifold_edges",
    "non_manifold_vertices",
    "degenerate_faces",
    "duplicate_faces",
    "self_intersections",
    "shell_count",
    "min_wall_thickness",
    "min_feature_size",
    "fits_build_volume",
    "channel_clearance",
    "channel_open",
    "slot_length",
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def rounded(points, ndigits: int = 3, cap: int = MAX_LOCATIONS) -> list[list[float]]:
    """(n, 3) array-like -> at most ``cap`` rows of rounded floats (JSON-friendly)."""
    out = []
    for p in list(points)[:cap]:
        out.append([round(float(x), ndigits) for x in p])
    return out


class Check(Strict):
    """One check: did it pass, how bad is a failure, the measured value and the limit it was held to."""

    name: str
    passed: bool
    severity: Severity
    value: Scalar = None
    limit: Scalar = None
    message: str
    locations_mm: list[list[float]] = Field(default_factory=list, max_length=MAX_LOCATIONS)
    locations_total: int = Field(default=0, ge=0)


class MeshSummary(Strict):
    sha256: str
    triangles: int
    vertices: int
    bodies: int
    volume_mm3: float
    area_mm2: float
    bbox_mm: list[float] = Field(min_length=3, max_length=3, description="extents x, y, z")
    bounds_mm: list[list[float]] = Field(description="[[xmin, ymin, zmin], [xmax, ymax, zmax]]")


class Shell(Strict):
    """One connected shell (vertex-connected faces)."""

    index: int
    triangles: int
    volume_mm3: float
    area_mm2: float
    centroid_mm: list[float]
    closed: bool


class ThinPatch(Strict):
    """A connected region of the surface thinner than the limit."""

    limit_mm: float
    min_thickness_mm: float
    area_mm2: float
    centroid_mm: list[float]
    thinnest_at_mm: list[float]
    faces: int


class Intersections(Strict):
    pairs: int
    intra_shell_pairs: int
    inter_shell_pairs: int
    faces: int
    locations_mm: list[list[float]] = Field(default_factory=list)


class Channel(Strict):
    """The needle channel measured along the planned axis (only with a plan)."""

    entry_mm: list[float]
    direction: list[float]
    axial_range_mm: list[float] = Field(description="[t0, t1] along the axis where the guide has material")
    required_diameter_mm: float = Field(description="needle OD + the resin's minimum clearance")
    designed_diameter_mm: float
    measured_min_diameter_mm: float
    narrowest_at_mm: list[float] | None
    narrowest_t_mm: float | None
    open: bool
    obstructions: int
    obstruction_locations_mm: list[list[float]] = Field(default_factory=list)
    slot_length_planned_mm: float
    slot_length_measured_mm: float | None
    profile: list[list[float]] = Field(
        default_factory=list, description="[t_mm, diameter_mm] pairs: the bore along the axis"
    )


class Fit(Strict):
    fits: bool
    orientation: str
    extents_mm: list[float]
    build_volume_mm: list[float]
    rotation: list[list[float]] | None = None


class Settings(Strict):
    resin: str
    printer: str
    resin_sha256: str
    printer_sha256: str
    min_wall_mm: float
    min_feature_mm: float
    min_channel_clearance_mm: float
    thickness_sample_spacing_mm: float
    thickness_cap_mm: float
    thickness_samples: int
    # which inner loops ran: "compiled" (fabctl/mesh/_balls.c, _cellpairs.c, _topology.c) or "numpy" (no C compiler at
    # install, or FABCTL_MESH_KERNELS=0); the same checks and limits, and the same exact minimum wall, but the
    # numpy ball loop can leave a few thickness-map values high (it looks at the 32 nearest samples, not all)
    kernels: Literal["compiled", "numpy"] | None = None


class ValidationReport(Strict):
    ok: bool
    mesh: MeshSummary
    min_wall_thickness_mm: float | None
    checks: list[Check]
    shells: list[Shell] = Field(default_factory=list)
    thin_patches: list[ThinPatch] = Field(default_factory=list)
    self_intersections: Intersections | None = None
    channel: Channel | None = None
    fit: Fit | None = None
    settings: Settings
    timings_s: dict[str, float] = Field(default_factory=dict)

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def failed(self) -> list[Check]:
        """Error-severity checks that did not pass."""
        return [c for c in self.checks if c.severity == "error" and not c.passed]


def is_ok(checks: list[Check]) -> bool:
    """A report is ok when every error-severity check passed (warnings and infos never block)."""
    return all(c.passed for c in checks if c.severity == "error")
