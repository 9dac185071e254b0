"""The waste simulator on a real socket, and a contract harness wired to it."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from connectors.base import Command, Outcome
from connectors.waste.bartec import BartecConfig, BartecConnector
from simulators.serving import serve_in_thread
from simulators.waste import sample
from simulators.waste.app import create_app
from simulators.waste.store import local_now

USERNAME, PASSWORD = "hub-api", "waste-s3cret"


@dataclass
class WasteSim:
    url: str

    @property
    def endpoint(self) -> str:
        return f"{self.url}/soap"

    def admin(self, method: str, path: str, **kwargs: object) -> dict:
        response = httpx.request(method, f"{self.url}{path}", timeout=5, **kwargs)  # type: ignore[arg-type]
        response.raise_for_status()
        return response.json()

    def config(self, **overrides: object) -> BartecConfig:
        values: dict[str, object] = {"endpoint": self.endpoint, "username": USERNAME,
                                     "password": PASSWORD, "timeout_seconds": 5,
                                     "retry_attempts": 3, "retry_max_wait_seconds": 0.3}
        values.update(overrides)
        return BartecConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def waste_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WasteSim]:
    db = Path(tmp_path_factory.mktemp("waste")) / "waste.db"
    app = create_app(db, username=USERNAME, password=PASSWORD, seed_demo=True)
    with serve_in_thread(app) as url:
        yield WasteSim(url)


def today() -> date:
    return local_now().date()


def open_slots() -> list[date]:
    return [d for d, capacity in sample.bulky_slots(today()) if capacity]


def full_slot() -> date:
    return next(d for d, capacity in sample.bulky_slots(today()) if capacity == 0)


def last_collection(premises: dict) -> date:
    back = (today().weekday() - premises["collection_weekday"]) % 7 or 7
    return today() - timedelta(days=back)


@dataclass
class WasteHarness:
    sim: WasteSim
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    personal_values: list[str] = field(default_factory=lambda: ["Ada Testperson-Lovelace",
                                                                "07700 900461"])

    def connector(self, **overrides: object) -> BartecConnector:
        return BartecConnector(self.sim.config(**overrides))

    def connector_with_bad_credentials(self) -> BartecConnector:
        return BartecConnector(self.sim.config(password="wrong-password"))

    def bulky(self, n: int, **payload: object) -> Command:
        slots = open_slots()
        body: dict[str, object] = {
            "uprn": sample.uprn(1 + n % sample.PREMISES), "slot_date": slots[n % len(slots)],
            "items": [{"name": "Sofa", "quantity": 1}, {"name": "Mattress", "quantity": 2}],
            "contact_name": self.personal_values[0], "contact_phone": self.personal_values[1],
            "note": "Items by the side gate"}
        body.update(payload)
        return Command(key=f"{self.prefix}-{n}", system="waste_bartec",
                       operation="waste.bulky_collection", payload=body, case_ref=f"CRM-{n:06d}")

    def missed_bin(self, n: int, **payload: object) -> Command:
        premises = sample.premises()[n % sample.PREMISES]
        body: dict[str, object] = {"uprn": premises["uprn"], "bin_type": "refuse",
                                   "collection_date": last_collection(premises)}
        body.update(payload)
        return Command(key=f"{self.prefix}-m{n}", system="waste_bartec",
                       operation="waste.missed_bin", payload=body, case_ref=f"CRM-{n:06d}")

    def command(self, n: int) -> Command:
        return self.bulky(n) if n % 2 == 0 else self.missed_bin(n)

    def rejected_command(self) -> Command:
        return self.bulky(999, uprn=sample.UNKNOWN_UPRN)

    def effects(self) -> int:
        return int(self.sim.admin("GET", "/admin/stats")["effects"])

    def fail_next(self, calls: int) -> None:
        self.sim.admin("POST", "/admin/faults", json={"count": calls, "mode": "server_fault"})

    def change_in_backoffice(self, outcome: Outcome) -> None:
        self.sim.admin("POST", f"/admin/requests/{outcome.reference}/status",
                       json={"status": "COMPLETED", "note": "Collected by crew 2"})

    def settle(self) -> None:
        """Bartec answers synchronously."""


@pytest.fixture
def contract_harness(waste_sim: WasteSim) -> WasteHarness:
    return WasteHarness(waste_sim)


@pytest.fixture
def harness(waste_sim: WasteSim) -> WasteHarness:
    return WasteHarness(waste_sim)
