"""The Revenues simulator on a real socket, and a contract harness for NorthgateConnector."""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from connectors.base import Command, Outcome
from connectors.revenues.northgate import NorthgateConfig, NorthgateConnector
from simulators.revenues.app import create_app
from simulators.serving import serve_in_thread

USERNAME = "hub-revenues"
PASSWORD = "s3cret-revenues"
SYSTEM = "revenues_northgate"


@dataclass
class RevenuesSim:
    """A running Revenues simulator and its admin endpoints."""

    url: str

    @property
    def endpoint(self) -> str:
        return f"{self.url}/soap"

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/admin/stats", timeout=5).raise_for_status().json()

    def effects(self) -> int:
        return int(self.stats()["effects"])

    def arm(self, count: int, mode: str = "server_fault", delay_seconds: float | None = None) -> None:
        httpx.post(f"{self.url}/admin/faults", timeout=5,
                   json={"count": count, "mode": mode, "delay_seconds": delay_seconds}
                   ).raise_for_status()

    def set_status(self, reference: str, status: str, note: str | None = None) -> dict[str, Any]:
        return httpx.post(f"{self.url}/admin/requests/{reference}/status", timeout=5,
                          json={"status": status, "note": note}).raise_for_status().json()

    def account(self, account_ref: str) -> dict[str, Any]:
        return httpx.get(f"{self.url}/admin/accounts/{account_ref}", timeout=5
                         ).raise_for_status().json()

    def connector(self, *, password: str = PASSWORD, timeout: float = 2.0,
                  attempts: int = 3) -> NorthgateConnector:
        return NorthgateConnector(NorthgateConfig(
            endpoint=self.endpoint, username=USERNAME, password=password,
            timeout_seconds=timeout, retry_attempts=attempts, retry_max_wait_seconds=0.1))


@contextlib.contextmanager
def running_simulator(db_path: Path) -> Iterator[RevenuesSim]:
    app = create_app(db_path, username=USERNAME, password=PASSWORD, seed_demo=True,
                     fault_delay_seconds=2.0)
    with serve_in_thread(app) as url:
        yield RevenuesSim(url)


def new_key(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def command(operation: str, payload: dict[str, Any], *, key: str | None = None,
            maybe_sent: bool = False) -> Command:
    key = key or new_key(operation)
    return Command(key=key, system=SYSTEM, operation=operation, payload=payload,
                   case_ref=f"CRM-{key[-6:]}", maybe_sent=maybe_sent)


def direct_debit(account_ref: str, n: int) -> tuple[Command, list[str]]:
    """A direct debit command and the personal values it carries."""
    holder, number = f"Quentin Zephyrine{n}", f"7{n:07d}"
    payload = {"account_ref": account_ref, "account_holder": holder, "sort_code": "309634",
               "account_number": number, "payment_day": 15}
    return command("ctax.direct_debit", payload), [holder, number, "309634"]


@dataclass
class NorthgateHarness:
    """ContractHarness for NorthgateConnector against the simulator (direct debit commands)."""

    sim: RevenuesSim
    personal_values: list[str] = field(default_factory=list)
    _commands: dict[int, Command] = field(default_factory=dict)

    def connector(self) -> NorthgateConnector:
        return self.sim.connector()

    def connector_with_bad_credentials(self) -> NorthgateConnector:
        return self.sim.connector(password="not-the-password")

    def command(self, n: int) -> Command:
        if n not in self._commands:
            cmd, personal = direct_debit(f"CT{n:08d}", n)
            self._commands[n] = cmd
            self.personal_values.extend(personal)
        return self._commands[n]

    def rejected_command(self) -> Command:
        cmd, personal = direct_debit("CT99999901", 99)
        self.personal_values.extend(personal)
        return cmd

    def effects(self) -> int:
        return self.sim.effects()

    def fail_next(self, calls: int) -> None:
        self.sim.arm(calls, "server_fault")

    def change_in_backoffice(self, outcome: Outcome) -> None:
        assert outcome.reference
        self.sim.set_status(outcome.reference, "REVIEWED", "checked by the revenues team")

    def settle(self) -> None:
        """Synchronous back office: nothing to wait for."""


def move(account_ref: str, *, new_property_ref: str | None = "P000150",
         moved_on: date = date(2026, 6, 1), key: str | None = None,
         maybe_sent: bool = False) -> Command:
    payload: dict[str, Any] = {"account_ref": account_ref, "moved_on": moved_on.isoformat()}
    if new_property_ref:
        payload["new_property_ref"] = new_property_ref
    else:
        payload["forwarding_address"] = {"line1": "12 Quillfeather Row", "town": "Elsewhere",
                                         "postcode": "ZE2 9QQ"}
    return command("ctax.change_of_address", payload, key=key, maybe_sent=maybe_sent)
