"""FABCTL_DB_URL handling without a server: parsing, refusals naming the problem, no password in any message."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from fabctl.db import Database, PgTarget, open_db, open_url, redact
from fabctl.errors import InputError, TransportError

SECRET = "Sup3r-s3cret"


def test_url_parts_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    t = PgTarget(f"postgresql://lab%40x:{SECRET}@db.lab:6543/fab%2Dctl?sslmode=require&schema=site_a")
    assert (t.user, t.password, t.host, t.port, t.dbname) == ("lab@x", SECRET, "db.lab", 6543, "fab-ctl")
    assert (t.sslmode, t.schema, t.ssl_context()) == ("require", "site_a", True)
    assert SECRET not in t.where and SECRET not in str(t)
    d = PgTarget("postgres://fab@10.0.0.5/fabctl")
    assert (d.port, d.sslmode, d.schema, d.password, d.ssl_context()) == (5432, "prefer", "", None, None)
    assert PgTarget("postgresql://fab@h/db?sslmode=disable").ssl_context() is False
    monkeypatch.setenv("PGPASSWORD", SECRET)
    assert PgTarget("postgresql://fab@h/db").password == SECRET


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (f"postgresql://u:{SECRET}@h:notaport/db", ["not a valid postgresql url"]),
        (f"postgresql://u:{SECRET}@h:5432/", ["names no database"]),
        (f"postgresql://u:{SECRET}@h/db?sslmode=sometimes", ["sslmode", "disable, prefer, require, verify-full"]),
        (f"postgresql://u:{SECRET}@h/db?password=x", ["parameters fabctl does not use: password"]),
        (f"postgresql://u:{SECRET}@h/db?schema=Robert;drop", ["schema", "lower-case"]),
        (f"mysql://u:{SECRET}@h/db", ["not a database url fabctl knows"]),
    ],
)
def test_bad_urls_are_input_errors_without_the_password(url: str, words: list[str]) -> None:
    with pytest.raises(InputError) as e:
        open_url(url)
    text = f"{e.value} {e.value.hint}"
    assert SECRET not in text
    for w in words:
        assert w in text.lower(), (w, text)


def test_redact() -> None:
    assert redact(f"postgresql://u:{SECRET}@h:1/db") == "postgresql://u:***@h:1/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact(f"postgresql://u:{SECRET}@x@h/db") == "postgresql://u:***@h/db"


def test_closed_port_is_a_transport_error_naming_host_and_port() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransportError) as e:
        open_url(f"postgresql://fab:{SECRET}@127.0.0.1:{port}/fabctl")
    msg = str(e.value)
    assert f"127.0.0.1:{port}" in msg and "cannot reach" in msg and SECRET not in msg + (e.value.hint or "")
    assert e.value.exit_code == 4 and "\n" not in msg


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pg8000", None)  # import pg8000 now raises ImportError
    monkeypatch.setitem(sys.modules, "pg8000.dbapi", None)
    with pytest.raises(InputError) as e:
        open_url("postgresql://fab@127.0.0.1:1/fabctl")
    assert "pg8000" in str(e.value) and "pip install 'fabctl[postgres]'" in (e.value.hint or "")


def test_sqlite_url_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABCTL_DB_URL", f"sqlite:///{tmp_path / 'x' / 'other.db'}")
    db = open_db(tmp_path / "home")
    assert isinstance(db, Database) and db.backend == "sqlite" and db.path == tmp_path / "x" / "other.db"
    db.close()
    monkeypatch.delenv("FABCTL_DB_URL")
    db = open_db(tmp_path / "home")
    assert db.path == tmp_path / "home" / "fabctl.db" and db.path.exists()
    db.close()
