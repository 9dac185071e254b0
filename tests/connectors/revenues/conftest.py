from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.connectors.revenues.harness import RevenuesSim, running_simulator


@pytest.fixture(scope="package")
def revenues_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RevenuesSim]:
    """One Revenues simulator (seeded with the demo world) for this package's tests."""
    with running_simulator(tmp_path_factory.mktemp("revenues") / "revenues.db") as sim:
        yield sim
