"""The record-retention policy (clinical-traceability.md §2 K4, §9.7): a small TOML under profiles/policy/.

``retention_until`` = the later of (release + device lifetime + ``years_after_lifetime``) and (release +
``minimum_years``). The defaults shipped in ``profiles/policy/retention.toml`` follow 21 CFR 820.35 (device
lifetime and at least 2 years) and the MDR Annex XIII custom-made statement (at least 10 years).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from fabctl import profiles
from fabctl.tomlmodel import load_model

POLICY_FILE = Path("policy") / "retention.toml"


class RetentionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    device_lifetime_days: int = Field(ge=1, le=36500)
    years_after_lifetime: int = Field(ge=2, le=100, description="21 CFR 820.35: not less than 2 years")
    minimum_years: int = Field(ge=0, le=100)
    source: str = Field(min_length=1)


def load_policy(root: Path | None = None) -> RetentionPolicy:
    path = (root or profiles.profiles_dir()) / POLICY_FILE
    return load_model(path, RetentionPolicy, hint="fix profiles/policy/retention.toml")


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February -> 1 March
        return d.replace(year=d.year + years, month=3, day=1)


def retention_until(released: date, policy: RetentionPolicy) -> date:
    after_life = _add_years(released + timedelta(days=policy.device_lifetime_days), policy.years_after_lifetime)
    return max(after_life, _add_years(released, policy.minimum_years))
