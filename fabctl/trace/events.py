"""Typed payloads of trace events. Each event type is a strict pydantic model.

The schema is the privacy guarantee: there is no field for a name, a birth date or any free text copied from
a design file, and ``extra="forbid"`` means none can be smuggled in. Later stages add their own event types
here.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

Sha256 = str
SHA_FIELD = Field(pattern=r"^[0-9a-f]{64}$")


class Event(BaseModel):
    """Base of every event payload; ``TYPE`` is the event type stored with it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    TYPE: ClassVar[str] = ""


class CaseCreated(Event):
    TYPE: ClassVar[str] = "case.created"
    fabctl_version: str


class DesignRegistered(Event):
    """A design revision entered the store (intake or repair)."""

    TYPE: ClassVar[str] = "design.registered"
    revision: int = Field(ge=1)
    origin: Literal["intake", "repair"]
    source_sha256: Sha256 = SHA_FIELD
    design_sha256: Sha256 = SHA_FIELD
    source_format: str
    units: str
    units_source: Literal["declared", "file"]
    triangles: int = Field(ge=1)
    vertices: int = Field(ge=3)
    bbox_mm: list[float] = Field(min_length=3, max_length=3)
    plan_sha256: Sha256 = SHA_FIELD
    skin_sha256: Sha256 | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    intake_notes: list[str] = Field(default_factory=list)
    needs_approval: bool
    fabctl_version: str


class DesignApproved(Event):
    TYPE: ClassVar[str] = "design.approved"
    revision: int = Field(ge=1)
    design_sha256: Sha256 = SHA_FIELD
    approved_by: str


class IntakeRefused(Event):
    """An attempt to register a design that was refused; nothing entered the store."""

    TYPE: ClassVar[str] = "intake.refused"
    source_sha256: Sha256 | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    reason: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls for cls in (CaseCreated, DesignRegistered, DesignApproved, IntakeRefused)
}


def register(cls: type[Event]) -> type[Event]:
    """Class decorator for event types defined by later stages' modules."""
    EVENT_TYPES[cls.TYPE] = cls
    return cls
