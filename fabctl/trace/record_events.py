"""Trace events after the print: device identity, post-processing, sterilization loads, inspection, release.

Each payload is explicit and complete for the device history record (clinical-traceability.md §2 rows G, H,
J, K): values with their units, the limits they were held to and where the limits came from. Refusals are
events too, so a refused step leaves the record unchanged apart from the refusal. No payload carries a
credential, a person's name or free text that the privacy guard (fabctl.records.privacy) has not passed.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from fabctl.trace.events import SHA_FIELD, Event, Sha256, register

Serial = str
SERIAL_FIELD = Field(pattern=r"^FAB-\d{4}-\d{6}$")


class Limit(BaseModel):
    """A closed range a value was held to, with the IFU status and source it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float
    max: float
    status: Literal["verified", "secondary", "unverified", "policy"]
    source: str = ""


class LoadItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    case_id: str
    serial: Serial = SERIAL_FIELD


@register
class DeviceAssigned(Event):
    """A finished print made ``quantity_made`` guides of this case on build ``build_id`` (K1, C-serial)."""

    TYPE: ClassVar[str] = "device.assigned"
    build_id: str
    job_id: str
    printer_id: str
    serials: list[Serial] = Field(min_length=1)
    quantity_made: int = Field(ge=1)


@register
class DeviceScrapped(Event):
    """A guide taken out of production for good (a spare not needed, damage); counted as scrapped (K1)."""

    TYPE: ClassVar[str] = "device.scrapped"
    serial: Serial = SERIAL_FIELD
    previous_status: Literal["made", "quarantined"]
    ncr_ref: str | None = None


@register
class PostprocessRecorded(Event):
    """Wash, dry, post-cure and support removal within the resin's IFU (G1-G4)."""

    TYPE: ClassVar[str] = "postprocess.recorded"
    serials: list[Serial] = Field(min_length=1)
    resin_id: str
    resin_profile_sha256: Sha256 = SHA_FIELD
    wash_solvent: str
    wash_solvent_ifu: str
    wash_min: float
    wash_min_limit: Limit
    dry_min: float
    dry_min_limit: Limit
    cure_temp_c: float
    cure_temp_c_limit: Limit
    cure_min: float
    cure_min_limit: Limit
    cure_wavelength_nm: int
    cure_unit: str | None = None
    support_removal: str | None = None


class _Refused(Event):
    """Base of refusal events: what was refused and every reason, without the refused free text."""

    reasons: list[str] = Field(min_length=1)
    user_id: str | None = None
    load_id: str | None = None


@register
class PostprocessRefused(_Refused):
    TYPE: ClassVar[str] = "postprocess.refused"


@register
class SterilizationRefused(_Refused):
    TYPE: ClassVar[str] = "sterilization.refused"


@register
class InspectionRefused(_Refused):
    TYPE: ClassVar[str] = "inspection.refused"


@register
class ReleaseRefused(_Refused):
    TYPE: ClassVar[str] = "release.refused"


@register
class SignatureRefused(_Refused):
    """A signing attempt that failed authentication or authority. No credential material is recorded."""

    TYPE: ClassVar[str] = "signature.refused"
    meaning: Literal["approval"] = "approval"


class _LoadFacts(Event):
    """The §3.2 sterilization record of the load, repeated in every case it touches (linked both ways)."""

    load_id: str
    method: Literal["steam-gravity", "steam-prevac", "h2o2-plasma", "eto"]
    temp_c: float
    hold_min: float
    sterilizer_id: str
    cycle_no: int = Field(ge=0)
    load_created_utc: str
    load_created_by: str
    contents: list[LoadItem]


@register
class SterilizationLoadAdded(_LoadFacts):
    """This case's guides joined the load; the resin's allowed method and limits they were checked against."""

    TYPE: ClassVar[str] = "sterilization.load_added"
    serials: list[Serial] = Field(min_length=1)
    resin_id: str
    resin_max_temp_c: float
    resin_hold_min_limit: Limit
    resin_max_cycles: int
    previous_cycles: int = Field(ge=0)


@register
class SterilizationLoadResult(_LoadFacts):
    """The load's chemical and biological indicator results; a fail or positive quarantines every guide."""

    TYPE: ClassVar[str] = "sterilization.load_result"
    ci: Literal["pass", "fail"]
    bi: Literal["negative", "positive", "pending"]
    status: Literal["processed", "quarantined"]
    quarantined: list[LoadItem]


@register
class SterilizationLoadReleased(_LoadFacts):
    """The load was released (CI pass, BI negative) by a signed approval."""

    TYPE: ClassVar[str] = "sterilization.load_released"
    ci: Literal["pass"]
    bi: Literal["negative"]
    released_by: str
    released_utc: str
    signature_sha256: Sha256 = SHA_FIELD


@register
class InspectionRecorded(Event):
    """Visual, needle go/no-go and fit after the last heat step (H1, H2, H4)."""

    TYPE: ClassVar[str] = "inspection.recorded"
    serials: list[Serial] = Field(min_length=1)
    load_id: str
    load_result_utc: str
    visual: Literal["pass", "fail"]
    needle_go: Literal["pass", "fail"]
    fit: Literal["pass", "fail"]
    channel_mm: float | None = None
    channel_min_mm: float
    needle_od_mm: float
    channel_clearance_mm: float
    ncr_ref: str | None = None
    passed: bool
    failed: list[str]


@register
class ReleaseSigned(Event):
    """The guide's release for clinical use, signed (Part 11 §11.50: who, when, meaning) and bound to the
    sha256 of the canonical release record, which includes the trace head at signing (K1, K2, K4)."""

    TYPE: ClassVar[str] = "release.signed"
    user_id: str
    role: Literal["qa"]
    meaning: Literal["approval"]
    signed_utc: str
    record_sha256: Sha256 = SHA_FIELD
    record: dict
    retention_until: str
