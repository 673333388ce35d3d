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

pytestmark = [pytest.mark.db, pytest.mark.timeout(180)]


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
