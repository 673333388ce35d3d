"""Trace events of the print: gates, stages, the job on the printer and how it ended.

``PrintFinished`` is what the release gate and the device history record read: the outcome, the printer's
identity, the resin lot and its expiry as they were at print time, and the job file's hash.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from fabctl.trace.events import SHA_FIELD, Event, Sha256, register

OPT_SHA = Field(default=None, pattern=r"^[0-9a-f]{64}$")


@register
class PrintStarted(Event):
    """The job file reached the printer and the printer started it."""

    TYPE: ClassVar[str] = "print.started"
    job_id: str
    revision: int = Field(ge=1)
    design_sha256: Sha256 = SHA_FIELD
    job_sha256: Sha256 = SHA_FIELD
    job_format: Literal["sl1", "gcode", "cli", "cli-binary"]
    printer_id: str
    printer_profile_sha256: Sha256 = SHA_FIELD
    printer_model: str
    printer_firmware: str
    printer_serial: str
    transport: str
    resin_id: str
    resin_profile_sha256: Sha256 = SHA_FIELD
    resin_lot: str
    resin_lot_expires: str = Field(description="ISO date the lot expires (as registered)")
    started_utc: str
    fabctl_version: str


@register
class PrintFinished(Event):
    """The job ended: ``done`` only when the printer itself said so."""

    TYPE: ClassVar[str] = "print.finished"
    job_id: str
    state: Literal["done", "failed", "cancelled", "interrupted"]
    revision: int = Field(ge=1)
    design_sha256: Sha256 = SHA_FIELD
    job_sha256: Sha256 = SHA_FIELD
    printer_id: str
    resin_id: str
    resin_lot: str
    resin_lot_expires: str
    started_utc: str
    finished_utc: str
    reason: str | None = None
    last_confirmed_line: int | None = Field(default=None, ge=0)
    last_confirmed_layer: int | None = Field(default=None, ge=0)
    fabctl_version: str


@register
class StageRecorded(Event):
    """One stage of the print pipeline ran or reused its artifact (``cached``)."""

    TYPE: ClassVar[str] = "pipeline.stage"
    stage: Literal["revision", "validate", "orient", "support", "slice", "job", "transport"]
    key: Sha256 = SHA_FIELD
    artifact_sha256: Sha256 | None = OPT_SHA
    cached: bool
    seconds: float = Field(ge=0)
    revision: int = Field(ge=1)
    printer_id: str
    job_id: str | None = None
    fabctl_version: str


@register
class PrintRefused(Event):
    """A gate refused the print before anything reached a printer."""

    TYPE: ClassVar[str] = "print.refused"
    gate: Literal["design_revision", "resin_technology", "resin_lot", "layer_height", "printer_calibration",
                  "part_fit", "validation", "protected_faces"]
    message: str = Field(max_length=600)
    revision: int | None = Field(default=None, ge=1)
    printer_id: str
    resin_id: str
    resin_lot: str | None = None
    job_id: str | None = None
    fabctl_version: str
