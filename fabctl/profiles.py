"""Printer and resin profiles: TOML files loaded into strict pydantic models, hashed.

Every field carries its unit in its name. Unknown keys and out-of-range values are refused with an error
naming the file, the key and the limit. Every value derived from a resin's instructions for use (IFU) carries
its source and a status; a resin with any IFU value that is not ``verified`` may print, but its parts cannot
be released for clinical use (``ResinProfile.release_blockers``).

Profiles live in ``profiles/printers/*.toml`` and ``profiles/resins/*.toml`` next to the package, or under
``$FABCTL_PROFILES_DIR`` when set. A profile's id is its file name without ``.toml``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fabctl.errors import ProfileError
from fabctl.tomlmodel import ID_RE, load_model

T = TypeVar("T")

LayerHeight = Annotated[float, Field(gt=0.0, le=0.3)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------- printers


class BuildVolume(Strict):
    x_mm: float = Field(gt=10, le=1000)
    y_mm: float = Field(gt=10, le=1000)
    z_mm: float = Field(gt=10, le=1000)


class Raster(Strict):
    """The masking screen of an LCD/DLP printer. The build area is ``resolution * pixel``."""

    resolution_x_px: int = Field(ge=100, le=20000)
    resolution_y_px: int = Field(ge=100, le=20000)
    pixel_x_mm: float = Field(gt=0.005, le=0.2)
    pixel_y_mm: float = Field(gt=0.005, le=0.2)
    mirror_x: bool = False
    mirror_y: bool = False
    orientation: Literal["portrait", "landscape"] = "portrait"


class Laser(Strict):
    """The scanning laser of a laser SLA printer."""

    spot_diameter_mm: float = Field(gt=0.01, le=0.5)
    wavelength_nm: int = Field(ge=300, le=450)
    max_power_mw: float = Field(gt=0, le=5000)
    max_scan_speed_mm_s: float = Field(gt=0, le=20000)


class SerialTransport(Strict):
    kind: Literal["serial"]
    url: str = Field(min_length=1, description="a pyserial URL: /dev/ttyACM0, socket://, rfc2217://, mockprinter://")
    baud: int = Field(default=115200, ge=1200, le=4_000_000)
    rx_buffer_bytes: int = Field(default=127, ge=16, le=65536, description="firmware's receive buffer")


class OctoPrintTransport(Strict):
    kind: Literal["octoprint"]
    url: str = Field(pattern=r"^https?://")
    api_key_env: str = Field(default="FABCTL_OCTOPRINT_API_KEY", pattern=r"^[A-Z][A-Z0-9_]*$")


class PrusaLinkTransport(Strict):
    kind: Literal["prusalink"]
    url: str = Field(pattern=r"^https?://")
    username: str = "maker"
    password_env: str = Field(default="FABCTL_PRUSALINK_PASSWORD", pattern=r"^[A-Z][A-Z0-9_]*$")


class HotFolderTransport(Strict):
    kind: Literal["hotfolder"]
    path: str = Field(min_length=1, description="the machine's hot folder; job files are written there")


Transport = Annotated[
    SerialTransport | OctoPrintTransport | PrusaLinkTransport | HotFolderTransport,
    Field(discriminator="kind"),
]


class PrinterProfile(Strict):
    id: str
    name: str = Field(min_length=1, max_length=120)
    technology: Literal["lcd", "dlp", "laser-gcode", "laser-cli"]
    job_format: Literal["sl1", "gcode", "cli"]
    simulated: bool = False
    source: str = Field(min_length=1, description="where the machine's figures come from")
    build_volume: BuildVolume
    layer_heights_mm: list[LayerHeight] = Field(min_length=1)
    raster: Raster | None = None
    laser: Laser | None = None
    transport: Transport
    alt_transports: list[Transport] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> PrinterProfile:
        raster_tech = self.technology in ("lcd", "dlp")
        if raster_tech and self.raster is None:
            raise ValueError(f"raster: required for technology {self.technology!r}")
        if not raster_tech and self.laser is None:
            raise ValueError(f"laser: required for technology {self.technology!r}")
        expected = {"lcd": "sl1", "dlp": "sl1", "laser-gcode": "gcode", "laser-cli": "cli"}[self.technology]
        if self.job_format != expected:
            raise ValueError(f"job_format: {self.technology!r} printers take {expected!r}, not {self.job_format!r}")
        if self.raster is not None:
            r = self.raster
            w, h = r.resolution_x_px * r.pixel_x_mm, r.resolution_y_px * r.pixel_y_mm
            if self.build_volume.x_mm > w + 1e-6 or self.build_volume.y_mm > h + 1e-6:
                raise ValueError(
                    f"build_volume: {self.build_volume.x_mm} x {self.build_volume.y_mm} mm exceeds the "
                    f"screen's {w:g} x {h:g} mm"
                )
        return self

    @property
    def min_feature_mm(self) -> float:
        """Two pixels (LCD/DLP) or two laser spots: the thinnest feature the machine resolves."""
        if self.raster is not None:
            return 2.0 * max(self.raster.pixel_x_mm, self.raster.pixel_y_mm)
        assert self.laser is not None
        return 2.0 * self.laser.spot_diameter_mm


# ----------------------------------------------------------------------------------------------- resins


class Sourced(Strict, Generic[T]):
    """A value from a resin's IFU, with where it came from.

    status: ``verified`` (read in the maker's IFU/TDS: ``source`` names the document and ``revision`` is
    set), ``secondary`` (published by someone else: literature, a lab SOP), ``unverified`` (a placeholder a
    person must replace from the IFU before clinical release).
    """

    value: T
    status: Literal["verified", "secondary", "unverified"]
    source: str = ""
    revision: str = ""

    @model_validator(mode="after")
    def _sourced(self) -> Sourced:
        if self.status != "unverified" and not self.source.strip():
            raise ValueError(f"source: required when status is {self.status!r}")
        if self.status == "verified" and not self.revision.strip():
            raise ValueError("revision: a verified IFU value names the document revision")
        return self


class Range(Strict):
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min {self.min} exceeds max {self.max}")
        return self

    def contains(self, x: float) -> bool:
        return self.min <= x <= self.max


class Wash(Strict):
    solvent: str = Field(pattern=r"^[a-z0-9-]+$")
    time_min: Range
    dry_min: Range


class PostCure(Strict):
    temp_c: Range
    time_min: Range
    wavelength_nm: int = Field(ge=300, le=450)


SterilizationMethod = Literal["steam-gravity", "steam-prevac", "h2o2-plasma", "eto"]


class Sterilization(Strict):
    method: SterilizationMethod
    max_temp_c: float = Field(gt=20, le=140)
    hold_min: Range
    max_cycles: int = Field(ge=1, le=100)


class Exposure(Strict):
    """How the resin is exposed; the slicer reads LCD fields or laser fields by the printer's technology."""

    exposure_s: float = Field(gt=0.1, le=120)
    first_exposure_s: float = Field(gt=0.1, le=300)
    faded_layers: int = Field(ge=0, le=50)
    laser_power_mw: float = Field(gt=0, le=5000)
    laser_speed_mm_s: float = Field(gt=0, le=20000)
    hatch_spacing_mm: float = Field(gt=0.005, le=1.0)


class Ifu(Strict):
    """Values from the instructions for use, each with its source."""

    layer_heights_mm: Sourced[list[LayerHeight]]
    wash: Sourced[Wash]
    post_cure: Sourced[PostCure]
    sterilization: Sourced[list[Sterilization]]
    min_wall_mm: Sourced[Annotated[float, Field(ge=0.3, le=10)]]
    min_channel_clearance_mm: Sourced[Annotated[float, Field(ge=0.0, le=2)]]
    open_shelf_life_days: Sourced[Annotated[int, Field(ge=1, le=3650)]]
    storage_temp_c: Sourced[Range]
    contact: Sourced[Literal["skin", "mucosa", "bone", "none"]]


class ResinProfile(Strict):
    id: str
    name: str = Field(min_length=1, max_length=120)
    maker: str = Field(min_length=1)
    code: str = ""
    clinical_use: bool = Field(description="false for demo/engineering resins: never released for a patient")
    compatible_technologies: list[Literal["lcd", "dlp", "laser-gcode", "laser-cli"]] = Field(min_length=1)
    exposure: Exposure
    ifu: Ifu

    @property
    def unverified_fields(self) -> list[str]:
        """IFU fields whose status is not ``verified``, e.g. ``['ifu.wash', ...]``."""
        return [f"ifu.{name}" for name, v in self.ifu if v.status != "verified"]

    @property
    def release_blockers(self) -> list[str]:
        """Why a part in this resin cannot be released for clinical use (empty when it can)."""
        out = [] if self.clinical_use else ["resin is not for clinical use"]
        unverified = self.unverified_fields
        if unverified:
            out.append(f"IFU values not verified: {', '.join(unverified)}")
        return out


# ---------------------------------------------------------------------------------------------- loading

Kind = Literal["printer", "resin"]
_MODELS: dict[str, type[PrinterProfile] | type[ResinProfile]] = {
    "printer": PrinterProfile,
    "resin": ResinProfile,
}
_DIRS: dict[str, str] = {"printer": "printers", "resin": "resins"}


def profiles_dir() -> Path:
    """``$FABCTL_PROFILES_DIR``, or the ``profiles/`` folder shipped beside the package."""
    env = os.environ.get("FABCTL_PROFILES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "profiles"


def load_file(path: Path, kind: Kind) -> PrinterProfile | ResinProfile:
    """Parse and check one profile file; ``ProfileError`` names the file, the key and the limit."""
    return load_model(path, _MODELS[kind], hint="fix the profile; `fabctl profile check`")


def paths(kind: Kind, root: Path | None = None) -> list[Path]:
    return sorted((root or profiles_dir()).joinpath(_DIRS[kind]).glob("*.toml"))


def load(kind: Kind, pid: str, root: Path | None = None) -> PrinterProfile | ResinProfile:
    """The profile ``pid`` of ``kind``; ``ProfileError`` (exit 2) when there is none."""
    if not ID_RE.fullmatch(pid):
        raise ProfileError(f"{kind} profile id {pid!r} is not valid ([a-z0-9][a-z0-9-]*)")
    path = (root or profiles_dir()) / _DIRS[kind] / f"{pid}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in paths(kind, root)) or "none"
        raise ProfileError(f"no {kind} profile {pid!r}", hint=f"known {kind}s: {known}")
    return load_file(path, kind)


def find(pid: str, root: Path | None = None) -> PrinterProfile | ResinProfile:
    """The printer or resin profile named ``pid`` (ids are unique across both kinds)."""
    for kind in ("printer", "resin"):
        if ((root or profiles_dir()) / _DIRS[kind] / f"{pid}.toml").is_file():
            return load(kind, pid, root)  # type: ignore[arg-type]
    known = ", ".join(p.stem for k in ("printer", "resin") for p in paths(k, root))  # type: ignore[arg-type]
    raise ProfileError(f"no printer or resin profile {pid!r}", hint=f"known profiles: {known}")


def printer(pid: str, root: Path | None = None) -> PrinterProfile:
    p = load("printer", pid, root)
    assert isinstance(p, PrinterProfile)
    return p


def resin(pid: str, root: Path | None = None) -> ResinProfile:
    r = load("resin", pid, root)
    assert isinstance(r, ResinProfile)
    return r


def check_all(root: Path | None = None) -> tuple[list[PrinterProfile], list[ResinProfile]]:
    """Load every profile and cross-check them; raises on the first problem found.

    Cross-checks: the embedded default printer ``sim-laser`` exists; every resin suits at least one printer's
    technology and shares at least one layer height with it.
    """
    printers = [printer(p.stem, root) for p in paths("printer", root)]
    resins = [resin(p.stem, root) for p in paths("resin", root)]
    if not any(p.id == DEFAULT_PRINTER for p in printers):
        raise ProfileError(f"{profiles_dir()}/printers: the default printer {DEFAULT_PRINTER!r} is missing")
    for r in resins:
        usable = [
            p
            for p in printers
            if p.technology in r.compatible_technologies
            and set(p.layer_heights_mm) & set(r.ifu.layer_heights_mm.value)
        ]
        if not usable:
            raise ProfileError(
                f"{root or profiles_dir()}/resins/{r.id}.toml: no printer has a compatible technology "
                f"and a shared layer height",
                hint="check compatible_technologies and ifu.layer_heights_mm",
            )
    return printers, resins


def profile_hash(profile: BaseModel) -> str:
    """sha256 of the profile's canonical JSON: recorded with every artifact it shaped."""
    doc = json.dumps(profile.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


DEFAULT_PRINTER = "sim-laser"
DEFAULT_RESIN = "demo-grey"
