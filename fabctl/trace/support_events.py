"""Trace events of the orient and support stages.

They record what shaped the printed geometry: the transform and every score term, the design, process and
printer hashes, the support count and the proof's counts. Importing this module registers the types.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from fabctl.trace.events import SHA_FIELD, Event, Sha256, register

Matrix4 = list[list[float]]


@register
class OrientRecorded(Event):
    """The orientation chosen for a design revision (or reused from its artifact)."""

    TYPE: ClassVar[str] = "orient.recorded"
    revision: int = Field(ge=1)
    design_sha256: Sha256 = SHA_FIELD
    plan_sha256: Sha256 = SHA_FIELD
    process_profile: str
    process_sha256: Sha256 = SHA_FIELD
    printer: str
    printer_sha256: Sha256 = SHA_FIELD
    artifact_key: Sha256 = SHA_FIELD
    cached: bool
    transform: Matrix4 = Field(min_length=4, max_length=4)
    up_design: list[float] = Field(min_length=3, max_length=3)
    scores: dict
    protected: dict
    candidates_evaluated: int = Field(ge=0)
    feasible_candidates: int = Field(ge=0)
    fabctl_version: str


@register
class OrientRefused(Event):
    """No orientation met the hard constraints; nothing was written for printing."""

    TYPE: ClassVar[str] = "orient.refused"
    revision: int = Field(ge=1)
    design_sha256: Sha256 = SHA_FIELD
    process_sha256: Sha256 = SHA_FIELD
    printer: str
    reason: str = Field(max_length=600)
    fabctl_version: str


@register
class SupportRecorded(Event):
    """Supports generated for an orientation, with the independent proof's result."""

    TYPE: ClassVar[str] = "support.recorded"
    revision: int = Field(ge=1)
    design_sha256: Sha256 = SHA_FIELD
    orient_key: Sha256 = SHA_FIELD
    artifact_key: Sha256 = SHA_FIELD
    process_sha256: Sha256 = SHA_FIELD
    printer: str
    printer_sha256: Sha256 = SHA_FIELD
    cached: bool
    transform: Matrix4 = Field(min_length=4, max_length=4)
    support_points: int = Field(ge=0)
    protected_contacts: int = Field(ge=0)
    unsupported_islands: int = Field(ge=0)
    proof: Literal["passed", "failed", "refused"]
    proof_counts: dict
    stats: dict
    print_sha256: Sha256 | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    reason: str | None = Field(default=None, max_length=600)
    fabctl_version: str
