"""Trace events of the slice stage."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from fabctl.trace.events import SHA_FIELD, Event, Sha256, register


@register
class SliceRecorded(Event):
    """A job file was sliced from a design revision: what went in, what came out, what the checks found."""

    TYPE: ClassVar[str] = "slice.recorded"
    revision: int = Field(ge=1)
    design_sha256: Sha256 = SHA_FIELD
    job_sha256: Sha256 = SHA_FIELD
    job_format: Literal["sl1", "gcode", "cli", "cli-binary"]
    printer_id: str
    printer_profile_sha256: Sha256 = SHA_FIELD
    resin_id: str
    resin_profile_sha256: Sha256 = SHA_FIELD
    as_is: bool = Field(description="sliced in the given position with no supports (inspection only)")
    layer_count: int = Field(ge=1)
    layer_height_mm: float = Field(gt=0)
    first_layer_height_mm: float = Field(gt=0)
    placement_mm: list[float] = Field(min_length=3, max_length=3)
    volume_ml: float = Field(ge=0)
    print_time_s: float = Field(ge=0)
    islands: int = Field(ge=0)
    resin_traps: int = Field(ge=0)
    suction_cups: int = Field(ge=0)
    open_chains: int = Field(ge=0)
    fabctl_version: str
