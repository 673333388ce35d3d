"""Process profiles (bounded, unknown keys refused) and the artifact cache keyed by input hashes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fabctl.artifacts import ArtifactCache, canonical_json, input_hash
from fabctl.errors import InputError, ProfileError
from fabctl.process import load_process, load_process_file
from tests.conftest import ROOT


def test_default_process_profile() -> None:
    p = load_process()
    assert p.id == "default" and p.support.area_per_point_mm2 == pytest.approx(11.1)
    assert p.support.critical_angle_deg == 45.0 and p.orient.channel_preferred_deg == 45.0
    assert p.protect.bridgeable_bore_mm == 5.0


@pytest.mark.parametrize(("old", "new", "words"), [
    ("critical_angle_deg = 45.0", "critical_angle_deg = 85.0", "support.critical_angle_deg"),
    ("segments = 12", "segments = 12\nsegmints = 3", "unknown key"),
    ("object_elevation_mm = 5.0", "object_elevation_mm = 2.0", "object_elevation_mm"),
])
def test_bad_process_profiles_are_refused(tmp_path: Path, old: str, new: str, words: str) -> None:
    src = (ROOT / "profiles" / "process" / "default.toml").read_text()
    assert old in src
    path = tmp_path / "bad.toml"
    path.write_text(src.replace(old, new, 1))
    with pytest.raises(ProfileError, match=words) as err:
        load_process_file(path)
    assert str(path) in err.value.message and err.value.exit_code == 2


def test_unknown_process_profile(tmp_path: Path) -> None:
    shutil.copy(ROOT / "profiles" / "process" / "default.toml", tmp_path / "default.toml")
    with pytest.raises(ProfileError, match="no process profile 'fast'"):
        load_process("fast", tmp_path)


def test_input_hash_is_canonical_and_sensitive() -> None:
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    h = input_hash({"b": 1, "a": [1.5, None]}, a, b"raw")
    assert h == input_hash({"a": [1.5, None], "b": 1}, a.copy(), b"raw")
    assert h != input_hash({"b": 1, "a": [1.5, None]}, a.astype(np.float32), b"raw")
    assert h != input_hash({"b": 1, "a": [1.5, None]}, a.reshape(3, 2), b"raw")
    assert canonical_json({"z": 1, "a": "é"}) == '{"a":"é","z":1}'.encode()


def test_cache_put_get(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "case")
    key = input_hash("x")
    assert cache.get("orient", key) is None
    d = cache.put("orient", key, {"a.json": b"{}", "b.npz": b"\0"})
    assert cache.get("orient", key) == d and d.name == f"orient-{key}"
    assert cache.put("orient", key, {"a.json": b"changed"}) == d and (d / "a.json").read_bytes() == b"{}"
    assert cache.list("orient") == [d] and cache.list("support") == []
    with pytest.raises(InputError):
        cache.put("orient", key[:10], {})
    with pytest.raises(InputError):
        cache.put("support", key, {"../x": b""})
