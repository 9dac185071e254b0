"""The reconciliation tests that use a ledger run on SQLite, PostgreSQL and MariaDB."""
from __future__ import annotations

import pytest


@pytest.fixture
def ledger_url(any_ledger: str) -> str:
    """tests/conftest.py's ``any_ledger``: a migrated, empty ledger on each of the three."""
    return any_ledger
