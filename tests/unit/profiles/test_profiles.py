"""Profiles: the shipped set passes; broken ones are refused naming file, key and limit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fabctl import profiles
from fabctl.errors import ProfileError
from tests.conftest import ROOT

REQUIRED_PRINTERS = {"sim-laser", "sim-sl1s", "prusa-sl1s", "moai-laser", "industrial-cli"}


def test_shipped_profiles_check() -> None:
    printers, resins = profiles.check_all()
    assert REQUIRED_PRINTERS <= {p.id for p in printers}
    assert len(resins) >= 3
    sl1s = profiles.printer("prusa-sl1s")
    assert (sl1s.raster.resolution_x_px, sl1s.raster.resolution_y_px) == (1620, 2560)
    assert sl1s.raster.pixel_x_mm == 0.05 and sl1s.min_feature_mm == pytest.approx(0.1)
    assert profiles.printer("moai-laser").min_feature_mm == pytest.approx(0.14)
    assert profiles.printer("sim-laser").simulated


def test_demo_resin_never_releasable_and_surgical_resins_flag_unverified_values() -> None:
    demo = profiles.resin("demo-grey")
    assert not demo.clinical_use
    assert "resin is not for clinical use" in demo.release_blockers
    sg = profiles.resin("formlabs-sg-v1")
    assert sg.clinical_use
    assert sg.ifu.layer_heights_mm.status == "verified"
    assert "ifu.min_wall_mm" in sg.unverified_fields
    assert sg.release_blockers and "ifu.layer_heights_mm" not in sg.release_blockers[0]
    # the maker allows 134 C but the profile keeps the gentler, evidence-backed limit
    assert max(s.max_temp_c for s in sg.ifu.sterilization.value) == 121


def test_hash_is_stable_and_changes_with_content() -> None:
    a = profiles.printer("sim-laser")
    assert profiles.profile_hash(a) == profiles.profile_hash(profiles.printer("sim-laser"))
    b = a.model_copy(update={"layer_heights_mm": [0.05]})
    assert profiles.profile_hash(a) != profiles.profile_hash(b)


@pytest.fixture
def profile_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "profiles"
    shutil.copytree(ROOT / "profiles", dst)
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "old", "new", "words"),
    [
        ("printers/sim-laser.toml", "x_mm = 130", "x_mm = 130\nwidth_mm = 3", ["sim-laser.toml", "build_volume.width_mm", "unknown key"]),
        ("printers/sim-laser.toml", "layer_heights_mm = [0.025, 0.05, 0.1]", "layer_heights_mm = [0.5]", ["layer_heights_mm.0", "0.3"]),
        ("printers/prusa-sl1s.toml", "pixel_x_mm = 0.05", "pixel_x_mm = 0.5", ["raster.pixel_x_mm", "0.2"]),
        ("printers/prusa-sl1s.toml", "x_mm = 81", "x_mm = 90", ["build_volume", "exceeds the screen"]),
        ("resins/formlabs-sg-v1.toml", 'revision = "PreForm', 'xrevision = "PreForm', ["layer_heights_mm"]),
        ("resins/demo-grey.toml", "value = 1.0", "value = 0.1", ["ifu.min_wall_mm.value", "0.3"]),
        ("resins/demo-grey.toml", "max_temp_c = 121", "max_temp_c = 150", ["max_temp_c", "140"]),
        ("printers/sim-laser.toml", 'kind = "serial"', 'kind = "carrier-pigeon"', ["transport"]),
        ("printers/moai-laser.toml", "[laser]", "[laserx]", ["laserx", "unknown key"]),
    ],
)
def test_broken_profile_names_file_key_and_limit(profile_copy: Path, file: str, old: str, new: str,
                                                 words: list[str]) -> None:
    _edit(profile_copy / file, old, new)
    with pytest.raises(ProfileError) as exc:
        profiles.check_all(profile_copy)
    msg = str(exc.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_missing_default_printer_is_refused(profile_copy: Path) -> None:
    (profile_copy / "printers" / "sim-laser.toml").unlink()
    with pytest.raises(ProfileError, match="default printer 'sim-laser' is missing"):
        profiles.check_all(profile_copy)


def test_invalid_toml_and_unknown_id(profile_copy: Path) -> None:
    (profile_copy / "resins" / "demo-grey.toml").write_text("name = \n")
    with pytest.raises(ProfileError, match="demo-grey.toml: not valid TOML"):
        profiles.check_all(profile_copy)
    with pytest.raises(ProfileError, match="no printer profile 'nope'"):
        profiles.printer("nope")
    with pytest.raises(ProfileError, match="not valid"):
        profiles.printer("../etc/passwd")
