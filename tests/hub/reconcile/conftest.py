"""The reconciliation tests that use a ledger run on SQLite, PostgreSQL and MariaDB."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import MARIADB_ADMIN_URL, migrated_ledger


@pytest.fixture(scope="session")
def mariadb_ledger_database() -> Iterator[str]:
    with migrated_ledger(MARIADB_ADMIN_URL, "hub_ledger_recon") as url:
        yield url


def _emptied(url: str) -> str:
    from hub.ledger import db
    from hub.ledger.models import Base

    with db.engine(url).begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mariadb", marks=pytest.mark.mariadb)])
def ledger_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated, empty ledger on SQLite (a file), PostgreSQL or MariaDB (127.0.0.1:3306)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_ledger")
    elif request.param == "postgresql":
        from tests.conftest import _truncate

        url = request.getfixturevalue("postgres_ledger_database")
        _truncate(url)
        yield url
    else:
        yield _emptied(request.getfixturevalue("mariadb_ledger_database"))
