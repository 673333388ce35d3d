"""Trace append speed on both store backends: N events appended one transaction each (``log.record``).

Run:  .venv/bin/python bench/db_append.py [--events 1000] [--pg-url postgresql://...]

SQLite: a fresh file in a temp folder (WAL, synchronous=FULL: what fabctl uses). PostgreSQL: the server in
``--pg-url`` (or ``FABCTL_BENCH_PG_URL``), in a fresh schema; without one, a throwaway cluster is started
with hardware/postgres/start.sh (fsync off, so its figure is the client and protocol cost, not the disk's)
and deleted after. Prints events/s and ms per event for each, and the time to verify the chain.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from fabctl.db import Database, open_url
from fabctl.trace import log
from fabctl.trace.events import DesignApproved

ROOT = Path(__file__).resolve().parent.parent
PG = ROOT / "hardware" / "postgres"


def run(db: Database, n: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    for i in range(n):
        log.record(db, "case-bench", DesignApproved(revision=i + 1, design_sha256="a" * 64, approved_by="qa1"),
                   "tech1")
    append_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep = log.verify(db)
    verify_s = time.perf_counter() - t0
    assert rep.ok and rep.events == n, rep
    return append_s, verify_s


def report(name: str, n: int, append_s: float, verify_s: float) -> None:
    print(f"{name:<10} {n} appends in {append_s:6.2f} s = {n / append_s:7.0f} events/s "
          f"({1000 * append_s / n:5.2f} ms each); verify {verify_s * 1000:6.1f} ms")


def throwaway_cluster(tmp: Path) -> tuple[str, Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = secrets.token_hex(8)
    subprocess.run([str(PG / "install.sh")], check=True)
    subprocess.run([str(PG / "start.sh"), str(tmp / "pg"), str(port)], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PG_TEST_PASSWORD": password})
    return f"postgresql://fabctl:{password}@127.0.0.1:{port}/postgres?sslmode=disable", tmp / "pg"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--pg-url", default=os.environ.get("FABCTL_BENCH_PG_URL", ""))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fabctl-bench-db-"))
    datadir = None
    try:
        db = Database(tmp / "fabctl.db")
        report("sqlite", args.events, *run(db, args.events))
        db.close()
        url = args.pg_url
        if not url:
            os.chmod(tmp, 0o711)
            url, datadir = throwaway_cluster(tmp)
        sep = "&" if "?" in url else "?"
        db = open_url(f"{url}{sep}schema=bench_{os.getpid()}")
        report("postgres", args.events, *run(db, args.events))
        db.close()
    finally:
        if datadir is not None:
            subprocess.run([str(PG / "stop.sh"), str(datadir)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
