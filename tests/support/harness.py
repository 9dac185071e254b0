"""The common parts of a contract harness, for simulators built on ``simulators/kit.py``.

A connector's contract test subclasses ``SimulatorHarness`` and adds only what is its own: how to
build the connector (good and bad credentials), one accepted command and one refused command.
Serving the simulator in a thread, admin calls, the effects count, fault switches, the clock and
the staff change come from here, through the kit's admin API::

    @pytest.fixture(scope="module")
    def sim_url(tmp_path_factory):
        with MyHarness.serve(create_app(...)) as url:
            yield url

    @pytest.fixture
    def contract_harness(sim_url):
        return MyHarness(sim_url)

    class TestMyContract(ConnectorContractSuite): ...

The rules a harness must keep are in ``connectors/testing.py``'s docstrings.
"""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from connectors.base import Command, Connector, Outcome
from simulators.kit import serve_in_thread


class SimulatorHarness:
    """A ``ContractHarness`` minus the system's own parts: ``connector_class`` and ``settings()``
    (its ``Config`` values for this simulator), ``bad_credentials`` (overrides that the back office
    refuses), ``command``, ``rejected_command`` and ``personal_values``."""

    system_id: ClassVar[str]
    connector_class: ClassVar[type[Connector]]
    bad_credentials: ClassVar[Mapping[str, Any]] = {"password": "wrong-password"}
    test_settings: ClassVar[Mapping[str, Any]] = {"timeout_seconds": 5,
                                                   "retry_max_wait_seconds": 0.3}
    """Short timeouts and waits for tests, under ``settings()`` and any overrides."""
    staff_status: ClassVar[str] = "COMPLETED"
    """The status a back-office officer sets in ``change_in_backoffice``."""
    fault_mode: ClassVar[str | None] = None
    """The simulator's transient fault for ``fail_next`` (None: its first mode)."""
    personal_values: Sequence[str] = ()

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.prefix = uuid.uuid4().hex[:10]
        """Distinct per harness: keys and case references never collide between tests."""

    @staticmethod
    @contextlib.contextmanager
    def serve(app: Any) -> Iterator[str]:
        """Serve the simulator on a free port in a thread; yields its base URL."""
        with serve_in_thread(app) as url:
            yield url

    @classmethod
    def fixtures(cls, create_app: Callable[[Path], Any]) -> tuple[Any, Any]:
        """Two pytest fixtures for a contract test module: the simulator ``create_app(tmp_dir)``
        served once per module, and ``contract_harness`` (a fresh harness per test)::

            served, contract_harness = MyHarness.fixtures(lambda tmp: create_app(tmp / "s.db"))
        """
        served_name = f"_served_{cls.__name__}"

        @pytest.fixture(scope="module", name=served_name)
        def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
            with cls.serve(create_app(tmp_path_factory.mktemp(cls.__name__.lower()))) as url:
                yield url

        @pytest.fixture(name="contract_harness")
        def harness(request: pytest.FixtureRequest) -> SimulatorHarness:
            return cls(request.getfixturevalue(served_name))

        return served, harness

    # -- admin API ---------------------------------------------------------------------------
    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def effects(self) -> int:
        return int(self.admin("GET", "/admin/stats")["effects"])

    def fail_next(self, calls: int, mode: str | None = None, **options: Any) -> None:
        self.admin("POST", "/admin/faults",
                   json={"count": calls, "mode": mode or self.fault_mode, **options})

    def clear_faults(self) -> None:
        self.admin("DELETE", "/admin/faults")

    def change_in_backoffice(self, outcome: Outcome, status: str | None = None,
                             note: str = "Changed by back-office staff") -> None:
        self.admin("POST", f"/admin/records/{outcome.reference}/status",
                   json={"status": status or self.staff_status, "note": note})

    def now(self) -> datetime:
        """The back office's clock."""
        return datetime.fromisoformat(self.admin("GET", "/admin/clock")["now"])

    def move_clock(self, offset_seconds: float) -> None:
        self.admin("POST", "/admin/clock", json={"offset_seconds": offset_seconds})

    def settle(self) -> None:
        """Synchronous back offices have nothing to settle."""

    # -- helpers for subclasses --------------------------------------------------------------
    def key(self, n: int) -> str:
        return f"{self.prefix}-{n}"

    def make_command(self, n: int, operation: str, payload: dict[str, Any]) -> Command:
        return Command(key=self.key(n), system=self.system_id, operation=operation,
                       payload=payload, case_ref=f"CRM-{self.prefix}-{n}")

    def settings(self) -> dict[str, Any]:
        """The connector's ``Config`` values for this simulator (``self.url`` is its address)."""
        raise NotImplementedError

    def connector(self, **overrides: Any) -> Connector:
        values = {**self.test_settings, **self.settings(), **overrides}
        return self.connector_class(self.connector_class.Config(**values))

    def connector_with_bad_credentials(self) -> Connector:
        return self.connector(**self.bad_credentials)
