"""Ledger database: engine, sessions and migrations (SQLite by default, PostgreSQL by URL)."""
from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
DEFAULT_URL = "sqlite:///var/hub/hub.db"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def database_url() -> str:
    """``HUB_DATABASE_URL``, or a SQLite file under ./var/hub."""
    return os.environ.get("HUB_DATABASE_URL") or DEFAULT_URL


def engine(url: str | None = None) -> Engine:
    """One engine per URL per process (SQLite pre-pinged, with WAL and foreign keys; server
    databases pinged when a connection was idle, ``_ping_when_idle``)."""
    url = url or database_url()
    with _lock:
        if url not in _engines:
            _engines[url] = _create(url)
        return _engines[url]


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, connect_args={"timeout": 30}, pool_pre_ping=True)

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
        return eng
    connect_args = {"connect_timeout": 10} if url.startswith("postgresql") else {}
    options = {}
    if url.startswith(("postgresql://", "postgresql+psycopg2://")):
        # A batch's UPDATEs by primary key go in pages (psycopg2.extras.execute_batch), not one
        # round trip per row; INSERTs are multi-row VALUES either way.
        options = {"executemany_mode": "values_plus_batch", "executemany_batch_page_size": 500}
    eng = create_engine(url, pool_size=5, max_overflow=5, connect_args=connect_args, **options)
    _ping_when_idle(eng)
    return eng


#: A pooled server connection idle longer than this is pinged before use (``_ping_when_idle``).
IDLE_PING_SECONDS = 10.0


def _ping_when_idle(eng: Engine) -> None:
    """Pessimistic disconnect handling, without a round trip per transaction.

    ``pool_pre_ping`` sends ``SELECT 1`` on every checkout: one more round trip for every
    transaction (a dispatch batch has two). A connection used moments ago cannot have been
    dropped by an idle timeout, a failover or a restart unnoticed for long, so only one idle
    for more than ``IDLE_PING_SECONDS`` is pinged; a failed ping makes the pool discard it and
    connect afresh (``DisconnectionError``), as the pre-ping did. A server restarted within the
    window fails the one transaction that meets it (SQLAlchemy then drops the whole pool), and
    the task's retry goes on with new connections.
    """
    @event.listens_for(eng, "checkin")
    def _idle_from(_dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(eng, "checkout")
    def _ping(dbapi_conn, record, _proxy):  # type: ignore[no-untyped-def]
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= IDLE_PING_SECONDS:
            return
        try:
            _ping_connection(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("idle connection failed its ping") from exc


def _ping_connection(dbapi_conn) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("SELECT 1")
    finally:
        cursor.close()


def dispose_all() -> None:
    with _lock:
        for eng in _engines.values():
            eng.dispose()
        _engines.clear()


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str | None = None, revision: str = "head") -> None:
    """Bring the ledger schema up to ``revision`` (idempotent)."""
    url = url or database_url()
    with engine(url).begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        alembic_command.upgrade(cfg, revision)


@contextlib.contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A transaction: committed on success, rolled back on error."""
    factory = sessionmaker(engine(url), expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
