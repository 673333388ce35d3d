"""fabctl on a real PostgreSQL server (the session's throwaway cluster, started in any FABCTL_TEST_DB mode):
migrations under the lock from two processes at once, the trace's append-only triggers, and the CLI's one-line
errors for a wrong password, a closed port, a missing database and a bad URL, never showing the password."""

from __future__ import annotations

import json
import multiprocessing as mp
import socket
import time

import pg8000.dbapi
import pytest

from fabctl import db as dbmod
from fabctl.db import PG_WRITE_LOCK_KEY, PostgresDatabase, migrations, open_url
from fabctl.errors import TransportError
from fabctl.trace import log
from fabctl.trace.events import CaseCreated
from tests.conftest import PgCluster, assert_one_line_error

pytestmark = pytest.mark.postgres


def _open_at(url: str, barrier, out) -> None:
    barrier.wait(30)
    db = open_url(url)
    log.record(db, "case-m", CaseCreated(fabctl_version="t"), "tech1")
    db.close()
    out.put("ok")


def test_two_processes_migrating_a_fresh_store_at_once(pg_cluster: PgCluster) -> None:
    url = pg_cluster.url(pg_cluster.new_schema())
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_open_at, args=(url, barrier, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert sorted(out.get(timeout=5) for _ in procs) == ["ok"] * 3
    db = open_url(url)
    assert isinstance(db, PostgresDatabase)
    with db.read() as cur:
        names = [r[0] for r in cur.execute("SELECT name FROM schema_migrations ORDER BY name")]
    assert names == sorted(n for n, _ in migrations("postgres"))  # each applied exactly once
    evs = log.events(db, "case-m")
    assert [e.case_seq for e in evs] == [1, 2, 3] and log.verify(db).ok


def test_write_holds_the_advisory_lock_other_sessions_see(pg_cluster: PgCluster) -> None:
    schema = pg_cluster.new_schema()
    db = open_url(pg_cluster.url(schema))
    spy = pg_cluster.connect()
    q = ("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
         f"AND ((classid::bigint << 32) | objid::bigint) = {PG_WRITE_LOCK_KEY}")
    with db.write() as cur:
        cur.execute("SELECT 1")
        c = spy.cursor()
        c.execute(q)
        assert c.fetchone()[0] == 1
    c = spy.cursor()
    c.execute(q)
    assert c.fetchone()[0] == 0  # released at commit
    with db.read():
        c.execute(q)
        assert c.fetchone()[0] == 0  # readers never take it
    spy.close()


def test_default_sslmode_prefer_falls_back_on_a_server_without_tls(pg_cluster: PgCluster) -> None:
    url = pg_cluster.url(pg_cluster.new_schema()).replace("sslmode=disable&", "")
    assert "sslmode" not in url
    db = open_url(url)
    log.record(db, "case-1", CaseCreated(fabctl_version="t"), "tech1")
    assert log.verify(db).ok


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_errors_are_one_line_and_never_show_the_password(fabctl, pg_cluster: PgCluster) -> None:
    secret = "Wr0ng-pa55-" + pg_cluster.password[:6]
    port = _free_port()
    cases = [
        (pg_cluster.url(password=secret), 2, ["refused the login", "password authentication failed",
                                              f"127.0.0.1:{pg_cluster.port}"]),
        (f"postgresql://fabctl:{secret}@127.0.0.1:{port}/fabctl", 4, ["cannot reach", f"127.0.0.1:{port}"]),
        (pg_cluster.url(dbname="no_such_db"), 2, ["no_such_db", "does not exist"]),
        (f"postgresql://fabctl:{secret}@127.0.0.1:{pg_cluster.port}/fabctl_test?sslmode=require", 4,
         ["cannot talk"]),
        (f"postgresql://fabctl:{secret}@127.0.0.1:x{port}/fabctl", 2, ["not a valid postgresql url"]),
    ]
    for i, (url, code, words) in enumerate(cases):
        args = ("trace", "verify", "--json") if i == 0 else ("trace", "verify")  # --json: still one error line
        r = fabctl(*args, env={"FABCTL_DB_URL": url})
        assert_one_line_error(r, code, *words)
        assert secret not in r.err + r.out and pg_cluster.password not in r.err + r.out, r.err


def test_cli_on_postgres_verify_clean_and_tampering_found(fabctl, pg_cluster: PgCluster) -> None:
    schema = pg_cluster.new_schema()
    env = {"FABCTL_DB_URL": pg_cluster.url(schema)}
    db = open_url(env["FABCTL_DB_URL"])
    for _ in range(3):
        log.record(db, "case-9", CaseCreated(fabctl_version="t"), "tech1")
    ok = fabctl("trace", "verify", "--json", env=env)
    assert ok.code == 0 and json.loads(ok.out)["ok"] is True
    con = pg_cluster.connect(schema=schema)
    cur = con.cursor()
    with pytest.raises(pg8000.dbapi.DatabaseError, match="append-only"):
        cur.execute("DELETE FROM trace_events WHERE case_seq = 2")
    cur.execute("ALTER TABLE trace_events DISABLE TRIGGER USER")
    cur.execute("DELETE FROM trace_events WHERE case_seq = 2")
    con.close()
    r = fabctl("trace", "verify", env=env)
    assert_one_line_error(r, 5, "trace integrity")
    assert "event 3" in r.out and "missing" in r.out


def test_a_write_lock_held_too_long_is_a_one_line_transport_error(pg_cluster: PgCluster,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_cluster.url(pg_cluster.new_schema())
    open_url(url).close()  # migrated while the lock is free
    monkeypatch.setattr(dbmod, "LOCK_WAIT_S", 1.0)
    db = open_url(url)
    holder = pg_cluster.connect()
    holder.autocommit = False  # an open transaction that keeps the lock, as a stuck writer would
    holder.cursor().execute(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK_KEY})")
    t0 = time.monotonic()
    with pytest.raises(TransportError, match="waited more than 1 s for the write lock"), db.write():
        pass
    assert 0.9 <= time.monotonic() - t0 < 10
    holder.rollback()
    holder.close()
    log.record(db, "case-1", CaseCreated(fabctl_version="t"), "tech1")  # the same connection works again
    assert log.verify(db).ok
