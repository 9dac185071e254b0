"""The shared connector contract, against the housing repairs simulator over a real socket."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.base import Command
from connectors.housing.repairs import RepairsConnector
from connectors.testing import ConnectorContractSuite
from simulators.housing import sample
from simulators.housing.app import create_app
from tests.support.harness import SimulatorHarness

CLIENT_ID, SECRET = "hub-client", "repairs-s3cret"


class RepairsHarness(SimulatorHarness):
    system_id = "housing_repairs"
    connector_class = RepairsConnector
    bad_credentials = {"client_secret": "wrong-secret"}
    personal_values = ("Morgan Testperson-Hughes", "07700 900123", "Key safe code 4321")

    def settings(self) -> dict[str, object]:
        return {"base_url": self.url, "client_id": CLIENT_ID, "client_secret": SECRET,
                "timeout_seconds": 2}

    def command(self, n: int, **payload: object) -> Command:
        name, phone, access = self.personal_values
        return self.make_command(n, "housing.repair_request", {
            "uprn": sample.uprn(1 + n % sample.PROPERTIES), "priority": "URGENT",
            "trade": "PLUMBING", "description": "Leak under the kitchen sink", "room": "kitchen",
            "access_notes": access, "contact_name": name, "contact_phone": phone, **payload})

    def rejected_command(self) -> Command:
        return self.command(999, uprn=sample.PRIVATE_UPRN)


@pytest.fixture(scope="module")
def housing_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(tmp_path_factory.mktemp("housing") / "housing.db", client_id=CLIENT_ID,
                     client_secret=SECRET, seed_demo=True)
    with RepairsHarness.serve(app) as url:
        yield url


@pytest.fixture
def contract_harness(housing_url: str) -> RepairsHarness:
    return RepairsHarness(housing_url)


class TestRepairsContract(ConnectorContractSuite):
    """Runs every contract check with the harness above."""
