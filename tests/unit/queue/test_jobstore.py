"""The job store: the transition table (every legal move works, every illegal one refuses), one trace event per
change in the same transaction, one active job per case, leases, recovery, re-queue, and the claim race
across processes on one real database file (or the PostgreSQL database of this run)."""

from __future__ import annotations

import multiprocessing as mp
import time
from datetime import UTC, datetime, timedelta

import pytest

from fabctl import jobstore as js
from fabctl.db import Database, open_url
from fabctl.errors import CheckFailed, InputError
from fabctl.jobstore import TRANSITIONS, JobState
from fabctl.trace import log
from fabctl.trace.events import CaseCreated
from tests.conftest import Store

pytestmark = pytest.mark.db

S = JobState
#: a path of legal transitions from creation (queued) to each state
PATH = {
    S.queued: [], S.preparing: [S.preparing], S.sending: [S.preparing, S.sending],
    S.printing: [S.preparing, S.sending, S.printing], S.done: [S.preparing, S.sending, S.printing, S.done],
    S.failed: [S.preparing, S.failed], S.cancelled: [S.cancelled], S.interrupted: [S.preparing, S.interrupted],
}


def _case(db: Database, case_id: str) -> None:
    log.record(db, case_id, CaseCreated(fabctl_version="t"), "tech1")


def _job_at(db: Database, case_id: str, state: JobState) -> js.Job:
    _case(db, case_id)
    job = js.create(db, case_id=case_id, printer_id="sim-laser", resin_id="demo-grey", lot="L1",
                    actor="tech1", queued=True, owner=None)
    for to in PATH[state]:
        job = js.transition(db, job.job_id, to, actor="queue-d1")
    assert job.state is state
    return job


def _events(db: Database, case_id: str) -> list[log.TraceEvent]:
    return log.events(db, case_id)


def test_the_table_is_the_documented_state_machine() -> None:
    assert set(TRANSITIONS) == set(JobState)
    assert js.TERMINAL == {S.done, S.failed, S.cancelled, S.interrupted}
    assert TRANSITIONS[S.queued] == {S.preparing, S.cancelled}
    assert TRANSITIONS[S.printing] == {S.done, S.failed, S.cancelled, S.interrupted}
    assert S.done not in TRANSITIONS[S.sending] and S.done not in TRANSITIONS[S.preparing]


def test_every_legal_transition_works_and_writes_one_event(store: Store) -> None:
    db = store.open()
    n = 0
    for frm, allowed in TRANSITIONS.items():
        for to in allowed:
            n += 1
            case = f"case-l{n}"
            job = _job_at(db, case, frm)
            before = _events(db, case)
            new = js.transition(db, job.job_id, to, actor="queue-d1", reason="r", last_line=7, last_layer=2,
                                extra={"job_sha256": "a" * 64})
            after = _events(db, case)
            assert new.state is to and js.get(db, job.job_id).state is to
            assert len(after) == len(before) + 1
            ev = after[-1]
            assert ev.type == "job.state" and ev.actor == "queue-d1"
            assert (ev.payload["from_state"], ev.payload["to_state"]) == (frm.value, to.value)
            assert ev.payload["last_confirmed_line"] == 7 and ev.payload["detail"] == {"job_sha256": "a" * 64}
    assert n == sum(len(v) for v in TRANSITIONS.values()) == 14
    rep = log.verify(db)
    assert rep.ok, [p.line() for p in rep.problems]


def test_every_illegal_transition_refuses_and_changes_nothing(store: Store) -> None:
    db = store.open()
    n = 0
    for frm in JobState:
        for to in set(JobState) - TRANSITIONS[frm]:
            n += 1
            case = f"case-i{n}"
            job = _job_at(db, case, frm)
            before = _events(db, case)
            with pytest.raises(CheckFailed, match=f"cannot go from {frm.value} to {to.value}"):
                js.transition(db, job.job_id, to, actor="queue-d1")
            assert js.get(db, job.job_id) == job
            assert len(_events(db, case)) == len(before)
    assert n == 8 * 8 - 14


def test_store_and_trace_change_in_one_transaction(store: Store) -> None:
    """A trace append that fails (an actor that is not a staff id) leaves the job row unchanged too."""
    db = store.open()
    job = _job_at(db, "case-tx", S.preparing)
    with pytest.raises(InputError, match="not a staff ID"):
        js.transition(db, job.job_id, S.sending, actor="Not A Staff Id")
    assert js.get(db, job.job_id).state is S.preparing
    with pytest.raises(InputError):
        js.create(db, case_id="case-tx2", printer_id="p", resin_id=None, lot=None, actor="Bad Actor",
                  queued=True, owner=None)
    assert [j.case_id for j in js.list_jobs(db)] == ["case-tx"]


def test_creation_event_and_ids(store: Store) -> None:
    db = store.open()
    _case(db, "case-42")
    a = js.create(db, case_id="case-42", printer_id="sim-laser", resin_id="demo-grey", lot="L1", actor="tech1",
                  queued=False, owner="cli-host-1")
    assert (a.job_id, a.state, a.owner) == ("job-000001", S.preparing, "cli-host-1")
    ev = _events(db, "case-42")[-1]
    assert ev.type == "job.state" and ev.payload["from_state"] is None and ev.payload["to_state"] == "preparing"
    f = js.create(db, case_id="ignored", printer_id="sim-laser", resin_id=None, lot=None, actor="tech1",
                  queued=True, owner=None, kind="file", job_file="/x/job.gcode")
    assert (f.job_id, f.case_id, f.kind) == ("job-000002", "svc-job-000002", "file")
    assert [e.type for e in _events(db, "svc-job-000002")] == ["job.state"]
    with pytest.raises(InputError, match="needs its owner"):
        js.create(db, case_id="case-9", printer_id="p", resin_id=None, lot=None, actor="tech1", queued=False,
                  owner=None)
    with pytest.raises(InputError, match="reserved prefix"):
        js.create(db, case_id="svc-job-000009", printer_id="p", resin_id=None, lot=None, actor="tech1",
                  queued=True, owner=None)
    with pytest.raises(InputError, match="does not exist"):
        js.get(db, "job-999999")


def test_a_case_has_at_most_one_active_job(store: Store) -> None:
    db = store.open()
    job = _job_at(db, "case-42", S.printing)
    with pytest.raises(CheckFailed, match="case case-42 already has job job-000001 \\(printing\\)"):
        js.create(db, case_id="case-42", printer_id="sim-laser", resin_id="demo-grey", lot="L1",
                  actor="tech2", queued=False, owner="cli-2")
    js.transition(db, job.job_id, S.done, actor="queue-d1")
    again = js.create(db, case_id="case-42", printer_id="sim-laser", resin_id="demo-grey", lot="L1",
                      actor="tech2", queued=True, owner=None)
    assert again.state is S.queued


def test_cancel_queued_at_once_running_by_request(store: Store) -> None:
    db = store.open()
    q = _job_at(db, "case-1", S.queued)
    c = js.request_cancel(db, q.job_id, actor="tech2")
    assert c.state is S.cancelled and c.reason == "cancelled by tech2"
    r = _job_at(db, "case-2", S.printing)
    c = js.request_cancel(db, r.job_id, actor="tech2")
    assert c.state is S.printing and c.cancel_requested and c.cancel_by == "tech2"
    assert _events(db, "case-2")[-1].type == "job.cancel_requested"
    js.request_cancel(db, r.job_id, actor="tech2")  # asking twice records once
    assert [e.type for e in _events(db, "case-2")].count("job.cancel_requested") == 1
    with pytest.raises(CheckFailed, match="already ended"):
        js.request_cancel(db, q.job_id, actor="tech2")


def test_requeue_makes_a_new_job_that_references_the_old(store: Store) -> None:
    db = store.open()
    old = _job_at(db, "case-7", S.interrupted)
    new = js.requeue(db, old.job_id, actor="tech1")
    assert new.job_id != old.job_id and new.state is S.queued and new.requeue_of == old.job_id
    assert (new.case_id, new.printer_id, new.resin_id, new.lot) == ("case-7", "sim-laser", "demo-grey", "L1")
    assert _events(db, "case-7")[-1].payload["requeue_of"] == old.job_id
    assert js.get(db, old.job_id).state is S.interrupted
    done = _job_at(db, "case-8", S.done)
    with pytest.raises(CheckFailed, match="only an interrupted, failed or cancelled"):
        js.requeue(db, done.job_id, actor="tech1")


def test_leases(store: Store) -> None:
    db = store.open()
    assert js.printer_owner(db, "p1") is None
    assert js.acquire_printer(db, "p1", "d1", 30)
    assert not js.acquire_printer(db, "p1", "d2", 30)
    assert js.acquire_printer(db, "p1", "d1", 30)  # re-entrant for its owner
    assert js.printer_owner(db, "p1") == "d1"
    assert js.renew_printer(db, "p1", "d1", 30) and not js.renew_printer(db, "p1", "d2", 30)
    js.release_printer(db, "p1", "d2")  # not d2's: nothing happens
    assert js.printer_owner(db, "p1") == "d1"
    js.release_printer(db, "p1", "d1")
    assert js.printer_owner(db, "p1") is None and js.acquire_printer(db, "p1", "d2", 30)
    # an expired lease is free for anyone
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="microseconds")
    store.raw(f"UPDATE printer_leases SET expires_utc = '{past}' WHERE printer_id = 'p1'", guards=True)
    assert js.printer_owner(db, "p1") is None
    assert js.acquire_printer(db, "p1", "d3", 30) and js.printer_owner(db, "p1") == "d3"
    assert not js.renew_printer(db, "p1", "d2", 30)


def test_recover_marks_dead_owners_jobs_interrupted_and_leaves_live_ones(store: Store) -> None:
    db = store.open()
    live = _job_at(db, "case-a", S.queued)
    dead = _job_at(db, "case-b", S.queued)
    assert js.acquire_printer(db, "sim-laser", "d-live", 30)
    claimed = js.claim_next(db, "sim-laser", "d-live")
    assert claimed is not None and claimed.job_id == live.job_id and claimed.owner == "d-live"
    js.transition(db, live.job_id, S.sending, actor="queue-d-live")
    dead2 = js.claim_next(db, "sim-laser", "d-dead")  # a claimant that never held the lease
    assert dead2 is not None and dead2.job_id == dead.job_id
    js.transition(db, dead.job_id, S.sending, actor="queue-d-dead")
    js.transition(db, dead.job_id, S.printing, actor="queue-d-dead")
    js.record_progress(db, dead.job_id, last_line=123, last_layer=4)
    got = js.recover(db, actor="queue-d9")
    assert [j.job_id for j in got] == [dead.job_id]
    j = js.get(db, dead.job_id)
    assert j.state is S.interrupted and j.last_line == 123 and j.last_layer == 4
    assert "last confirmed line 123" in j.reason and "not resumed" in j.reason
    ev = _events(db, "case-b")[-1].payload
    assert (ev["from_state"], ev["to_state"], ev["last_confirmed_line"]) == ("printing", "interrupted", 123)
    assert js.get(db, live.job_id).state is S.sending
    # the same owner restarted (its lease still live): its old jobs are interrupted too
    got = js.recover(db, actor="queue-d-live", previous_owner="d-live")
    assert [j.job_id for j in got] == [live.job_id]
    js.record_progress(db, dead.job_id, last_line=999)  # a late progress write cannot touch an ended job
    assert js.get(db, dead.job_id).last_line == 123
    assert log.verify(db).ok


def _claim_all(url: str, who: str, out, ready, go) -> None:
    db = open_url(url)
    ready.put(who)
    go.wait(60)
    mine = []
    while (job := js.claim_next(db, "sim-laser", who)) is not None:
        mine.append(job.job_id)
        time.sleep(0.002)  # a worker runs what it claimed before it claims again
    db.close()
    out.put((who, mine))


def test_claim_race_every_job_claimed_exactly_once(store: Store) -> None:
    db = store.open()
    n = 80
    for i in range(n):
        js.create(db, case_id=f"case-r{i}", printer_id="sim-laser", resin_id=None, lot=None, actor="tech1",
                  queued=True, owner=None)
    js.create(db, case_id="case-other", printer_id="other", resin_id=None, lot=None, actor="tech1",
              queued=True, owner=None)
    ctx = mp.get_context("spawn")
    q, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_claim_all, args=(store.url, f"d{k}", q, ready, go)) for k in range(4)]
    for p in procs:
        p.start()
    for _ in procs:  # every claimant has its connection open: then they all start at once
        ready.get(timeout=120)
    go.set()
    results = dict(q.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    claimed = [j for mine in results.values() for j in mine]
    assert len(claimed) == n and len(set(claimed)) == n
    jobs = {j.job_id: j for j in js.list_jobs(db)}
    for who, mine in results.items():
        assert all(jobs[j].owner == who and jobs[j].state is S.preparing for j in mine)
    assert sum(1 for mine in results.values() if mine) >= 2, {k: len(v) for k, v in results.items()}
    assert js.list_jobs(db, [S.queued])[0].printer_id == "other"
    assert log.verify(db).ok
