"""The real stack's databases: created when missing on the server it is given, used as given when
URLs are set, and a clear error naming what to do when no server answers."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from demo import postgres
from demo.stack import free_port
from tests.support.databases import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.postgres


def exists(name: str) -> bool:
    engine = sa.create_engine(POSTGRES_ADMIN_URL, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return bool(conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                    {"n": name}))
    finally:
        engine.dispose()


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch):
    name = f"hub_pgt_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("HUB_POSTGRES_URL", POSTGRES_ADMIN_URL)
    monkeypatch.delenv("HUB_AIRFLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    yield name
    for suffix in ("airflow", "ledger"):
        postgres.drop_database(POSTGRES_ADMIN_URL, f"{name}_{suffix}")


def test_the_stack_databases_are_created_once_and_dropped_by_name(prefix: str) -> None:
    first = postgres.stack_databases(prefix)
    assert exists(f"{prefix}_airflow") and exists(f"{prefix}_ledger")
    assert sa.engine.make_url(first.airflow).database == f"{prefix}_airflow"
    assert sa.engine.make_url(first.ledger).database == f"{prefix}_ledger"
    assert postgres.stack_databases(prefix) == first, "a second start finds them"
    assert postgres.main(["drop", prefix]) == 0
    assert not exists(f"{prefix}_airflow") and not exists(f"{prefix}_ledger")


def test_urls_given_are_used_as_they_are(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_AIRFLOW_DATABASE_URL", "postgresql+psycopg2://af@db.example/airflow")
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql+psycopg2://hub@db.example/ledger")
    found = postgres.stack_databases(prefix)
    assert (found.airflow, found.ledger, found.created) == (
        "postgresql+psycopg2://af@db.example/airflow", "postgresql+psycopg2://hub@db.example/ledger", ())
    assert not exists(f"{prefix}_airflow")


def test_no_server_is_a_clear_error_that_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_POSTGRES_URL", f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/x")
    monkeypatch.delenv("HUB_AIRFLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    with pytest.raises(postgres.NoServer, match="make postgresql"):
        postgres.stack_databases("hub_nothing")
    assert postgres.main(["answers"]) == 1


def test_database_names_are_checked_before_they_reach_sql() -> None:
    with pytest.raises(ValueError, match="lower-case"):
        postgres.ensure_database(POSTGRES_ADMIN_URL, 'x"; DROP DATABASE test; --')
