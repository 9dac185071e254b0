"""The shared connector contract, on SQLite, PostgreSQL and MariaDB."""
from __future__ import annotations

from connectors.testing import ConnectorContractSuite


class TestUniformContract(ConnectorContractSuite):
    """Runs every contract check against the licensing simulator's database."""
