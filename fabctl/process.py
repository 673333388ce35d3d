"""Process profiles: the settings of the orient and support stages (TOML -> strict pydantic, bounded).

A process profile lives in ``profiles/process/<id>.toml`` next to the package, or under
``$FABCTL_PROFILES_DIR/process`` when that is set; its id is its file name. Every length is in millimetres
and every angle in degrees, with the unit in the field name. Unknown keys and out-of-range values are refused
with an error naming the file, the key and the limit.

Figures that carry over from the peers (sla-prep.md §5.2-5.4): about one support point per 11.1 mm² of
unsupported area, points at least 1 mm apart, 45° critical angle, 0.5 mm head front (SL1S profiles), 1 mm
pillar, 3 mm base, 5 mm elevation, 1 mm pad, 1.6 mm brim, cross-bracing above 15 mm.
The channel-angle preference of 45° is from clinical-traceability.md §5 (entry deviation 0.86 mm at 45°
against 1.35 mm at 0°).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fabctl.errors import ProfileError
from fabctl.tomlmodel import ID_RE, load_model

DEFAULT_PROCESS = "default"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProtectSettings(_Strict):
    """What counts as a protected surface, and how far supports keep from it."""

    channel_margin_mm: float = Field(default=0.5, ge=0.0, le=3.0,
                                     description="added to the channel radius when finding bore faces")
    skin_contact_distance_mm: float = Field(default=1.0, gt=0.0, le=5.0,
                                            description="faces this close to the skin mesh touch the patient")
    contact_margin_mm: float = Field(default=1.0, ge=0.3, le=10.0,
                                     description="least distance from a support contact to a protected face")
    bridgeable_bore_mm: float = Field(
        default=5.0, ge=0.0, le=10.0,
        description="a bore whose ceiling spans at most this needs no support (clinical-traceability.md §5)")
    protected_angle_margin_deg: float = Field(
        default=2.0, ge=0.0, le=15.0,
        description="protected faces must stay this far inside the self-supporting range")


class SupportSettings(_Strict):
    """Support points, heads, pillars, braces and pad (PrusaSlicer 2.5 names in brackets)."""

    critical_angle_deg: float = Field(default=45.0, ge=20.0, le=70.0,
                                      description="faces whose normal is within this of straight down need "
                                                  "support [support_critical_angle]")
    area_per_point_mm2: float = Field(default=11.1, ge=2.0, le=60.0,
                                      description="unsupported area per support point")
    min_point_distance_mm: float = Field(default=1.0, ge=0.3, le=5.0,
                                         description="[support_points_minimal_distance]")
    head_front_diameter_mm: float = Field(default=0.5, ge=0.2, le=2.0,
                                          description="[support_head_front_diameter]")
    head_length_mm: float = Field(default=2.0, ge=0.5, le=6.0, description="[support_head_width]")
    head_penetration_mm: float = Field(default=0.3, ge=0.0, le=1.0, description="[support_head_penetration]")
    pillar_diameter_mm: float = Field(default=1.0, ge=0.3, le=5.0, description="[support_pillar_diameter]")
    base_diameter_mm: float = Field(default=3.0, ge=0.5, le=10.0, description="[support_base_diameter]")
    base_height_mm: float = Field(default=1.0, ge=0.2, le=5.0, description="[support_base_height]")
    object_elevation_mm: float = Field(default=5.0, ge=2.0, le=30.0,
                                       description="pad top to the part's lowest point "
                                                   "[support_object_elevation]")
    safety_distance_mm: float = Field(default=0.5, ge=0.1, le=3.0,
                                      description="clearance of pillars and braces from the part")
    brace_min_height_mm: float = Field(default=15.0, ge=3.0, le=200.0,
                                       description="pillars taller than this are cross-braced")
    brace_max_link_mm: float = Field(default=10.0, ge=2.0, le=50.0,
                                     description="longest horizontal span of a brace")
    brace_diameter_mm: float = Field(default=0.7, ge=0.2, le=5.0)
    pad_thickness_mm: float = Field(default=1.0, ge=0.3, le=5.0, description="[pad_wall_thickness]")
    pad_brim_mm: float = Field(default=1.6, ge=0.0, le=10.0, description="[pad_brim_size]")
    segments: int = Field(default=12, ge=6, le=48, description="facets around a pillar or head")

    @model_validator(mode="after")
    def _consistent(self) -> SupportSettings:
        if self.pillar_diameter_mm < self.head_front_diameter_mm:
            raise ValueError("pillar_diameter_mm: must be at least head_front_diameter_mm")
        if self.base_diameter_mm < self.pillar_diameter_mm:
            raise ValueError("base_diameter_mm: must be at least pillar_diameter_mm")
        if self.object_elevation_mm < self.head_length_mm + self.base_height_mm + 0.5:
            raise ValueError("object_elevation_mm: must exceed head_length_mm + base_height_mm + 0.5")
        return self


class OrientWeights(_Strict):
    """Weights of the normalised score terms (each term is about 0..1 for a typical part)."""

    supported_area: float = Field(default=1.0, ge=0.0, le=100.0)
    support_count: float = Field(default=0.5, ge=0.0, le=100.0)
    peak_layer_area: float = Field(default=1.0, ge=0.0, le=100.0)
    height: float = Field(default=0.5, ge=0.0, le=100.0)
    channel_angle: float = Field(default=0.5, ge=0.0, le=100.0)
    region_overhang: float = Field(default=2.0, ge=0.0, le=100.0,
                                   description="plan regions (marking lines) needing support, by area")


class OrientSettings(_Strict):
    candidates: int = Field(default=1000, ge=50, le=50000, description="Fibonacci-sphere up directions")
    refine_seeds: int = Field(default=4, ge=1, le=50)
    refine_rounds: int = Field(default=3, ge=0, le=10)
    channel_preferred_deg: float = Field(default=45.0, ge=0.0, le=90.0,
                                         description="preferred angle between channel axis and build axis")
    volume_samples: int = Field(default=20000, ge=1000, le=1_000_000)
    layer_bin_mm: float = Field(default=0.5, gt=0.01, le=5.0,
                                description="bin height for the peak layer cross-section")
    weights: OrientWeights = OrientWeights()


class ProofSettings(_Strict):
    layer_mm: float = Field(default=0.1, ge=0.01, le=0.5, description="slice step of the island check")
    pixel_mm: float = Field(default=0.1, ge=0.02, le=0.5, description="raster pixel of the island check")
    sample_spacing_mm: float = Field(default=0.5, ge=0.05, le=1.0,
                                     description="spacing of sample points on support surfaces")
    island_window_mm: float = Field(default=2.0, ge=0.1, le=10.0,
                                    description="a contact this far below an island's first layer holds it")
    island_reach_mm: float = Field(default=2.0, ge=0.2, le=10.0,
                                   description="a contact this far (XY) from an island's footprint holds it")


class ProcessProfile(_Strict):
    id: str
    name: str = Field(min_length=1, max_length=120)
    source: str = Field(min_length=1, description="where the figures come from")
    protect: ProtectSettings = ProtectSettings()
    support: SupportSettings = SupportSettings()
    orient: OrientSettings = OrientSettings()
    proof: ProofSettings = ProofSettings()


def process_dir() -> Path:
    """``$FABCTL_PROFILES_DIR/process``, or ``profiles/process`` shipped beside the package."""
    env = os.environ.get("FABCTL_PROFILES_DIR")
    root = Path(env) if env else Path(__file__).resolve().parent.parent / "profiles"
    return root / "process"


def load_process_file(path: Path) -> ProcessProfile:
    """Parse and check one process profile; ``ProfileError`` names the file, the key and the limit."""
    return load_model(path, ProcessProfile, hint="fix the process profile; `fabctl profile check`")


def load_process(pid: str = DEFAULT_PROCESS, root: Path | None = None) -> ProcessProfile:
    """The process profile ``pid``; ``ProfileError`` (exit 2) when there is none."""
    if not ID_RE.fullmatch(pid):
        raise ProfileError(f"process profile id {pid!r} is not valid ([a-z0-9][a-z0-9-]*)")
    d = root if root is not None else process_dir()
    path = d / f"{pid}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(d.glob("*.toml"))) or "none"
        raise ProfileError(f"no process profile {pid!r}", hint=f"known process profiles: {known}")
    return load_process_file(path)
