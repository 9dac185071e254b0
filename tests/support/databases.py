"""Throwaway databases on the real servers this machine runs (PostgreSQL, MariaDB)."""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import sqlalchemy as sa

POSTGRES_ADMIN_URL = os.environ.get("HUB_TEST_POSTGRES_URL",
                                    "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
MARIADB_ADMIN_URL = os.environ.get("HUB_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str = "hub_test") -> Iterator[str]:
    """Create an empty database on the server behind ``admin_url``; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    url = sa.engine.make_url(admin_url).set(database=name)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if admin.dialect.name == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@contextlib.contextmanager
def migrated_ledger(admin_url: str, prefix: str) -> Iterator[str]:
    """A fresh database (as ``fresh_database``) with the ledger's migrations applied; the hub's
    engine for it is disposed before the database is dropped."""
    from hub.ledger import db

    with fresh_database(admin_url, prefix) as url:
        db.migrate(url)
        yield url
        db.engine(url).dispose()
