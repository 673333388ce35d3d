"""The surgical plan that arrives with a guide design: level, side, needle, trajectory, channel.

Every length is in millimetres in the design mesh's own frame (after intake's unit conversion). Directions
are unit vectors; a direction that is not unit length is refused, never normalised behind the user's back.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fabctl.errors import InputError

#: nominal needle outer diameters by gauge, mm (±0.025 mm); clinical-traceability.md §5
NEEDLE_OD_MM: dict[int, float] = {8: 4.191, 10: 3.404, 11: 3.048, 12: 2.769, 13: 2.413, 14: 2.108, 15: 1.829}
NEEDLE_OD_TOLERANCE_MM = 0.025
UNIT_TOLERANCE = 1e-6

Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]


def _finite(v: list[float], name: str) -> list[float]:
    if not all(math.isfinite(x) for x in v):
        raise ValueError(f"{name} has a non-finite component")
    return v


def _unit(v: list[float], name: str) -> list[float]:
    _finite(v, name)
    n = math.sqrt(sum(x * x for x in v))
    if abs(n - 1.0) > UNIT_TOLERANCE:
        raise ValueError(f"{name} must be a unit vector (|d| = {n:.6g}, tolerance {UNIT_TOLERANCE:g})")
    return v


class ProtectedRegion(BaseModel):
    """A sphere on the part that supports must not touch (a marking line, a label, a datum)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    center_mm: Vec3
    radius_mm: float = Field(gt=0, le=100)


class Plan(BaseModel):
    """A PVP guide's plan (``plan.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    vertebral_level: str = Field(pattern=r"^(T([1-9]|1[0-2])|L[1-5])$", description="e.g. L3")
    side: Literal["left", "right"]
    needle_gauge: int = Field(ge=8, le=15)
    needle_od_mm: float = Field(gt=0, le=5)
    entry_point_mm: Vec3 = Field(description="where the trajectory meets the skin, mesh frame, mm")
    direction: Vec3 = Field(description="unit vector from the entry point into the patient")
    target_depth_mm: float = Field(gt=0, le=250, description="entry point to the planned needle tip")
    channel_diameter_mm: float = Field(gt=0, le=10, description="designed bore of the guide channel")
    slot_length_mm: float = Field(ge=0, le=30, description="runway length; 0 for a round bore")
    slot_direction: Vec3 = Field(description="unit vector of the runway's long axis, normal to direction")
    skin_surface: str | None = Field(
        default=None, description="skin-surface mesh, relative to plan.json, in the design's frame"
    )
    protected_regions: list[ProtectedRegion] = Field(default_factory=list)

    @field_validator("entry_point_mm")
    @classmethod
    def _entry_finite(cls, v: list[float]) -> list[float]:
        return _finite(v, "entry_point_mm")

    @field_validator("direction", "slot_direction")
    @classmethod
    def _unit_vectors(cls, v: list[float], info) -> list[float]:
        return _unit(v, info.field_name)

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        nominal = NEEDLE_OD_MM.get(self.needle_gauge)
        if nominal is None:
            raise ValueError(f"needle_gauge {self.needle_gauge} is not one of {sorted(NEEDLE_OD_MM)}")
        if abs(self.needle_od_mm - nominal) > NEEDLE_OD_TOLERANCE_MM:
            raise ValueError(
                f"needle_od_mm {self.needle_od_mm} does not match {self.needle_gauge}G "
                f"({nominal} ± {NEEDLE_OD_TOLERANCE_MM} mm)"
            )
        if self.channel_diameter_mm <= self.needle_od_mm:
            raise ValueError(
                f"channel_diameter_mm {self.channel_diameter_mm} must exceed needle_od_mm {self.needle_od_mm}"
            )
        dot = sum(a * b for a, b in zip(self.direction, self.slot_direction, strict=True))
        if abs(dot) > 1e-3:
            raise ValueError(f"slot_direction must be normal to direction (dot = {dot:.4g}, limit 0.001)")
        return self

    @property
    def target_point_mm(self) -> list[float]:
        return [p + self.target_depth_mm * d for p, d in zip(self.entry_point_mm, self.direction, strict=True)]


def load_plan(path: Path) -> Plan:
    """Read and check ``plan.json``; one clear ``InputError`` naming the file and field on any problem."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"plan {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"plan {path}: not readable JSON ({err})") from None
    return parse_plan(raw, str(path))


def parse_plan(raw: object, where: str = "plan") -> Plan:
    try:
        return Plan.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        msg = first["msg"].removeprefix("Value error, ")
        loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise InputError(f"{where}: {loc}: {msg}{more}", hint="fix plan.json; see docs") from None
