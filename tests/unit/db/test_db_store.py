"""The store's contract on both backends (FABCTL_TEST_DB picks SQLite or PostgreSQL): ``?`` placeholders,
sqlite-like results, migrations once, rollback on error, snapshots in read(), and write() as one lock across
processes (read-then-update is atomic)."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from fabctl.db import migrations, open_url
from fabctl.errors import InputError
from tests.conftest import Store

pytestmark = pytest.mark.db


def test_migrations_apply_once_and_reopening_changes_nothing(store: Store) -> None:
    db = store.open()
    with db.read() as cur:
        first = cur.execute("SELECT name, applied_utc FROM schema_migrations ORDER BY name").fetchall()
    assert [n for n, _ in first] == sorted(n for n, _ in migrations(store.backend))
    assert any(n.endswith("." + store.backend) for n, _ in first)  # the backend's own file ran too
    db.close()
    again = store.open()
    with again.read() as cur:
        assert cur.execute("SELECT name, applied_utc FROM schema_migrations ORDER BY name").fetchall() == first
        assert cur.execute("SELECT COUNT(*) FROM trace_events").fetchone() == (0,)


def test_placeholders_results_and_types(store: Store) -> None:
    db = store.open()
    with db.write() as cur:
        cur.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, n INTEGER, x DOUBLE PRECISION, t TEXT)")
        cur.execute("INSERT INTO kv (k, n, x, t) VALUES (?, ?, ?, ?)", ("a", True, 1.5, "it's ? here"))
        cur.execute("INSERT INTO kv (k, n, x, t) VALUES (?, ?, ?, ?)", ("b", 7, None, None))
    with db.read() as cur:
        # a ? inside a string literal is text, not a placeholder
        assert cur.execute("SELECT '?', k FROM kv WHERE k = ?", ("a",)).fetchone() == ("?", "a")
        assert cur.execute("SELECT k, n, x, t FROM kv ORDER BY k").fetchall() == [
            ("a", 1, 1.5, "it's ? here"), ("b", 7, None, None)]
        assert [r for r in cur.execute("SELECT k FROM kv ORDER BY k")] == [("a",), ("b",)]
        res = cur.execute("SELECT k FROM kv WHERE n > ?", (100,))
        assert res.fetchone() is None and res.fetchall() == []
        assert cur.execute("SELECT COUNT(*), MAX(n) FROM kv").fetchone() == (2, 7)


def test_an_error_inside_write_rolls_everything_back(store: Store) -> None:
    db = store.open()
    with db.write() as cur:
        cur.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    with pytest.raises(ValueError, match="boom"), db.write() as cur:
        cur.execute("INSERT INTO kv (k, n) VALUES (?, ?)", ("a", 1))
        raise ValueError("boom")
    with pytest.raises(store.errors), db.write() as cur:  # the driver's integrity error
        cur.execute("INSERT INTO kv (k, n) VALUES (?, ?)", ("b", 1))
        cur.execute("INSERT INTO kv (k, n) VALUES (?, ?)", ("b", 2))  # duplicate key
    with db.read() as cur:
        assert cur.execute("SELECT COUNT(*) FROM kv").fetchone() == (0,)
    with db.write() as cur:  # the connection is usable after both
        cur.execute("INSERT INTO kv (k, n) VALUES (?, ?)", ("c", 3))
    with db.read() as cur:
        assert cur.execute("SELECT k FROM kv").fetchall() == [("c",)]


def test_read_sees_one_snapshot(store: Store) -> None:
    a, b = store.open(), store.open()
    with a.write() as cur:
        cur.execute("CREATE TABLE kv (k TEXT PRIMARY KEY)")
        cur.execute("INSERT INTO kv (k) VALUES ('x')")
    with a.read() as cur:
        assert cur.execute("SELECT COUNT(*) FROM kv").fetchone() == (1,)
        with b.write() as other:
            other.execute("INSERT INTO kv (k) VALUES ('y')")
        assert cur.execute("SELECT COUNT(*) FROM kv").fetchone() == (1,)  # still the block's snapshot
    with a.read() as cur:
        assert cur.execute("SELECT COUNT(*) FROM kv").fetchone() == (2,)


def test_a_migration_this_fabctl_does_not_know_is_refused(store: Store) -> None:
    db = store.open()
    with db.write() as cur:
        cur.execute("INSERT INTO schema_migrations (name, applied_utc) VALUES (?, ?)",
                    ("999_future", "2030-01-01T00:00:00+00:00"))
    db.close()
    with pytest.raises(InputError, match="999_future") as e:
        store.open()
    assert e.value.hint == "upgrade fabctl"


def _increment(url: str, n: int) -> None:
    db = open_url(url)
    for _ in range(n):
        with db.write() as cur:  # read, then update from what was read: only safe under the write lock
            (value,) = cur.execute("SELECT n FROM counter WHERE k = ?", ("c",)).fetchone()
            cur.execute("UPDATE counter SET n = ? WHERE k = ?", (value + 1, "c"))
    db.close()


def test_read_then_update_inside_write_is_atomic_across_processes(store: Store) -> None:
    db = store.open()
    with db.write() as cur:
        cur.execute("CREATE TABLE counter (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        cur.execute("INSERT INTO counter (k, n) VALUES ('c', 0)")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_increment, args=(store.url, 80)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with db.read() as cur:
        assert cur.execute("SELECT n FROM counter").fetchone() == (240,)  # no lost update
