"""The store behind the trace, the queue and the records: SQLite by default or PostgreSQL, one API.

``open_db(home)`` gives a ``Database`` on ``$FABCTL_HOME/fabctl.db``, or on the database that
``FABCTL_DB_URL`` names: ``sqlite:///path/to/fabctl.db`` or ``postgresql://user[:password]@host[:port]/dbname``
(``postgres://`` too; ``?sslmode=disable|prefer|require|verify-full``; ``?schema=NAME`` keeps fabctl's tables
in that schema, created when missing; a missing password is taken from ``PGPASSWORD``). Both backends offer the same calls:

- ``write()``: a transaction that holds the store's single write lock from its first statement, so
  read-then-update inside it is atomic across processes and hosts. SQLite: ``BEGIN IMMEDIATE``.
  PostgreSQL: READ COMMITTED plus ``pg_advisory_xact_lock(PG_WRITE_LOCK_KEY)`` as its first statement (each
  later statement sees everything the previous lock holders committed). Waiting for the lock gives up after
  60 s on both.
- ``read()``: a consistent snapshot for the whole block (PostgreSQL: REPEATABLE READ, READ ONLY).
- ``cur.execute(sql, params)`` with ``?`` placeholders on both; the result has ``fetchone()``,
  ``fetchall()`` and iterates over rows (tuples or lists of plain Python values). A Python ``bool`` is stored
  as 0/1 on both, as SQLite does.

The schema is the ordered migration files of fabctl/schema (see its README), applied once each and recorded in
``schema_migrations``, inside a write transaction: two processes opening a fresh database at once serialise
on the write lock and the second finds the work done.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from fabctl.errors import InputError, TransportError

SCHEMA_PACKAGE = "fabctl.schema"
#: the key of PostgreSQL's transaction-level advisory lock that every ``write()`` takes ("fabctl" in ASCII)
PG_WRITE_LOCK_KEY = 0x6661_6263_746C
LOCK_WAIT_S = 60.0
PG_CONNECT_TIMEOUT_S = 10.0
PG_INSTALL_HINT = "pip install 'fabctl[postgres]' (the pg8000 driver)"
PG_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def migrations(backend: str) -> list[tuple[str, str]]:
    """``(name, sql)`` in apply order for ``backend`` ("sqlite" or "postgres"); see fabctl/schema/README.md."""
    root = resources.files(SCHEMA_PACKAGE)
    # NNN_name.sql, then its NNN_name.<backend>.sql (plain name order would put .postgres. before .sql)
    names = sorted((f.name for f in root.iterdir() if f.name.endswith(".sql")),
                   key=lambda n: (n.split(".")[0], n.count(".")))
    out = []
    for name in names:
        parts = name.split(".")
        if len(parts) == 2 or (len(parts) == 3 and parts[1] == backend):
            out.append((name.removesuffix(".sql"), root.joinpath(name).read_text(encoding="utf-8")))
    return out


class Database:
    """One connection to the store (SQLite here; ``PostgresDatabase`` below). ``write()`` holds the write lock."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path: Path | None = path
        self.where = f"SQLite database {path}"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=LOCK_WAIT_S, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        wanted = migrations(self.backend)
        with self.write() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                        "(name TEXT PRIMARY KEY, applied_utc TEXT NOT NULL)")
            done = {r[0] for r in cur.execute("SELECT name FROM schema_migrations").fetchall()}
            unknown = done - {n for n, _ in wanted}
            if unknown:
                raise InputError(
                    f"{self.where} has schema migrations this fabctl does not know: "
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


# --- PostgreSQL ---------------------------------------------------------------------------------------------


class PgTarget:
    """A parsed ``postgresql://`` URL. ``str()`` and ``where`` never show the password."""

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port or 5432
        except ValueError as e:
            raise InputError(f"FABCTL_DB_URL {redact(url)} is not a valid PostgreSQL URL: {e}",
                             hint="use postgresql://user:password@host:5432/dbname") from None
        if parts.scheme not in ("postgres", "postgresql"):
            raise InputError(f"FABCTL_DB_URL {redact(url)} is not a PostgreSQL URL",
                             hint="use postgresql://user:password@host:5432/dbname")
        self.host = parts.hostname or "localhost"
        self.port = port
        self.dbname = unquote(parts.path.lstrip("/"))
        self.user = unquote(parts.username or "") or os.environ.get("PGUSER") or getpass.getuser()
        self.password = unquote(parts.password or "") or os.environ.get("PGPASSWORD") or None
        if not self.dbname or "/" in self.dbname:
            raise InputError(f"FABCTL_DB_URL {redact(url)} names no database",
                             hint="end the URL with /dbname, e.g. postgresql://fabctl@db-host:5432/fabctl")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"sslmode", "schema"})
        if unknown:
            raise InputError(f"FABCTL_DB_URL has parameters fabctl does not use: {', '.join(unknown)}",
                             hint="only sslmode=disable|prefer|require|verify-full and schema=NAME are understood")
        self.schema = query.get("schema", [""])[-1]
        if self.schema and not PG_SCHEMA_RE.fullmatch(self.schema):
            raise InputError(f"FABCTL_DB_URL schema={self.schema!r} is not a plain lower-case name "
                             "([a-z_][a-z0-9_], at most 63 characters)", hint="e.g. ?schema=fabctl")
        self.sslmode = query.get("sslmode", ["prefer"])[-1]
        if self.sslmode not in ("disable", "prefer", "require", "verify-full"):
            raise InputError(f"FABCTL_DB_URL sslmode={self.sslmode!r} is not one of "
                             "disable, prefer, require, verify-full", hint="e.g. ?sslmode=verify-full")
        self.where = f"PostgreSQL {self.user}@{self.host}:{self.port}/{self.dbname}"
        if self.schema:
            self.where += f" schema {self.schema}"

    def ssl_context(self):
        if self.sslmode == "disable":
            return False
        if self.sslmode == "require":
            return True
        if self.sslmode == "verify-full":
            import ssl

            return ssl.create_default_context()
        return None  # prefer: TLS when the server offers it

    def __str__(self) -> str:
        return self.where


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.split(":", 1)[0] + ":..."
    auth, at, hostpart = rest.rpartition("@")
    if not at:
        return url
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in auth else ''}@{hostpart}"


def _driver():
    try:
        import pg8000.dbapi
    except ImportError:
        raise InputError("FABCTL_DB_URL names a PostgreSQL server but its driver pg8000 is not installed",
                         hint=PG_INSTALL_HINT) from None
    # fabctl writes ``?`` placeholders on both backends; pg8000 reads the style from its module
    pg8000.dbapi.paramstyle = "qmark"
    return pg8000.dbapi


def _server_message(err: Exception) -> tuple[str, str]:
    """(SQLSTATE code, message) of a pg8000 DatabaseError; ("", text) for anything else."""
    info = err.args[0] if err.args else {}
    if isinstance(info, dict):
        return str(info.get("C", "")), str(info.get("M", ""))
    return "", str(err)


class PostgresDatabase(Database):
    """The store on a PostgreSQL server, with the same API as the SQLite ``Database``."""

    backend = "postgres"

    def __init__(self, target: PgTarget) -> None:
        self.path = None
        self.target = target
        self.where = target.where
        self._dbapi = _driver()
        self.conn = self._connect()
        self._in_tx = False
        self._migrate()

    def _connect(self):
        t = self.target
        try:
            sock = socket.create_connection((t.host, t.port), timeout=PG_CONNECT_TIMEOUT_S)
        except OSError as e:
            raise TransportError(
                f"cannot reach {t.where}: {e.strerror or type(e).__name__} "
                f"(waited at most {PG_CONNECT_TIMEOUT_S:g} s)",
                hint="is the PostgreSQL server running and listening on that host and port? "
                     "check FABCTL_DB_URL") from None
        sock.settimeout(None)  # only the TCP connect is bounded; lock waits are bounded by lock_timeout
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        try:
            conn = self._dbapi.connect(user=t.user, password=t.password, database=t.dbname, sock=sock,
                                       host=t.host, port=t.port, ssl_context=t.ssl_context(),
                                       application_name="fabctl")
        except self._dbapi.DatabaseError as e:
            sock.close()
            code, msg = _server_message(e)
            if code in ("28P01", "28000"):
                raise InputError(f"{t.where} refused the login: {msg}",
                                 hint="check the user and password in FABCTL_DB_URL (or PGPASSWORD)") from None
            if code == "3D000":
                raise InputError(f"{t.where}: {msg}",
                                 hint="create it first (createdb) or fix the database name in FABCTL_DB_URL"
                                 ) from None
            raise TransportError(f"{t.where} refused the connection: {msg or code}",
                                 hint="check the server's log and FABCTL_DB_URL") from None
        except (self._dbapi.InterfaceError, OSError) as e:
            sock.close()
            raise TransportError(f"cannot talk to {t.where}: {_no_secret(e, t)}",
                                 hint="is it a PostgreSQL server? check FABCTL_DB_URL and sslmode") from None
        conn.autocommit = True  # transactions are explicit (BEGIN ... COMMIT), as on SQLite
        cur = conn.cursor()
        cur.execute(f"SET lock_timeout = '{int(LOCK_WAIT_S * 1000)}ms'")
        cur.execute("SET TIME ZONE 'UTC'")
        if t.schema:
            cur.execute(f'SET search_path TO "{t.schema}"')
        return conn

    def _migrate(self) -> None:
        wanted = {n for n, _ in migrations(self.backend)}
        with self.read() as cur:  # the common case, without taking the write lock: all applied already
            exists = cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
            done = {r[0] for r in cur.execute("SELECT name FROM schema_migrations")} if exists else set()
        if not exists or done != wanted:
            if self.target.schema:
                with self.write() as cur:
                    cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.target.schema}"')
            super()._migrate()

    @contextmanager
    def _tx(self, begin: str, lock: bool) -> Iterator[_PgCursor]:
        if self._in_tx:
            raise RuntimeError("a transaction is already open on this Database (nested write()/read())")
        cur = _PgCursor(self.conn)
        self._in_tx, finished = True, False
        try:
            cur.execute(begin)
            if lock:
                self._take_write_lock(cur)
            yield cur
            cur.execute("COMMIT")
            finished = True
        except self._dbapi.InterfaceError as e:
            raise TransportError(f"lost the connection to {self.where}: {_no_secret(e, self.target)}",
                                 hint="check the server and the network; nothing of this step was committed"
                                 ) from None
        finally:
            if not finished:  # an error, or an interrupt, inside the block: never leave it half open
                self._rollback()
            self._in_tx = False

    def _take_write_lock(self, cur: _PgCursor) -> None:
        try:
            cur.execute(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK_KEY})")
        except self._dbapi.DatabaseError as e:
            code, _ = _server_message(e)
            if code != "55P03":
                raise
            raise TransportError(
                f"{self.where}: waited more than {LOCK_WAIT_S:g} s for the write lock "
                "(another fabctl process holds a write transaction open)",
                hint="retry; if it persists, look for a stuck fabctl process (pg_stat_activity)") from None

    def _rollback(self) -> None:
        try:
            self.conn.cursor().execute("ROLLBACK")
        except self._dbapi.Error:
            pass  # the connection is gone: the server has rolled the transaction back already

    @contextmanager
    def write(self) -> Iterator[_PgCursor]:
        """A READ COMMITTED transaction that holds the store's advisory write lock from its start."""
        with self._tx("BEGIN ISOLATION LEVEL READ COMMITTED", lock=True) as cur:
            yield cur

    @contextmanager
    def read(self) -> Iterator[_PgCursor]:
        """A read-only transaction on one consistent snapshot (REPEATABLE READ)."""
        with self._tx("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", lock=False) as cur:
            yield cur

    def close(self) -> None:
        try:
            self.conn.close()
        except self._dbapi.InterfaceError:
            pass  # already closed or the server went away


def _no_secret(err: BaseException, target: PgTarget) -> str:
    text = str(err) or type(err).__name__
    return text.replace(target.password, "***") if target.password else text


class _PgCursor:
    """``?`` placeholders and sqlite-like results on pg8000: each ``execute`` returns its own result cursor."""

    def __init__(self, conn) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple = ()) -> _PgResult:
        cur = self._conn.cursor()
        if params:
            cur.execute(sql, tuple(int(p) if isinstance(p, bool) else p for p in params))
        else:
            cur.execute(sql)
        return _PgResult(cur)

    def executescript_in_tx(self, script: str) -> None:
        # no parameters: pg8000 sends the script as one simple query, which may hold many statements
        self._conn.cursor().execute(script)


class _PgResult:
    """One statement's result as sqlite3 gives it: rows are tuples; ``rowcount`` counts rows changed."""

    def __init__(self, cur) -> None:
        self.description = cur.description
        self.rowcount = cur.rowcount
        self._rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
        self._next = 0

    def fetchone(self) -> tuple | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple]:
        rows, self._next = self._rows[self._next:], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[tuple]:
        while (row := self.fetchone()) is not None:
            yield row


def open_url(url: str) -> Database:
    """The store a ``FABCTL_DB_URL``-style URL names (``sqlite:///...``, ``postgresql://...``)."""
    if url.startswith("sqlite:///"):
        return Database(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgres://", "postgresql://")):
        return PostgresDatabase(PgTarget(url))
    raise InputError(f"FABCTL_DB_URL {redact(url)} is not a database URL fabctl knows",
                     hint="use sqlite:///path/to/fabctl.db or postgresql://user:password@host:5432/dbname")


def open_db(home: Path) -> Database:
    """The store for ``home``: ``FABCTL_DB_URL`` when set, else ``home/fabctl.db``."""
    url = os.environ.get("FABCTL_DB_URL", "")
    if not url:
        return Database(home / "fabctl.db")
    return open_url(url)
