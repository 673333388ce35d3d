"""The hash chain: every kind of raw-SQL tampering is found and named; concurrent writers never fork it.

Runs on the store of this test run (SQLite, or PostgreSQL under FABCTL_TEST_DB=postgres): ``store.raw`` tampers
as someone with the database would, after removing the append-only triggers (DROP TRIGGER on SQLite,
ALTER TABLE ... DISABLE TRIGGER on PostgreSQL).
"""

from __future__ import annotations

import multiprocessing as mp

import pytest

from fabctl.db import Database, open_url
from fabctl.errors import InputError
from fabctl.trace import log
from fabctl.trace.events import CaseCreated, DesignApproved
from tests.conftest import Store

pytestmark = pytest.mark.db


def _fill(db: Database) -> None:
    log.record(db, "case-1", CaseCreated(fabctl_version="t"), "tech1")
    for rev in range(1, 5):
        log.record(db, "case-1", DesignApproved(revision=rev, design_sha256="a" * 64, approved_by="qa1"), "qa1")
    log.record(db, "case-2", CaseCreated(fabctl_version="t"), "tech2")


def _problems(db: Database) -> list[str]:
    return [p.line() for p in log.verify(db).problems]


def test_intact_chain_verifies(store: Store) -> None:
    db = store.open()
    _fill(db)
    rep = log.verify(db)
    assert rep.ok and rep.events == 6 and rep.cases == 2
    evs = log.events(db, "case-1")
    assert [e.case_seq for e in evs] == [1, 2, 3, 4, 5]
    assert evs[0].prev_hash == log.genesis_hash("case-1")
    assert all(b.prev_hash == a.hash for a, b in zip(evs, evs[1:], strict=False))


def test_triggers_refuse_plain_updates_and_deletes(store: Store) -> None:
    db = store.open()
    _fill(db)
    with pytest.raises(store.errors, match="append-only"):
        store.raw("UPDATE trace_events SET actor = 'x' WHERE seq = 1", guards=True)
    with pytest.raises(store.errors, match="append-only"):
        store.raw("DELETE FROM trace_events WHERE seq = 1", guards=True)
    if store.backend == "postgres":
        with pytest.raises(store.errors, match="append-only"):
            store.raw("TRUNCATE trace_events", guards=True)
    assert log.verify(db).ok and log.verify(db).events == 6


def test_payload_byte_changed(store: Store) -> None:
    db = store.open()
    _fill(db)
    store.raw("UPDATE trace_events SET payload = replace(payload, '\"revision\":2', '\"revision\":3') WHERE seq = 3")
    probs = _problems(db)
    assert probs == ["case case-1 event 3 (row seq 3): edited: stored hash does not match the row's contents "
                     "(a field or payload byte changed)"]


def test_actor_or_time_changed(store: Store) -> None:
    db = store.open()
    _fill(db)
    store.raw("UPDATE trace_events SET at_utc = '2020-01-01T00:00:00.000000+00:00' WHERE seq = 2")
    assert len(_problems(db)) == 1 and "event 2" in _problems(db)[0] and "edited" in _problems(db)[0]


def test_row_deleted_in_the_middle(store: Store) -> None:
    db = store.open()
    _fill(db)
    store.raw("DELETE FROM trace_events WHERE seq = 3")
    probs = _problems(db)
    assert any("event 4" in p and "missing" in p and "deleted" in p for p in probs), probs
    assert any("event 4" in p and "broken link" in p for p in probs), probs
    assert all("case-2" not in p for p in probs)


def test_last_row_deleted(store: Store) -> None:
    db = store.open()
    _fill(db)
    store.raw("DELETE FROM trace_events WHERE seq = 5")
    probs = _problems(db)
    assert probs == ["case case-1 event 5: head mismatch: head says event 5, the chain ends at event 4 "
                     "(events deleted from or added to the end behind fabctl's back, or the head edited)"]


def test_two_rows_swapped(store: Store) -> None:
    db = store.open()
    _fill(db)
    # swap the positions of events 2 and 3 by exchanging their seq numbers
    store.raw("UPDATE trace_events SET seq = -1 WHERE seq = 2",
         "UPDATE trace_events SET seq = 2 WHERE seq = 3",
         "UPDATE trace_events SET seq = 3 WHERE seq = -1")
    probs = _problems(db)
    assert any("reordered" in p for p in probs), probs
    assert any("edited" in p for p in probs), probs  # seq is inside the hash


def test_two_rows_contents_swapped(store: Store) -> None:
    db = store.open()
    _fill(db)
    a = store.raw("SELECT payload FROM trace_events WHERE seq = 2", guards=True)[0][0]
    b = store.raw("SELECT payload FROM trace_events WHERE seq = 3", guards=True)[0][0]
    store.raw( f"UPDATE trace_events SET payload = '{b}' WHERE seq = 2",
         f"UPDATE trace_events SET payload = '{a}' WHERE seq = 3")
    probs = _problems(db)
    assert {p.split(":")[0] for p in probs} == {"case case-1 event 2 (row seq 2)", "case case-1 event 3 (row seq 3)"}


def test_row_inserted_in_the_middle_with_a_valid_hash(store: Store) -> None:
    db = store.open()
    _fill(db)
    prev = log.events(db, "case-1")[2]  # event 3
    payload = '{"approved_by":"intruder","design_sha256":"' + "c" * 64 + '","revision":9}'
    at = prev.at_utc
    # the forger knows the algorithm: the new row itself hashes correctly and links to event 3,
    # and every later row is renumbered to make room
    forged = log.event_hash(4, "case-1", 4, "design.approved", at, "intruder", payload, prev.hash)
    store.raw(
         "UPDATE trace_events SET seq = seq + 1000 WHERE seq >= 4",
         "UPDATE trace_events SET seq = seq - 999 WHERE seq >= 1000",
         "UPDATE trace_events SET case_seq = case_seq + 1000 WHERE case_id = 'case-1' AND case_seq >= 4",
         "UPDATE trace_events SET case_seq = case_seq - 999 WHERE case_seq >= 1000",
         "INSERT INTO trace_events (seq, case_id, case_seq, type, at_utc, actor, payload, prev_hash, hash) "
         f"VALUES (4, 'case-1', 4, 'design.approved', '{at}', 'intruder', '{payload}', '{prev.hash}', '{forged}')")
    probs = _problems(db)
    assert not any("event 4 " in p for p in probs), probs  # the forged row itself is self-consistent
    assert any(p.startswith("case case-1 event 5 (row seq 5): edited") for p in probs), probs
    assert any(p.startswith("case case-1 event 5 (row seq 5): broken link") for p in probs), probs


def test_row_appended_without_the_head(store: Store) -> None:
    db = store.open()
    _fill(db)
    last = log.events(db, "case-2")[-1]
    payload = '{"fabctl_version":"x"}'
    h = log.event_hash(99, "case-2", 2, "case.created", last.at_utc, "intruder", payload, last.hash)
    store.raw("INSERT INTO trace_events (seq, case_id, case_seq, type, at_utc, actor, payload, prev_hash, hash) "
               f"VALUES (99, 'case-2', 2, 'case.created', '{last.at_utc}', 'intruder', '{payload}', '{last.hash}', '{h}')")
    assert _problems(db) == ["case case-2 event 1: head mismatch: head says event 1, the chain ends at event 2 "
                             "(events deleted from or added to the end behind fabctl's back, or the head edited)"]


def test_head_rewritten_and_tail_deleted_together_still_breaks_on_a_middle_edit(store: Store) -> None:
    db = store.open()
    _fill(db)
    store.raw("DELETE FROM trace_heads WHERE case_id = 'case-2'")
    assert _problems(db) == ["case case-2: head missing: events exist but the case's head row is gone"]


def _append_many(url: str, who: str, n: int) -> None:
    db = open_url(url)
    for i in range(n):
        log.record(db, "case-c", DesignApproved(revision=i + 1, design_sha256="b" * 64, approved_by=who), who)
    db.close()


def test_two_processes_appending_never_fork_the_chain(store: Store) -> None:
    db = store.open()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(store.url, who, 60)) for who in ("tech1", "tech2")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    evs = log.events(db, "case-c")
    assert len(evs) == 120
    assert [e.case_seq for e in evs] == list(range(1, 121))
    assert {e.actor for e in evs} == {"tech1", "tech2"}
    assert log.verify(db).ok


def test_bad_ids_are_refused(store: Store) -> None:
    db = store.open()
    for bad in ("../x", "Case-1", "", "a" * 65, "case 1", "case/1"):
        with pytest.raises(InputError):
            log.record(db, bad, CaseCreated(fabctl_version="t"), "tech1")
    with pytest.raises(InputError):
        log.record(db, "case-1", CaseCreated(fabctl_version="t"), "John Smith")


def test_payload_schema_has_no_room_for_identifiers() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        CaseCreated(fabctl_version="t", patient_name="x")  # type: ignore[call-arg]
