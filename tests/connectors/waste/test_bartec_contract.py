"""The shared connector contract, against the waste simulator over a real socket."""
from __future__ import annotations

from connectors.testing import ConnectorContractSuite


class TestBartecContract(ConnectorContractSuite):
    """Runs every contract check with the ``contract_harness`` from conftest."""
