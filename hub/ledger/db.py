"""Ledger database: engine, sessions and migrations (SQLite by default, PostgreSQL by URL)."""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
DEFAULT_URL = "sqlite:///var/hub/hub.db"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def database_url() -> str:
    """``HUB_DATABASE_URL``, or a SQLite file under ./var/hub."""
    return os.environ.get("HUB_DATABASE_URL") or DEFAULT_URL


def engine(url: str | None = None) -> Engine:
    """One engine per URL per process (pre-pinged pool; SQLite with WAL and foreign keys)."""
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
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                         connect_args=connect_args, **options)


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
