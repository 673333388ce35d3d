"""Trace events of the printer queue: every state change of a job, and cancel requests.

A job of kind ``case`` writes into its case's trace. A service job (kind ``file``: a finished job file sent to
a printer through the queue, the queued form of ``fabctl send``) has no case, so its events go to a pseudo-case
named after the job, ``svc-<job id>`` (``svc-job-000017``), which is valid under the case-id rule and verified
by ``fabctl trace verify`` like any other chain.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from fabctl.trace.events import Event, register

State = Literal["queued", "preparing", "sending", "printing", "done", "failed", "cancelled", "interrupted"]
Scalar = str | int | float | bool | None


@register
class JobStateChanged(Event):
    """A job entered ``to_state`` (``from_state`` is None when the job was created)."""

    TYPE: ClassVar[str] = "job.state"
    job_id: str = Field(pattern=r"^job-\d{6,}$")
    kind: Literal["case", "file"]
    printer_id: str
    from_state: State | None
    to_state: State
    owner: str | None = None
    reason: str | None = None
    last_confirmed_line: int | None = Field(default=None, ge=0)
    last_confirmed_layer: int | None = Field(default=None, ge=0)
    requeue_of: str | None = Field(default=None, pattern=r"^job-\d{6,}$")
    detail: dict[str, Scalar] = Field(default_factory=dict, description="machine values only, e.g. job_sha256")

    @field_validator("detail")
    @classmethod
    def _keys(cls, v: dict) -> dict:
        bad = [k for k in v if not (0 < len(k) <= 64 and k.replace("_", "a").isalnum() and k.islower())]
        if bad:
            raise ValueError(f"detail keys must be lower_snake_case identifiers, not {bad}")
        return v


@register
class JobCancelRequested(Event):
    """Someone asked to cancel a running job; the worker that owns it tells the printer and ends the job."""

    TYPE: ClassVar[str] = "job.cancel_requested"
    job_id: str = Field(pattern=r"^job-\d{6,}$")
    state: State
