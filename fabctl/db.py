"""The store behind the trace (and later the queue): SQLite by default, one schema, ordered migrations.

``open_db(home)`` gives a ``Database`` on ``$FABCTL_HOME/fabctl.db``. Writers take the write lock up front
(``BEGIN IMMEDIATE``), so two processes appending to the trace serialise instead of forking the chain.
``FABCTL_DB_URL`` names another database; SQLite URLs (``sqlite:///path``) work now, PostgreSQL arrives with
the multi-host queue and is refused with a clear error until then.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from fabctl.errors import InputError

SCHEMA_PACKAGE = "fabctl.schema"


def migrations(backend: str) -> list[tuple[str, str]]:
    """``(name, sql)`` in apply order for ``backend`` ("sqlite" or "postgres"); see fabctl/schema/README.md."""
    root = resources.files(SCHEMA_PACKAGE)
    names = sorted(f.name for f in root.iterdir() if f.name.endswith(".sql"))
    out = []
    for name in names:
        parts = name.split(".")
        if len(parts) == 2 or (len(parts) == 3 and parts[1] == backend):
            out.append((name.removesuffix(".sql"), root.joinpath(name).read_text(encoding="utf-8")))
    return out


class Database:
    """One connection to the store. Use ``write()`` for a transaction holding the write lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        from datetime import UTC, datetime

        wanted = migrations("sqlite")
        with self.write() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                        "(name TEXT PRIMARY KEY, applied_utc TEXT NOT NULL)")
            done = {r[0] for r in cur.execute("SELECT name FROM schema_migrations").fetchall()}
            unknown = done - {n for n, _ in wanted}
            if unknown:
                raise InputError(
                    f"database {self.path} has schema migrations this fabctl does not know: "
                    f"{', '.join(sorted(unknown))}", hint="upgrade fabctl")
            for name, sql in wanted:
                if name not in done:
                    cur.executescript_in_tx(sql)
                    cur.execute("INSERT INTO schema_migrations (name, applied_utc) VALUES (?, ?)",
                                (name, datetime.now(UTC).isoformat(timespec="seconds")))

    @contextmanager
    def write(self) -> Iterator[_Cursor]:
        """A transaction that holds SQLite's write lock from its start (BEGIN IMMEDIATE)."""
        cur = _Cursor(self.conn)
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except Exception:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[_Cursor]:
        """A read transaction: a consistent snapshot for the whole block."""
        cur = _Cursor(self.conn)
        cur.execute("BEGIN")
        try:
            yield cur
        finally:
            cur.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class _Cursor:
    """A thin cursor so callers write plain SQL with ``?`` placeholders whatever the backend."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def executescript_in_tx(self, script: str) -> None:
        # sqlite3.executescript commits first; split statements to stay inside our transaction
        for stmt in _split_sql(script):
            self._conn.execute(stmt)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements; triggers keep their BEGIN ... END bodies whole."""
    out, buf = [], []
    for line in script.strip().splitlines():
        buf.append(line)
        text = "\n".join(buf).strip()
        if text.endswith(";") and sqlite3.complete_statement(text):
            out.append(text)
            buf = []
    if "\n".join(buf).strip():
        out.append("\n".join(buf))
    return out


def open_db(home: Path) -> Database:
    """The store for ``home``: ``FABCTL_DB_URL`` when set, else ``home/fabctl.db``."""
    url = os.environ.get("FABCTL_DB_URL", "")
    if not url:
        return Database(home / "fabctl.db")
    if url.startswith("sqlite:///"):
        return Database(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgres://", "postgresql://")):
        raise InputError(
            "FABCTL_DB_URL names a PostgreSQL server; this fabctl stores its trace in SQLite only",
            hint="unset FABCTL_DB_URL (PostgreSQL support comes with the multi-host queue)",
        )
    raise InputError(f"FABCTL_DB_URL {url.split(':', 1)[0]}:... is not a database URL fabctl knows",
                     hint="use sqlite:///path/to/fabctl.db")
