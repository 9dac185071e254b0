"""Suite-wide settings: a private Airflow home, and the ledger on SQLite and PostgreSQL."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Before anything imports Airflow: a throwaway AIRFLOW_HOME and no example DAGs.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="hub-tests-airflow-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# Staff passwords: a cheaper argon2id profile than production's (RFC 9106 low-memory), for speed.
os.environ.setdefault("HUB_ARGON2_TIME_COST", "1")
os.environ.setdefault("HUB_ARGON2_MEMORY_KIB", "8192")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parent.parent / "dags"))

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from tests.support.databases import (  # noqa: E402
    MARIADB_ADMIN_URL, POSTGRES_ADMIN_URL, migrated_ledger)

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def postgres_ledger_database() -> Iterator[str]:
    with migrated_ledger(POSTGRES_ADMIN_URL, "hub_ledger_test") as url:
        yield url


def _truncate(url: str) -> None:
    from hub.ledger import db
    from hub.ledger.models import Base

    with db.engine(url).begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def mariadb_ledger_database() -> Iterator[str]:
    with migrated_ledger(MARIADB_ADMIN_URL, "hub_ledger_test") as url:
        yield url


def _emptied(url: str) -> str:
    """Every ledger row deleted, children first (MariaDB has no TRUNCATE ... CASCADE)."""
    from hub.ledger import db
    from hub.ledger.models import Base

    with db.engine(url).begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    return url


def _empty_ledger(request: pytest.FixtureRequest) -> str:
    """The migrated, empty ledger on the backend ``request.param`` names."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_ledger"))
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_ledger_database")
        _truncate(url)
        return str(url)
    return _emptied(request.getfixturevalue("mariadb_ledger_database"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty ledger on SQLite (a file) or PostgreSQL (127.0.0.1:5432)."""
    return _empty_ledger(request)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mariadb", marks=pytest.mark.mariadb)])
def any_ledger(request: pytest.FixtureRequest) -> str:
    """A migrated, empty ledger on SQLite, PostgreSQL or MariaDB (127.0.0.1:3306), for tests whose
    answers must not differ between the three."""
    return _empty_ledger(request)


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[str]:
    """A migrated SQLite ledger only (for tests whose logic does not depend on the backend)."""
    from hub.ledger import db

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    db.migrate(url)
    yield url
    db.engine(url).dispose()
