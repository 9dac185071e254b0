"""NorthgateConnector passes the shared connector contract against the Revenues simulator."""
from __future__ import annotations

import pytest

from connectors.testing import ConnectorContractSuite
from tests.connectors.revenues.harness import NorthgateHarness, RevenuesSim


@pytest.fixture
def contract_harness(revenues_sim: RevenuesSim) -> NorthgateHarness:
    return NorthgateHarness(revenues_sim)


class TestNorthgateContract(ConnectorContractSuite):
    """The standard promises, over real SOAP on a real socket."""
