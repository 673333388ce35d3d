"""Trace events of the validation and repair stages. Importing this module registers the types.

``validation.recorded`` is the summary of a ``ValidationReport`` for one design revision: whether it passed,
each check's name, result, value and limit, and the profiles (with their hashes) it was held to. It carries
no free text from the design file. ``design.repaired`` lists what ``fabctl repair`` changed to make a new
revision; the revision itself is registered by ``design.registered`` (origin ``repair``, needs approval).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from fabctl.trace.events import SHA_FIELD, Event, Sha256, register

Scalar = bool | int | float | str | None


class CheckSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z_]{1,40}$")
    passed: bool
    severity: Literal["error", "warning", "info"]
    value: Scalar = None
    limit: Scalar = None


@register
class ValidationRecorded(Event):
    """A design revision was validated (passed or not)."""

    TYPE: ClassVar[str] = "validation.recorded"
    revision: int = Field(ge=1)
    design_sha256: Sha256 = SHA_FIELD
    plan_sha256: Sha256 = SHA_FIELD
    ok: bool
    failed: list[str]
    checks: list[CheckSummary]
    min_wall_thickness_mm: float | None
    resin: str
    resin_sha256: Sha256 = SHA_FIELD
    printer: str
    printer_sha256: Sha256 = SHA_FIELD
    triangles: int = Field(ge=0)
    bodies: int = Field(ge=0)
    volume_mm3: float
    fabctl_version: str

    @classmethod
    def from_report(cls, report: Any, revision: int, design_sha256: str, plan_sha256: str,
                    fabctl_version: str) -> ValidationRecorded:
        """The event for a ``fabctl.mesh.report.ValidationReport`` (taken by its fields: mesh and trace are
        one layer and do not import each other)."""
        return cls(
            revision=revision, design_sha256=design_sha256, plan_sha256=plan_sha256, ok=report.ok,
            failed=[c.name for c in report.failed],
            checks=[CheckSummary(name=c.name, passed=c.passed, severity=c.severity, value=c.value, limit=c.limit)
                    for c in report.checks],
            min_wall_thickness_mm=report.min_wall_thickness_mm, resin=report.settings.resin,
            resin_sha256=report.settings.resin_sha256, printer=report.settings.printer,
            printer_sha256=report.settings.printer_sha256, triangles=report.mesh.triangles,
            bodies=report.mesh.bodies, volume_mm3=report.mesh.volume_mm3, fabctl_version=fabctl_version)


class FixSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z_]{1,40}$")
    count: int = Field(ge=0)


@register
class DesignRepaired(Event):
    """``fabctl repair`` made revision ``revision`` from ``parent_revision`` with these fixes."""

    TYPE: ClassVar[str] = "design.repaired"
    revision: int = Field(ge=1)
    parent_revision: int = Field(ge=1)
    parent_design_sha256: Sha256 = SHA_FIELD
    design_sha256: Sha256 = SHA_FIELD
    fixes: list[FixSummary]
    not_fixed: list[FixSummary]
    fabctl_version: str
