"""A direct print that died without a word (kill -9, power cut) leaves its job in flight with a lapsed printer
lease. The next `fabctl print` marks it interrupted (never resumed) instead of refusing the case forever; a job
whose owner still holds a live lease is left alone and still blocks a second print of its case."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fabctl import jobstore
from fabctl.db import open_db
from tests.conftest import assert_one_line_error
from tests.integration.print_fixtures import fabctl, fast_profiles, new_case

# SQLite only: the print fixtures (tests/integration/print_fixtures.py) run fabctl without FABCTL_DB_URL
pytestmark = pytest.mark.timeout(180)


def _env() -> dict | None:
    """The per-test store (the print fixtures' runner drops FABCTL_DB_URL; under PostgreSQL it is needed)."""
    url = os.environ.get("FABCTL_DB_URL")
    return {"FABCTL_DB_URL": url} if url else None


def _stale_job(home: Path, owner: str, ttl_s: float):
    db = open_db(home)
    try:
        assert jobstore.acquire_printer(db, "sim-laser", owner, ttl_s)
        job = jobstore.create(db, case_id="case-42", printer_id="sim-laser", resin_id="demo-grey", lot=None,
                              actor="tech1", queued=False, owner=owner)
        jobstore.transition(db, job.job_id, jobstore.JobState.sending, actor="tech1")
        jobstore.transition(db, job.job_id, jobstore.JobState.printing, actor="tech1")
        return job
    finally:
        db.close()


def test_a_dead_direct_print_is_marked_interrupted_and_the_case_prints_again(fabctl_home, tmp_path):
    prof = fast_profiles(tmp_path / "profiles")
    new_case(fabctl_home, prof)
    dead = _stale_job(fabctl_home, "cli-gone-4242", ttl_s=0.2)
    time.sleep(0.5)
    # an LCD resin on the laser printer: the print gets past the job check and stops at a gate
    r = fabctl(fabctl_home, prof, "print", "case-42", "--resin", "nextdent-sg", "--lot", "NOPE", env=_env())
    assert_one_line_error(r, 3, "gate")
    db = open_db(fabctl_home)
    try:
        j = jobstore.get(db, dead.job_id)
        assert j.state is jobstore.JobState.interrupted
        jobs = jobstore.list_jobs(db)
        assert len(jobs) == 2 and jobs[-1].state is jobstore.JobState.failed   # the new print, refused at the gate
    finally:
        db.close()


def test_a_live_direct_print_still_blocks_its_case(fabctl_home, tmp_path):
    prof = fast_profiles(tmp_path / "profiles")
    new_case(fabctl_home, prof)
    live = _stale_job(fabctl_home, "cli-alive-1", ttl_s=600)
    r = fabctl(fabctl_home, prof, "print", "case-42", "--printer", "sim-laser", env=_env())
    assert_one_line_error(r, 3, "sim-laser")     # the printer is owned by the live print
    db = open_db(fabctl_home)
    try:
        assert jobstore.get(db, live.job_id).state is jobstore.JobState.printing
    finally:
        db.close()


def test_two_prints_of_one_case_at_once_one_refuses(fabctl_home, tmp_path):
    """The second `fabctl print` of a case whose first print is still running is refused (exit 3) even on
    another printer; SIGTERM then stops the first, whose job ends interrupted, never resumed."""
    import signal
    import subprocess
    import sys

    from tests.integration.print_fixtures import ROOT

    prof = fast_profiles(tmp_path / "profiles")
    new_case(fabctl_home, prof)
    env = {**os.environ, "FABCTL_HOME": str(fabctl_home), "FABCTL_PROFILES_DIR": str(prof),
           "FABCTL_OPERATOR": "tech1"}
    env.pop("FABCTL_DEBUG", None)
    first = subprocess.Popen([sys.executable, "-m", "fabctl", "print", "case-42", "--json"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, running = time.monotonic() + 120, None
        while running is None and time.monotonic() < deadline and first.poll() is None:
            db = open_db(fabctl_home)
            try:
                running = next((j for j in jobstore.list_jobs(db) if j.state in jobstore.IN_FLIGHT), None)
            finally:
                db.close()
            time.sleep(0.2)
        assert running is not None, first.communicate(timeout=5)
        r = fabctl(fabctl_home, prof, "print", "case-42", "--printer", "sim-sl1s", env=_env())
        assert_one_line_error(r, 3, "already has job", running.job_id)
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    db = open_db(fabctl_home)
    try:
        jobs = jobstore.list_jobs(db)
        assert [j.job_id for j in jobs] == [running.job_id]        # the refused print made no job
        assert jobs[0].state in (jobstore.JobState.interrupted, jobstore.JobState.done)
    finally:
        db.close()
    assert fabctl(fabctl_home, prof, "trace", "verify", env=_env()).code == 0
