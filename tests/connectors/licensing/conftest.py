"""Licensing back office on SQLite, PostgreSQL and MariaDB, and the contract harness."""
from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from connectors.base import Command, Outcome
from connectors.licensing.uniform import UniformConfig, UniformConnector
from simulators.licensing.backoffice import LicensingBackOffice
from tests.support.databases import MARIADB_ADMIN_URL, POSTGRES_ADMIN_URL, fresh_database

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", marks=pytest.mark.postgres, id="postgresql"),
    pytest.param("mariadb", marks=pytest.mark.mariadb, id="mariadb"),
]
CONNECTOR_LOGGER = "connectors.licensing.uniform"


@dataclass(frozen=True)
class LicensingDb:
    kind: str
    url: str


@pytest.fixture(scope="session", params=DATABASES)
def licensing_db(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[LicensingDb]:
    """A fresh licensing database (schema installed, demo premises seeded) for this session."""
    kind = request.param
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('licensing') / 'uniform.db'}"
        yield from _installed(LicensingDb(kind, url))
        return
    admin = POSTGRES_ADMIN_URL if kind == "postgresql" else MARIADB_ADMIN_URL
    with fresh_database(admin, "lic_test") as url:
        yield from _installed(LicensingDb(kind, url))


def _installed(db: LicensingDb) -> Iterator[LicensingDb]:
    office = LicensingBackOffice(db.url)
    office.seed_demo()
    office.close()
    yield db


class _RetrySignal(logging.Handler):
    """Counts the connector's 'transient failure ... retrying' log records."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.retries = threading.Semaphore(0)

    def emit(self, record: logging.LogRecord) -> None:
        if "transient failure" in record.getMessage():
            self.retries.release()


class UniformHarness:
    """The contract harness: real database, real row locks for transient faults."""

    def __init__(self, db: LicensingDb) -> None:
        self.db = db
        self.office = LicensingBackOffice(db.url)
        self.token = secrets.token_hex(3).upper()
        self.personal_values: list[str] = []
        self._connectors: list[UniformConnector] = []
        self._holders: list[threading.Thread] = []

    def config(self, **overrides: Any) -> UniformConfig:
        values: dict[str, Any] = {
            "url": self.db.url, "connect_timeout_seconds": 5, "timeout_seconds": 15,
            "lock_timeout_seconds": 1.0 if self.db.kind == "mariadb" else 0.5,
            "retry_attempts": 3, "retry_max_wait_seconds": 0.5}
        values.update(overrides)
        return UniformConfig(**values)

    def connector(self, **overrides: Any) -> UniformConnector:
        connector = UniformConnector(self.config(**overrides))
        self._connectors.append(connector)
        return connector

    def connector_with_bad_credentials(self) -> UniformConnector:
        if self.db.kind == "sqlite":
            url = "sqlite:////nonexistent-licensing-dir/uniform.db"
        else:
            url = make_url(self.db.url).set(username="no_such_licensing_user").render_as_string(
                hide_password=False)
        return self.connector(url=url)

    def applicant(self, n: int, born: str = "1980-02-03") -> dict[str, Any]:
        name, email = f"Testname{self.token}{n} Applicant", f"t{self.token.lower()}{n}@example.org"
        self.personal_values += [name, email]
        return {"name": name, "email": email, "date_of_birth": born,
                "address": {"line1": f"{n} Castle Way", "town": "EXAMPLETON",
                            "postcode": "EX1 1AQ"}}

    def make(self, n: int | str, operation: str, **payload: Any) -> Command:
        return Command(key=f"lic-{self.token}-{n}", system="licensing_uniform",
                       operation=operation, payload=payload, case_ref=f"CRM-{self.token}-{n}")

    def command(self, n: int) -> Command:
        return self.make(n, "licence.premises", applicant=self.applicant(n),
                         premises_ref="PR00001", activities=["sale_of_alcohol"],
                         payment_ref=f"PAY-{self.token}-{n}")

    def rejected_command(self) -> Command:
        return self.make("unknown-premises", "licence.premises", applicant=self.applicant(99),
                         premises_ref="PR09999", activities=["sale_of_alcohol"],
                         payment_ref=f"PAY-{self.token}-99")

    def effects(self) -> int:
        return self.office.applications_created()

    def fail_next(self, calls: int) -> None:
        """Hold the sequence row lock until the connector has failed ``calls`` times on it."""
        signal = _RetrySignal()
        logger = logging.getLogger(CONNECTOR_LOGGER)
        logger.addHandler(signal)
        locked = threading.Event()

        def hold() -> None:
            office = LicensingBackOffice(self.db.url)
            try:
                with office.sequence_locked():
                    locked.set()
                    for _ in range(calls):
                        signal.retries.acquire(timeout=30)
            finally:
                logger.removeHandler(signal)
                office.close()

        thread = threading.Thread(target=hold, name="licensing-lock-holder", daemon=True)
        thread.start()
        self._holders.append(thread)
        assert locked.wait(15), "could not take the sequence lock"

    def change_in_backoffice(self, outcome: Outcome) -> None:
        assert outcome.reference
        self.office.decide(outcome.reference, "GRANTED")

    def settle(self) -> None:
        """The licensing system answers synchronously."""

    def close(self) -> None:
        for thread in self._holders:
            thread.join(timeout=30)
        for connector in self._connectors:
            connector.close()
        self.office.close()


@pytest.fixture
def harness(licensing_db: LicensingDb) -> Iterator[UniformHarness]:
    h = UniformHarness(licensing_db)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def contract_harness(harness: UniformHarness) -> UniformHarness:
    return harness


@pytest.fixture
def tmp_sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'uniform.db'}"
