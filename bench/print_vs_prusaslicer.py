"""`fabctl print case-42` end to end on the simulated laser printer with zero exposure, beside PrusaSlicer
2.5's `--export-sla` with supports and pad on the same mesh (../shared/peers/prusaslicer_sla.sh).

fabctl: a fresh FABCTL_HOME, the example case registered, then `fabctl print case-42 --json` as a whole
process (cold: every stage runs), and once more (warm: every stage but the transport comes from the cache).
The profiles are a copy of profiles/ whose sim-laser points at the mock printer with ``exposure_scale=0``
(zero exposure: what is left is fabctl's own work and the serial streaming) and, with ``--fast-link``, an
8 KiB receive buffer on both sides. PrusaSlicer: the previous bench's widened SL1S ini (the design pose does
not fit the SL1S screen; PrusaSlicer's CLI cannot orient), whole process, supports and pad on.

Usage: .venv/bin/python bench/print_vs_prusaslicer.py [--fast-link] [--skip-prusa]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "case-42"


def _fabctl(env: dict, *args: str) -> tuple[float, dict]:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "fabctl", *args], capture_output=True, text=True, env=env, cwd=ROOT)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"fabctl {' '.join(args)} failed ({p.returncode}): {p.stderr[-600:]}")
    return dt, (json.loads(p.stdout) if "--json" in args else {})


def fabctl_runs(tmp: Path, fast_link: bool) -> tuple[float, dict, float, dict]:
    prof = tmp / "profiles"
    shutil.copytree(ROOT / "profiles", prof)
    p = prof / "printers" / "sim-laser.toml"
    url = "mockprinter://sim-laser?exposure_scale=0" + ("&rx_buffer=8192&bufsize=64" if fast_link else "")
    text = re.sub(r'(?m)^url = .*$', f'url = "{url}"', p.read_text())
    if fast_link:
        text = re.sub(r"(?m)^rx_buffer_bytes = .*$", "rx_buffer_bytes = 8192", text)
    p.write_text(text)
    env = {**os.environ, "FABCTL_HOME": str(tmp / "home"), "FABCTL_PROFILES_DIR": str(prof),
           "FABCTL_OPERATOR": "bench"}
    env.pop("FABCTL_DB_URL", None)
    _fabctl(env, "case", "new", "case-42", "--mesh", str(EXAMPLE / "guide.stl"), "--plan",
            str(EXAMPLE / "plan.json"), "--units", "mm")
    cold_s, cold = _fabctl(env, "print", "case-42", "--json")
    warm_s, warm = _fabctl(env, "print", "case-42", "--json")
    return cold_s, cold, warm_s, warm


def prusa_run(tmp: Path) -> float:
    spec = importlib.util.spec_from_file_location("osb", ROOT / "bench" / "orient_support_vs_prusaslicer.py")
    assert spec and spec.loader
    osb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(osb)
    ini = osb.wide_ini(tmp / "wide.ini")
    dt, _ = osb.prusa_once(EXAMPLE / "guide.stl", tmp / "guide.sl1", ini, True)
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast-link", action="store_true", help="8 KiB receive buffer on the mock and the driver")
    ap.add_argument("--skip-prusa", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fabctl-bench-print-") as d:
        tmp = Path(d)
        cold_s, cold, warm_s, warm = fabctl_runs(tmp, a.fast_link)
        prusa_s = None if a.skip_prusa else prusa_run(tmp)
    print(f"fabctl print case-42 (cold, whole process): {cold_s:8.1f} s  ({cold['layers']} layers, "
          f"state {cold['state']})")
    for s in cold["stages"]:
        print(f"  {s['name']:>9}: {s['seconds']:8.2f} s")
    print(f"fabctl print case-42 (warm cache):          {warm_s:8.1f} s  (cached: "
          f"{', '.join(s['name'] for s in warm['stages'] if s['cached'])})")
    for s in warm["stages"]:
        print(f"  {s['name']:>9}: {s['seconds']:8.2f} s")
    if prusa_s is not None:
        print(f"PrusaSlicer 2.5 --export-sla, supports + pad: {prusa_s:8.1f} s")
        print(f"fabctl cold / PrusaSlicer: {cold_s / prusa_s:.2f} (goal <= 0.5); warm / PrusaSlicer: "
              f"{warm_s / prusa_s:.2f}")


if __name__ == "__main__":
    main()
