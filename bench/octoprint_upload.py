"""Upload + start latency of fabctl's OctoPrint client against a real OctoPrint 1.11.8 (Virtual Printer).

Starts its own server (hardware/octoprint/start.sh, temp basedir, 127.0.0.1), then for each file size:
- ``raw POST``: one bare httpx multipart POST /api/files/local with print=true (the floor);
- ``send_job``: fabctl's whole path: idle check, print-record baseline, push socket, upload, effectivePrint,
  /api/job check; it returns once OctoPrint shows the job printing.
Each print is cancelled at once. Research figures (printer-comms.md §4.1): upload of the 480 KB file
0.014-0.029 s; /api/job showed the 109 B smoke job finished 0.52 s after its upload began (0.2 s polling).

Usage: .venv/bin/python bench/octoprint_upload.py [--reps 5]   (needs hardware/octoprint/install.sh first)
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from fabctl.errors import TransportError
from fabctl.transport.base import JobState
from fabctl.transport.octoprint import OctoPrintPrinter

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "hardware" / "octoprint"


def make_gcode(path: Path, lines: int) -> Path:
    body = ["G21", "G90", "G1 F60000"] + [f"G1 X{50 + (i % 2) * 0.05:.3f} Y49.950 E0.0" for i in range(lines)]
    path.write_text("\n".join(body) + "\n")
    return path


def wait_idle(p: OctoPrintPrinter, settle_s: float = 1.5) -> None:
    """Operational again, plus time for OctoPrint's background G-code analysis (0.5 s for 480 KB)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if str(p.rest.json("GET", "/api/job").get("state", "")).startswith("Operational"):
            time.sleep(settle_s)
            return
        time.sleep(0.05)
    raise RuntimeError("printer did not return to Operational")


def one_run(p: OctoPrintPrinter, raw_client: httpx.Client, job: Path) -> tuple[float, float]:
    with job.open("rb") as fh:
        t0 = time.monotonic()
        resp = raw_client.post(
            "/api/files/local", files={"file": (job.name, fh)}, data={"select": "true", "print": "true"}
        )
        raw = time.monotonic() - t0
    resp.raise_for_status()
    p.rest.call("POST", "/api/job", json={"command": "cancel"}, ok=(204, 409))
    wait_idle(p)
    t0 = time.monotonic()
    p.send_job(job)
    sent = time.monotonic() - t0
    if p.status().state is JobState.printing:
        with contextlib.suppress(TransportError):  # a tiny job may end before the cancel arrives
            p.cancel()
    p.follow(timeout_s=20)
    wait_idle(p)
    return raw, sent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [str(SCRIPTS / "start.sh"), f"{tmp}/base"], capture_output=True, text=True, check=True
        ).stdout
        env = dict(line.split("=", 1) for line in out.split())
        url, key = env["URL"], env["APIKEY"]
        try:
            with (
                OctoPrintPrinter(url, key, port="VIRTUAL") as p,
                httpx.Client(base_url=url, headers={"X-Api-Key": key}, timeout=30) as raw_client,
            ):
                p.connect()
                print(f"OctoPrint at {url}; {args.reps} runs per size; medians (min-max) in seconds")
                for lines in (10, 20000):
                    job = make_gcode(Path(tmp) / f"bench-{lines}.gcode", lines)
                    runs = [one_run(p, raw_client, job) for _ in range(args.reps)]
                    size_kb = job.stat().st_size / 1000
                    for i, label in enumerate(("raw POST (print=true)", "fabctl send_job")):
                        vals = [r[i] for r in runs]
                        print(
                            f"  {size_kb:8.1f} KB  {label:22s} {statistics.median(vals):.3f} "
                            f"({min(vals):.3f}-{max(vals):.3f})"
                        )
        finally:
            subprocess.run([str(SCRIPTS / "stop.sh"), f"{tmp}/base"], check=False)


if __name__ == "__main__":
    main()
