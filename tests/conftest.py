"""Shared fixtures: a fresh FABCTL_HOME per test and a way to run the real `fabctl` command.

The store's backend follows ``FABCTL_TEST_DB``: ``sqlite`` (the default: ``$FABCTL_HOME/fabctl.db``) or
``postgres``: then one throwaway PostgreSQL cluster is started for the session (hardware/postgres/start.sh, on
127.0.0.1 and a free port) and ``fabctl_home`` gives every test a fresh store of its own through
``FABCTL_DB_URL`` (a new schema in one database: ``?schema=tN``, far cheaper than CREATE DATABASE), so every test that uses the store runs on PostgreSQL unchanged (``make test`` runs the
``db``-marked tests that way). Tests marked ``postgres`` need the server itself and start the cluster in any
mode. ``store`` gives a test the same database for direct, attacker-style SQL on either backend.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "case-42"
CORPUS = ROOT / "tests" / "data" / "corpus"
PG_SCRIPTS = ROOT / "hardware" / "postgres"
TEST_DB = os.environ.get("FABCTL_TEST_DB", "sqlite")
if TEST_DB not in ("sqlite", "postgres"):
    raise RuntimeError(f"FABCTL_TEST_DB={TEST_DB!r}: use sqlite or postgres")
TRACE_TRIGGERS = ("trace_events_no_update", "trace_events_no_delete")


@dataclass
class PgCluster:
    """A running throwaway PostgreSQL server; ``new_schema()`` gives each test a store of its own."""

    host: str
    port: int
    user: str
    password: str
    datadir: Path

    dbname: str = "fabctl_test"
    _n: int = 0

    def url(self, schema: str = "", password: str | None = None, dbname: str | None = None) -> str:
        # the throwaway cluster has no TLS: sslmode=disable spares each connection the TLS probe
        return (f"postgresql://{self.user}:{password or self.password}@{self.host}:{self.port}/"
                f"{dbname or self.dbname}?sslmode=disable" + (f"&schema={schema}" if schema else ""))

    def connect(self, dbname: str | None = None, schema: str = ""):
        import pg8000.dbapi

        conn = pg8000.dbapi.connect(user=self.user, password=self.password, host=self.host, port=self.port,
                                    database=dbname or self.dbname)
        conn.autocommit = True
        if schema:
            conn.cursor().execute(f"SET search_path TO {schema}")
        return conn

    def new_schema(self) -> str:
        """A schema name no test has used (fabctl creates it on first open)."""
        self._n += 1
        return f"t{os.getpid()}_{self._n}"

    def create_db(self, dbname: str) -> None:
        conn = self.connect("postgres")
        conn.cursor().execute(f"CREATE DATABASE {dbname}")
        conn.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL cluster for this session, started with hardware/postgres/start.sh and deleted after."""
    try:
        import pg8000.dbapi  # noqa: F401
    except ImportError:
        pytest.fail("PostgreSQL tests need the pg8000 driver: pip install -e '.[dev,postgres]' (make install)")
    # as root the server runs as `postgres`, which must reach the directory: /tmp, whatever TMPDIR says
    root = Path(tempfile.mkdtemp(prefix="fabctl-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    user, password = "fabctl", secrets.token_hex(12)
    env = {**os.environ, "PG_TEST_USER": user, "PG_TEST_PASSWORD": password}
    last = ""
    for attempt in range(3):  # a free port can be taken between finding it and binding it
        port, datadir = _free_port(), root / f"pg{attempt}"
        p = subprocess.run([str(PG_SCRIPTS / "start.sh"), str(datadir), str(port)], env=env,
                           capture_output=True, text=True, timeout=180)
        if p.returncode == 0:
            break
        last = p.stderr
        subprocess.run([str(PG_SCRIPTS / "stop.sh"), str(datadir)], capture_output=True, timeout=60)
    else:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL (run hardware/postgres/install.sh): {last.strip()[-800:]}")
    cluster = PgCluster("127.0.0.1", port, user, password, datadir)
    cluster.create_db(cluster.dbname)
    try:
        yield cluster
    finally:
        subprocess.run([str(PG_SCRIPTS / "stop.sh"), str(datadir)], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Store:
    """The test's store, on whichever backend this run uses, plus raw access as someone with the database would."""

    backend: str
    home: Path
    url: str  # sqlite:///... or postgresql://... (for open_url in a subprocess)
    cluster: PgCluster | None = None
    schema: str = ""

    def open(self):
        from fabctl.db import open_url

        return open_url(self.url)

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """What the driver raises when a trigger refuses a statement."""
        if self.backend == "sqlite":
            return (sqlite3.IntegrityError,)
        import pg8000.dbapi

        return (pg8000.dbapi.DatabaseError,)

    def raw(self, *sql: str, guards: bool = False) -> list:
        """Run SQL directly on the database, outside fabctl; with ``guards=False`` first remove the trace's
        append-only triggers (an attacker with the file or a superuser login can). Returns the last result."""
        if self.backend == "sqlite":
            con = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            try:
                if not guards:
                    for t in TRACE_TRIGGERS:
                        con.execute(f"DROP TRIGGER IF EXISTS {t}")
                rows: list = []
                for s in sql:
                    rows = con.execute(s).fetchall()
                con.commit()
            finally:
                con.close()
            return rows
        assert self.cluster is not None
        con = self.cluster.connect(schema=self.schema)
        try:
            cur = con.cursor()
            if not guards:
                cur.execute("ALTER TABLE trace_events DISABLE TRIGGER USER")
            rows = []
            for s in sql:
                cur.execute(s)
                rows = cur.fetchall() if cur.description else []
        finally:
            con.close()
        return [tuple(r) for r in rows]

    def text(self) -> str:
        """Everything the store holds, as text (to prove something is nowhere in it)."""
        if self.backend == "sqlite":
            path = Path(self.url.removeprefix("sqlite:///"))
            files = [path, path.with_name(path.name + "-wal")]
            return "".join(f.read_bytes().decode("latin-1") for f in files if f.exists())
        tables = [r[0] for r in self.raw(f"SELECT tablename FROM pg_tables WHERE schemaname = '{self.schema}'",
                                         guards=True)]
        return "\n".join(str(self.raw(f"SELECT t::text FROM {t} AS t", guards=True)) for t in tables)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def fabctl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """A fresh ``$FABCTL_HOME``; under ``FABCTL_TEST_DB=postgres`` also a fresh database in ``FABCTL_DB_URL``."""
    home = tmp_path / "home"
    monkeypatch.setenv("FABCTL_HOME", str(home))
    monkeypatch.setenv("FABCTL_OPERATOR", "tech1")
    monkeypatch.delenv("FABCTL_DB_URL", raising=False)
    monkeypatch.delenv("FABCTL_DEBUG", raising=False)
    if TEST_DB == "postgres":
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        monkeypatch.setenv("FABCTL_DB_URL", cluster.url(cluster.new_schema()))

        def no_sqlite_store() -> None:  # a test that quietly used SQLite would prove nothing about PostgreSQL
            if (home / "fabctl.db").exists():
                pytest.fail(f"{home / 'fabctl.db'} was created in a FABCTL_TEST_DB=postgres run: the test "
                            "bypassed FABCTL_DB_URL (use the `store` fixture for direct SQL)")

        request.addfinalizer(no_sqlite_store)
    return home


@pytest.fixture
def store(fabctl_home: Path, request: pytest.FixtureRequest) -> Store:
    """The store ``fabctl_home`` points at (SQLite file or the test's PostgreSQL database)."""
    url = os.environ.get("FABCTL_DB_URL", "")
    if TEST_DB == "postgres":
        return Store("postgres", fabctl_home, url, request.getfixturevalue("pg_cluster"), url.rsplit("=", 1)[1])
    return Store("sqlite", fabctl_home, f"sqlite:///{fabctl_home / 'fabctl.db'}")


@pytest.fixture
def fabctl(fabctl_home: Path):
    """Run the installed CLI in a subprocess, exactly as a technician would."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
        full_env = {**os.environ, **(env or {})}
        p = subprocess.run([sys.executable, "-m", "fabctl", *args], capture_output=True, text=True,
                           env=full_env, timeout=timeout, cwd=ROOT)
        return Run(p.returncode, p.stdout, p.stderr)

    return run


def assert_one_line_error(r: Run, code: int, *words: str) -> None:
    """The CLI contract: exit ``code``, ``error: ...`` on one line (plus an optional hint), no traceback."""
    assert r.code == code, (r.code, r.out, r.err)
    assert "Traceback" not in r.err and "Traceback" not in r.out
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error: "), r.err
    assert all(ln.startswith(("error: ", "hint: ")) for ln in lines), r.err
    assert sum(ln.startswith("error: ") for ln in lines) == 1, r.err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])
