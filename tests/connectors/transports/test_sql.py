"""The SQL transport on real servers: timeouts applied, and every failure classified."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from connectors.errors import ConnectorError, PermanentError, Rejected, TransientError
from connectors.transports.sql import classified, make_engine, safe_url
from tests.support.databases import MARIADB_ADMIN_URL, POSTGRES_ADMIN_URL, fresh_database


@pytest.fixture(scope="module", params=[
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", marks=pytest.mark.postgres, id="postgresql"),
    pytest.param("mariadb", marks=pytest.mark.mariadb, id="mariadb")])
def database(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(kind, url) of a fresh database with table ``t`` holding rows 1 and 2."""
    kind = request.param
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sql') / 'transport.db'}"
        _prepare(url)
        yield kind, url
        return
    with fresh_database(POSTGRES_ADMIN_URL if kind == "postgresql" else MARIADB_ADMIN_URL,
                        "sql_test") as url:
        _prepare(url)
        yield kind, url


def _prepare(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(40) NOT NULL UNIQUE)"))
        conn.execute(text("INSERT INTO t (id, v) VALUES (1, 'one'), (2, 'two')"))
    engine.dispose()


def _fails_with(engine: Engine, sql: str, **params: object) -> ConnectorError:
    with pytest.raises(ConnectorError) as info:
        with classified("test call"), engine.begin() as conn:
            conn.execute(text(sql), params)
    assert info.value.__cause__ is not None
    return info.value


def test_backend_timeouts_are_set_on_each_connection(database: tuple[str, str]) -> None:
    kind, url = database
    engine = make_engine(url, lock_timeout=2, statement_timeout=7, connect_timeout=3)
    try:
        with engine.connect() as conn:
            if kind == "postgresql":
                assert conn.execute(text("SHOW lock_timeout")).scalar() == "2s"
                assert conn.execute(text("SHOW statement_timeout")).scalar() == "7s"
            elif kind == "mariadb":
                lock, stmt = conn.execute(text(
                    "SELECT @@innodb_lock_wait_timeout, @@max_statement_time")).one()
                assert int(lock) == 2 and float(stmt) == 7.0
        assert engine.pool._pre_ping  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_password_comes_from_the_argument_and_stays_out_of_logs(database: tuple[str, str]) -> None:
    kind, url = database
    if kind == "sqlite":
        pytest.skip("SQLite has no password")
    engine = make_engine(url, password="pw-from-connection")
    assert engine.url.password == "pw-from-connection"
    assert "pw-from-connection" not in safe_url(engine.url)
    engine.dispose()


def test_duplicate_is_rejected_without_the_value(database: tuple[str, str]) -> None:
    kind, url = database
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (id, v) VALUES (9, 'secret-value-9')"))
    error = _fails_with(engine, "INSERT INTO t (id, v) VALUES (10, :v)", v="secret-value-9")
    engine.dispose()
    assert isinstance(error, Rejected)
    assert "secret-value-9" not in error.message
    assert error.code == {"sqlite": "integrity", "postgresql": "23505", "mariadb": "1062"}[kind]
    if kind == "sqlite":
        assert error.field == "v"


def test_unknown_table_is_permanent(database: tuple[str, str]) -> None:
    _kind, url = database
    engine = make_engine(url)
    error = _fails_with(engine, "SELECT * FROM no_such_table")
    engine.dispose()
    assert isinstance(error, PermanentError)


def test_lock_timeout_is_transient(database: tuple[str, str]) -> None:
    kind, url = database
    holder = make_engine(url)
    waiter = make_engine(url, lock_timeout=1 if kind == "mariadb" else 0.3)
    try:
        with holder.connect() as held:
            held.execute(text("UPDATE t SET v = v WHERE id = 1"))
            error = _fails_with(waiter, "UPDATE t SET v = 'uno' WHERE id = 1")
            held.rollback()
    finally:
        holder.dispose()
        waiter.dispose()
    assert isinstance(error, TransientError)
    assert error.code == {"sqlite": "SQLITE_BUSY", "postgresql": "55P03", "mariadb": "1205"}[kind]


def test_real_deadlock_is_transient(database: tuple[str, str]) -> None:
    if database[0] == "sqlite":
        pytest.skip("SQLite has a single writer: it reports 'database is locked', not deadlocks")
    engine = make_engine(database[1], lock_timeout=10)
    errors: list[BaseException] = []
    a, b = engine.connect(), engine.connect()
    try:
        a.execute(text("UPDATE t SET v = v WHERE id = 1"))
        b.execute(text("UPDATE t SET v = v WHERE id = 2"))

        def a_wants_2() -> None:
            try:
                with classified("a"):
                    a.execute(text("UPDATE t SET v = v WHERE id = 2"))
            except ConnectorError as exc:
                errors.append(exc)

        thread = threading.Thread(target=a_wants_2)
        thread.start()
        try:
            with classified("b"):
                threading.Event().wait(0.3)
                b.execute(text("UPDATE t SET v = v WHERE id = 1"))
        except ConnectorError as exc:
            errors.append(exc)
            b.rollback()
        thread.join(15)
        a.rollback()
        b.rollback()
    finally:
        a.close()
        b.close()
        engine.dispose()
    assert len(errors) == 1 and isinstance(errors[0], TransientError)
    assert errors[0].code in {"40P01", "1213"}


def test_connection_refused_is_transient() -> None:
    for url in ("postgresql+psycopg2://postgres@127.0.0.1:1/test",
                "mysql+pymysql://root@127.0.0.1:1/test"):
        engine = make_engine(url, connect_timeout=2)
        with pytest.raises(TransientError), classified("connect"), engine.connect():
            pass
        engine.dispose()


@pytest.mark.parametrize("url", [
    pytest.param("postgresql+psycopg2://no_such_role_x@127.0.0.1:5432/test",
                 marks=pytest.mark.postgres, id="pg-role"),
    pytest.param("postgresql+psycopg2://postgres@127.0.0.1:5432/no_such_db_x",
                 marks=pytest.mark.postgres, id="pg-database"),
    pytest.param("mysql+pymysql://no_such_user_x@127.0.0.1:3306/test",
                 marks=pytest.mark.mariadb, id="mariadb-user"),
    pytest.param("mysql+pymysql://root@127.0.0.1:3306/no_such_db_x",
                 marks=pytest.mark.mariadb, id="mariadb-database"),
    pytest.param("sqlite:////no-such-directory-x/db.sqlite", id="sqlite-path"),
])
def test_credentials_and_unknown_databases_are_permanent(url: str) -> None:
    engine = make_engine(url, connect_timeout=3)
    with pytest.raises(PermanentError) as info, classified("connect"), engine.connect():
        pass
    engine.dispose()
    assert info.value.code


def test_bad_url_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(PermanentError):
        make_engine("not a url")
    with pytest.raises(PermanentError):
        make_engine("nosuchdialect://x/y")
