"""`fabctl print case-42` end to end on the simulated SL1S (mock PrusaLink, zero exposure) beside PrusaSlicer
2.5's `--export-sla` with supports and pad on the same mesh (../shared/peers/prusaslicer_sla.sh).

fabctl, per run: a fresh FABCTL_HOME (cold cache), the example case registered, then
`fabctl print case-42 --printer sim-sl1s --json` as a whole process (cold: every stage runs, the SL1 archive
is uploaded to the mock PrusaLink and printed with time scale 0, i.e. zero exposure), and once more (warm:
every stage but the transport comes from the cache). The mock PrusaLink runs in this process on a free
port; the profiles are a copy of profiles/ whose sim-sl1s url names it. The archive the mock received must
equal the job file byte for byte. PrusaSlicer: the previous bench's widened SL1S ini (the design pose does
not fit the SL1S screen; PrusaSlicer's CLI cannot orient), whole process, supports and pad on: its slicing
and SL1 export alone (it has no printer to send to).

``--laser`` also runs `fabctl print case-42` once on sim-laser with its transport swapped for a hot folder
(the laser G-code is 7.6M lines; streaming it over the mock serial port takes hours), for the stage split up
to the job file and the job file's lines and bytes.

Usage: .venv/bin/python bench/print_vs_prusaslicer.py [--runs N] [--laser] [--skip-prusa]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "case-42"
sys.path.insert(0, str(ROOT / "hardware"))

from mockprinter.prusalink import MockPrusaLink, MockSL1  # noqa: E402


def _fabctl(env: dict, *args: str) -> tuple[float, dict]:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "fabctl", *args], capture_output=True, text=True, env=env, cwd=ROOT)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"fabctl {' '.join(args)} failed ({p.returncode}): {p.stderr[-600:]}")
    return dt, (json.loads(p.stdout) if "--json" in args else {})


def _set_transport(prof: Path, printer: str, body: str) -> None:
    p = prof / "printers" / f"{printer}.toml"
    text = p.read_text()
    head = text[: text.index("[transport]")]
    p.write_text(head + "[transport]\n" + body)


def _env(tmp: Path, prof: Path, **extra: str) -> dict:
    env = {**os.environ, "FABCTL_HOME": str(tmp / "home"), "FABCTL_PROFILES_DIR": str(prof),
           "FABCTL_OPERATOR": "bench", **extra}
    env.pop("FABCTL_DB_URL", None)
    return env


def _new_case(env: dict) -> None:
    _fabctl(env, "case", "new", "case-42", "--mesh", str(EXAMPLE / "guide.stl"), "--plan",
            str(EXAMPLE / "plan.json"), "--units", "mm")


def fabctl_sl1s(tmp: Path) -> dict:
    """One cold and one warm `fabctl print` on sim-sl1s against the mock PrusaLink with time scale 0."""
    prof = tmp / "profiles"
    shutil.copytree(ROOT / "profiles", prof)
    password = secrets.token_urlsafe(12)
    mock = MockPrusaLink(password=password, printer=MockSL1(time_scale=0.0)).start()
    try:
        _set_transport(prof, "sim-sl1s", f'kind = "prusalink"\nurl = "{mock.url}"\nusername = "maker"\n'
                       'password_env = "FABCTL_PRUSALINK_PASSWORD"\n')
        env = _env(tmp, prof, FABCTL_PRUSALINK_PASSWORD=password)
        _new_case(env)
        cold_s, cold = _fabctl(env, "print", "case-42", "--printer", "sim-sl1s", "--json")
        job = Path(cold["job_file"]).read_bytes()
        if list(mock.printer.files.values()) != [job]:
            raise SystemExit("the mock PrusaLink did not receive the job file byte for byte")
        warm_s, warm = _fabctl(env, "print", "case-42", "--printer", "sim-sl1s", "--json")
    finally:
        mock.vanish()
    for doc in (cold, warm):
        if doc["state"] != "done":
            raise SystemExit(f"fabctl print ended {doc['state']}, not done")
    return {"cold_s": cold_s, "cold": cold, "warm_s": warm_s, "warm": warm, "job_bytes": len(job)}


def fabctl_laser(tmp: Path) -> dict:
    """`fabctl print` on sim-laser up to the job file, handed to a hot folder instead of the serial port."""
    prof = tmp / "profiles"
    shutil.copytree(ROOT / "profiles", prof)
    _set_transport(prof, "sim-laser", f'kind = "hotfolder"\npath = "{tmp / "hot"}"\n')
    (tmp / "hot").mkdir()
    env = _env(tmp, prof)
    _new_case(env)
    dt, doc = _fabctl(env, "print", "case-42", "--printer", "sim-laser", "--json")
    path = Path(doc["job_file"])
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            lines += chunk.count(b"\n")
    return {"s": dt, "doc": doc, "lines": lines, "bytes": path.stat().st_size}


def prusa_run(tmp: Path) -> float:
    spec = importlib.util.spec_from_file_location("osb", ROOT / "bench" / "orient_support_vs_prusaslicer.py")
    assert spec and spec.loader
    osb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(osb)
    ini = osb.wide_ini(tmp / "wide.ini")
    dt, _ = osb.prusa_once(EXAMPLE / "guide.stl", tmp / "guide.sl1", ini, True)
    return dt


def _uptime() -> str:
    return re.sub(r"\s+", " ", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


def _stages(doc: dict) -> str:
    return "  ".join(f"{s['name']} {s['seconds']:.2f}{'(c)' if s['cached'] else ''}" for s in doc["stages"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="repeat fabctl and PrusaSlicer N times; medians")
    ap.add_argument("--laser", action="store_true", help="also sim-laser up to its job file (hot folder)")
    ap.add_argument("--skip-prusa", action="store_true")
    a = ap.parse_args()
    print(f"start: {_uptime()}", flush=True)
    runs: list[dict] = []
    prusa: list[float] = []
    for k in range(a.runs):
        with tempfile.TemporaryDirectory(prefix="fabctl-bench-print-") as d:
            r = fabctl_sl1s(Path(d))
            runs.append(r)
            print(f"run {k + 1}: fabctl cold {r['cold_s']:.1f} s [{_stages(r['cold'])}]  "
                  f"warm {r['warm_s']:.1f} s [{_stages(r['warm'])}]", flush=True)
        if not a.skip_prusa:
            with tempfile.TemporaryDirectory(prefix="fabctl-bench-prusa-") as d:
                prusa.append(prusa_run(Path(d)))
                print(f"run {k + 1}: PrusaSlicer --export-sla {prusa[-1]:.1f} s; fabctl cold / PrusaSlicer "
                      f"{runs[-1]['cold_s'] / prusa[-1]:.2f}  ({_uptime()})", flush=True)
    cold = statistics.median(r["cold_s"] for r in runs)
    warm = statistics.median(r["warm_s"] for r in runs)
    doc = runs[0]["cold"]
    print(f"\nfabctl print case-42 --printer sim-sl1s, cold (fresh home, whole process), median of {len(runs)}: "
          f"{cold:.1f} s  ({doc.get('layers')} layers, SL1 {runs[0]['job_bytes'] / 1e6:.1f} MB, "
          f"state {doc['state']})")
    names = [s["name"] for s in doc["stages"]]
    for i, name in enumerate(names):
        secs = statistics.median(r["cold"]["stages"][i]["seconds"] for r in runs)
        print(f"  {name:>9}: {secs:8.2f} s")
    print(f"fabctl print, warm cache, median: {warm:.1f} s  (cached: "
          f"{', '.join(s['name'] for s in runs[0]['warm']['stages'] if s['cached'])})")
    for i, s in enumerate(runs[0]["warm"]["stages"]):
        secs = statistics.median(r["warm"]["stages"][i]["seconds"] for r in runs)
        print(f"  {s['name']:>9}: {secs:8.2f} s")
    if prusa:
        p = statistics.median(prusa)
        print(f"PrusaSlicer 2.5 --export-sla, supports + pad, median of {len(prusa)}: {p:.1f} s")
        paired = statistics.median(r["cold_s"] / q for r, q in zip(runs, prusa, strict=True))
        print(f"fabctl cold / PrusaSlicer: {cold / p:.2f} (goal <= 0.5; median of the paired runs' ratios "
              f"{paired:.2f}, each pair ran back to back under the same load); warm / PrusaSlicer: {warm / p:.2f}")
    if a.laser:
        with tempfile.TemporaryDirectory(prefix="fabctl-bench-laser-") as d:
            r = fabctl_laser(Path(d))
        print(f"\nsim-laser (hot folder instead of serial), cold: {r['s']:.1f} s [{_stages(r['doc'])}]")
        print(f"  laser G-code: {r['lines']:,} lines, {r['bytes'] / 1e6:.1f} MB, {r['doc'].get('layers')} layers")
    print(f"end: {_uptime()}")


if __name__ == "__main__":
    main()
