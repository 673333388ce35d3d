"""A small, realistic guide case and a profile tree whose laser printer sits behind a real OctoPrint.

The example case-42 makes hundreds of thousands of G-code lines even with the fast profiles of
print_fixtures, and OctoPrint's Virtual Printer takes them at roughly 1,000-2,500 lines/s. This case is the
synthetic guide of tests/unit/orient/orient_guides.py (a plate bent over a skin sheet, a boss, an 11G channel
tilted 25°) at 20 x 14 mm, printed at 0.3 mm layers, 1 mm hatch and with a coarser support process
(6-facet pillars, one point per 30 mm², 3.6 mm elevation): 16,754 commands in 71 layers (with supports),
a job OctoPrint streams in ~23 s on a loaded 2-core machine. Everything else (intake, validate, orient,
support, slice, job, transport, trace) is the product's code path with the product's other settings.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import trimesh

from tests.integration.print_fixtures import ROOT, set_key
from tests.unit.orient.orient_guides import make_guide

CASE = "small-1"
PRINTER = "sim-octo"
API_KEY_ENV = "FABCTL_OCTOPRINT_API_KEY"
GUIDE = {"size": (20.0, 14.0), "boss_h": 5.0}


def write_small_guide(directory: Path) -> tuple[Path, Path]:
    """``guide.stl``, ``plan.json`` and ``skin.stl`` (the plan's skin surface) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    g = make_guide(**GUIDE)
    stl, plan = directory / "guide.stl", directory / "plan.json"
    trimesh.Trimesh(g.vertices, g.faces, process=False).export(stl)
    trimesh.Trimesh(*g.skin, process=False).export(directory / "skin.stl")
    plan.write_text(g.plan.model_dump_json(indent=2))
    return stl, plan


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def octoprint_profiles(dst: Path, url: str) -> Path:
    """A copy of profiles/ with printer ``sim-octo`` (laser G-code, OctoPrint at ``url``; the API key comes
    from ``$FABCTL_OCTOPRINT_API_KEY``), demo-grey at 0.3 mm layers and 1 mm hatch, a coarse support process."""
    shutil.copytree(ROOT / "profiles", dst)
    resin = dst / "resins" / "demo-grey.toml"
    set_key(resin, "hatch_spacing_mm", "1.0")
    _replace(resin, "[ifu.layer_heights_mm]\nvalue = [0.025, 0.05, 0.1]", "[ifu.layer_heights_mm]\nvalue = [0.3]")
    process = dst / "process" / "default.toml"
    set_key(process, "segments", "6")
    set_key(process, "area_per_point_mm2", "30.0")
    set_key(process, "object_elevation_mm", "3.6")
    text = (dst / "printers" / "sim-laser.toml").read_text()
    text = text[:text.index("[transport]")]
    text = re.sub(r"(?m)^name = .*$", 'name = "Simulated laser SLA behind a real OctoPrint (Virtual Printer)"', text)
    text = re.sub(r"(?m)^source = .*$", 'source = "OctoPrint 1.11.8 Virtual Printer; figures of sim-laser"', text)
    text = text.replace("layer_heights_mm = [0.025, 0.05, 0.1]", "layer_heights_mm = [0.1, 0.3]")
    assert "[0.1, 0.3]" in text
    text += f'[transport]\nkind = "octoprint"\nurl = "{url}"\napi_key_env = "{API_KEY_ENV}"\n'
    (dst / "printers" / f"{PRINTER}.toml").write_text(text)
    return dst


def job_commands(text: str) -> list[str]:
    """The commands of a G-code file as a host sends them: comments and blank lines dropped (OctoPrint's
    rule, written here independently of fabctl's parser)."""
    out = []
    for line in text.splitlines():
        cmd = line.split(";", 1)[0].strip()
        if cmd:
            out.append(cmd)
    return out


def commands_before(data: bytes, filepos: int) -> int:
    """How many commands (as ``job_commands`` counts them) lie wholly in a G-code file's first ``filepos``
    bytes. OctoPrint's job progress is its file position: a count of bytes read, comments and all, not of
    commands."""
    count, pos = 0, 0
    for line in data.split(b"\n"):
        pos += len(line) + 1
        if pos > filepos:
            break
        count += bool(line.split(b";", 1)[0].strip())
    return count


_RECEIVED = re.compile(r"<<< N(\d+) (.*)\*\d+$")


def received_job(log_text: str) -> list[tuple[int, str]]:
    """(line number, command) the Virtual Printer received since OctoPrint's last ``M110 N0`` (a job's
    start), from its ``logs/plugin_virtual_printer_serial.log``."""
    got: list[tuple[int, str]] = []
    for line in log_text.splitlines():
        m = _RECEIVED.search(line)
        if m is None:
            continue
        if m.group(2) == "M110 N0":
            got = []
        else:
            got.append((int(m.group(1)), m.group(2)))
    return got
