"""How the demo runs each simulator: its process, its Airflow Connection, its effects, a staff change."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import httpx

from demo.stack import Process, free_port


class DemoSystem:
    """One back-office system in the demo (a simulator standing in for the vendor's system)."""

    system_id: str = ""
    """The instance it stands in for (``demo_systems`` binds a class to each instance)."""
    conn_id: str = ""
    """The instance's Airflow Connection id (the instance id when empty)."""
    asynchronous = False
    """Answers come later (files): the demo polls status sync until they arrive."""

    def __init__(self, home: Path, secrets: dict[str, str]) -> None:
        self.home = home
        self.secrets = secrets
        self.port = free_port()

    @classmethod
    def secret_names(cls) -> list[str]:
        return [f"{cls.system_id}_password"]

    @property
    def password(self) -> str:
        return self.secrets[f"{self.system_id}_password"]

    def processes(self) -> list[Process]:
        return []

    def prepare(self) -> None:
        """Set up the back office's own storage before the run (systems without a server)."""

    def connection(self) -> dict[str, Any]:
        """The Airflow Connection (as AIRFLOW_CONN_<ID> JSON) the hub uses for this system."""
        raise NotImplementedError

    def effects(self) -> int:
        """Changes the simulator has applied (from its own state, not the hub's)."""
        raise NotImplementedError

    def staff_change(self, reference: str) -> None:
        """A back-office officer changes the record behind ``reference`` (for status sync)."""
        raise NotImplementedError

    def staff_changes_published(self) -> bool:
        """Whether the back office now shows its staff changes to the hub (batch systems lag)."""
        return True


class SoapSimulator(DemoSystem):
    module = ""
    env_prefix = ""
    conn_type = "http"

    def processes(self) -> list[Process]:
        return [Process(self.system_id, ["-m", self.module, "--host", "127.0.0.1",
                                         "--port", str(self.port),
                                         "--db", str(self.home / f"{self.system_id}.db"),
                                         "--seed-demo"],
                        port=self.port,
                        env={f"{self.env_prefix}_USERNAME": "hub", f"{self.env_prefix}_PASSWORD": self.password})]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection(self) -> dict[str, Any]:
        return {"conn_type": self.conn_type, "host": f"{self.base_url}/soap", "login": "hub",
                "password": self.password, "extra": {"timeout_seconds": 20}}

    def effects(self) -> int:
        return int(httpx.get(f"{self.base_url}/admin/stats", timeout=10).json()["effects"])

    def staff_change(self, reference: str) -> None:
        httpx.post(f"{self.base_url}/admin/requests/{reference}/status",
                   json={"status": "COMPLETED", "note": "Completed by back-office staff"},
                   timeout=10).raise_for_status()


class RevenuesDemo(SoapSimulator):
    system_id = "revenues_northgate"
    module = "simulators.revenues"
    env_prefix = "REVENUES_SIM"


class CrmDemo:
    """The CRM simulator, seeded with the sample cases."""

    def __init__(self, home: Path, secrets: dict[str, str]) -> None:
        self.home = home
        self.token = secrets["crm_token"]
        self.webhook_secret = secrets["crm_webhook_secret"]
        self.port = free_port()

    def process(self, webhook_url: str | None = None, *, seed: bool = True) -> Process:
        """The CRM (with the demo cases unless ``seed`` is false); with ``webhook_url`` it also
        pushes each new or changed case, signed."""
        argv = ["-m", "simulators.crm", "--host", "127.0.0.1", "--port", str(self.port),
                "--db", str(self.home / "crm.db"), *(["--seed-demo"] if seed else [])]
        env = {"CRM_SIM_TOKEN": self.token}
        if webhook_url:
            argv += ["--webhook-url", webhook_url]
            env["CRM_WEBHOOK_SECRET"] = self.webhook_secret
        return Process("crm", argv, port=self.port, env=env)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection(self) -> dict[str, Any]:
        return {"conn_type": "http", "host": self.base_url, "password": self.token,
                "extra": {"timeout_seconds": 10}}

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.base_url}/admin/stats", timeout=10).json()

    def updates(self, crm_id: str) -> list[dict[str, Any]]:
        """The write-backs the CRM applied to one case."""
        response = httpx.get(f"{self.base_url}/api/v1/cases/{crm_id}/updates", timeout=10,
                             headers={"Authorization": f"Bearer {self.token}"})
        response.raise_for_status()
        body = response.json()
        return body["updates"] if isinstance(body, dict) else body


class WasteDemo(SoapSimulator):
    system_id = "waste_bartec"
    module = "simulators.waste"
    env_prefix = "WASTE_SIM"


class BenefitsDemo(DemoSystem):
    """File exchange over SFTP with an in-process paramiko server; answers come on its next run."""

    system_id = "benefits_academy"
    asynchronous = True

    @property
    def root(self) -> Path:
        return self.home / "benefits_exchange"

    @property
    def known_hosts(self) -> Path:
        return self.home / "benefits_known_hosts"

    def processes(self) -> list[Process]:
        return [Process(self.system_id, ["-m", "simulators.benefits", "--host", "127.0.0.1",
                                         "--port", str(self.port), "--root", str(self.root),
                                         "--db", str(self.home / "benefits.db"), "--seed-demo",
                                         "--known-hosts-out", str(self.known_hosts),
                                         "--interval", "1"],
                        port=self.port,
                        env={"BENEFITS_SIM_USERNAME": "academy",
                             "BENEFITS_SIM_PASSWORD": self.password})]

    def connection(self) -> dict[str, Any]:
        return {"conn_type": "sftp", "host": "127.0.0.1", "port": self.port, "login": "academy",
                "password": self.password,
                "extra": {"known_hosts_path": str(self.known_hosts), "timeout_seconds": 20}}

    def _backoffice(self):  # type: ignore[no-untyped-def]
        from simulators.benefits.backoffice import BenefitsBackOffice

        return BenefitsBackOffice(self.root, self.home / "benefits.db")

    def effects(self) -> int:
        return self._backoffice().effects()

    def staff_change(self, reference: str) -> None:
        self._backoffice().staff_change(reference, status="RECALCULATED",
                                        note="Benefit recalculated by the benefits team")

    def staff_changes_published(self) -> bool:
        return self._backoffice().unpublished_staff_changes() == 0


class LicensingDemo(DemoSystem):
    """The licensing system's own database (SQLite here); the hub writes into its tables."""

    system_id = "licensing_uniform"

    @classmethod
    def secret_names(cls) -> list[str]:
        return []

    @property
    def url(self) -> str:
        return f"sqlite:///{self.home / 'licensing.db'}"

    @contextlib.contextmanager
    def _backoffice(self):  # type: ignore[no-untyped-def]
        from simulators.licensing.backoffice import LicensingBackOffice

        backoffice = LicensingBackOffice(self.url)
        try:
            yield backoffice
        finally:
            backoffice.close()

    def prepare(self) -> None:
        with self._backoffice() as backoffice:
            backoffice.install()
            backoffice.seed_demo()

    def connection(self) -> dict[str, Any]:
        return {"conn_type": "generic", "extra": {"url": self.url, "timeout_seconds": 20}}

    def effects(self) -> int:
        with self._backoffice() as backoffice:
            return backoffice.applications_created()

    def staff_change(self, reference: str) -> None:
        with self._backoffice() as backoffice:
            backoffice.decide(reference, "GRANTED", note="Granted by the licensing team")


class KitSimulator(DemoSystem):
    """A simulator on ``simulators/kit.py``: its admin API gives effects and staff changes."""

    module = ""
    env_prefix = ""
    staff_status = "COMPLETED"

    def processes(self) -> list[Process]:
        return [Process(self.system_id, ["-m", self.module, "--host", "127.0.0.1",
                                         "--port", str(self.port),
                                         "--db", str(self.home / f"{self.system_id}.db"),
                                         "--seed-demo"],
                        port=self.port, env={f"{self.env_prefix}_CLIENT_ID": "hub",
                                             f"{self.env_prefix}_CLIENT_SECRET": self.password})]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection(self) -> dict[str, Any]:
        return {"conn_type": "http", "host": self.base_url, "login": "hub",
                "password": self.password, "extra": {"timeout_seconds": 20}}

    def effects(self) -> int:
        return int(httpx.get(f"{self.base_url}/admin/stats", timeout=10).json()["effects"])

    def staff_change(self, reference: str) -> None:
        httpx.post(f"{self.base_url}/admin/records/{reference}/status",
                   json={"status": self.staff_status, "note": "Completed by back-office staff"},
                   timeout=10).raise_for_status()


class HousingDemo(KitSimulator):
    system_id = "housing_repairs"
    module = "simulators.housing"
    env_prefix = "HOUSING_SIM"


SYSTEMS: list[type[DemoSystem]] = [RevenuesDemo, BenefitsDemo, LicensingDemo, WasteDemo,
                                   HousingDemo]
"""A simulator per shipped connector (by the connector's system id)."""


def demo_systems() -> list[type[DemoSystem]]:
    """One demo system per instance in the instances file (``HUB_INSTANCES``) whose connector
    has a simulator here, bound to that instance: its own simulator process and state, named
    after the instance, behind the instance's own Connection. Two instances of one connector
    (domestic and trade waste) get two simulators."""
    from connectors import catalog

    by_connector = {cls.system_id: cls for cls in SYSTEMS}
    bound: list[type[DemoSystem]] = []
    for system_id, found in catalog.SYSTEMS.items():
        cls = by_connector.get(found.connector_id)
        if cls is None:
            continue
        if (system_id, found.conn_id) != (cls.system_id, cls.conn_id or cls.system_id):
            cls = type(cls.__name__, (cls,), {"system_id": system_id, "conn_id": found.conn_id})
        bound.append(cls)
    return bound


def airflow_env(crm: CrmDemo, systems: list[DemoSystem]) -> dict[str, str]:
    env = {"AIRFLOW_CONN_CRM": json.dumps(crm.connection())}
    for system in systems:
        conn_id = system.conn_id or system.system_id
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(system.connection())
    return env
