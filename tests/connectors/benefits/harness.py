"""A contract harness for AcademyConnector against a real sshd and the Benefits back office on disk."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.base import Command, Outcome
from connectors.benefits.academy import AcademyConfig, AcademyConnector
from simulators.benefits.backoffice import BenefitsBackOffice
from simulators.benefits.sample import UNKNOWN_CLAIM, claims
from tests.support.sshd import SshServer

SYSTEM = "benefits_academy"


def make_exchange(sshd: SshServer, root: Path, **backoffice_options: Any) -> BenefitsBackOffice:
    """A fresh exchange folder (the SFTP root for new sessions) and a seeded back office."""
    backoffice = BenefitsBackOffice(root / "exchange", root / "backoffice.db", **backoffice_options)
    backoffice.setup()
    backoffice.seed(claims())
    sshd.use_root(backoffice.root)
    return backoffice


def member_name(n: int) -> str:
    return f"Morwenna Testperson{n:03d}"


@dataclass
class AcademyHarness:
    sshd: SshServer
    backoffice: BenefitsBackOffice
    personal_values: list[str] = field(default_factory=list)
    opened: list[AcademyConnector] = field(default_factory=list)
    """Connectors made here (each keeps its SSH connection open until closed)."""

    def config(self, **overrides: Any) -> AcademyConfig:
        values: dict[str, Any] = dict(
            host=self.sshd.host, port=self.sshd.port, username=self.sshd.username,
            private_key_path=str(self.sshd.client_key_path),
            known_hosts_path=str(self.sshd.known_hosts_path),
            timeout_seconds=5, retry_attempts=3, retry_max_wait_seconds=0.3)
        values.update(overrides)
        return AcademyConfig(**values)

    def connector(self, **overrides: Any) -> AcademyConnector:
        connector = AcademyConnector(self.config(**overrides))
        self.opened.append(connector)
        return connector

    def close(self) -> None:
        for connector in self.opened:
            connector.close()

    def connector_with_bad_credentials(self) -> AcademyConnector:
        return self.connector(private_key_path=str(self.sshd.stranger_key_path))

    def command(self, n: int, claim: int | None = None) -> Command:
        name = member_name(n)
        self.personal_values.append(name)
        return Command(
            key=f"cmd-benefits-{n:04d}", system=SYSTEM, operation="hb.household_change",
            case_ref=f"CRM-{n:06d}",
            payload={"claim_ref": f"HB{claim or 1 + n % 25:07d}", "effective_from": "2026-02-02",
                     "action": "joined", "relationship": "partner", "member_name": name,
                     "member_date_of_birth": "1990-05-17"})

    def rejected_command(self) -> Command:
        line1 = "17 Pennywhistle Row"
        self.personal_values.append(line1)
        return Command(
            key="cmd-benefits-rejected", system=SYSTEM, operation="hb.new_address",
            case_ref="CRM-999999",
            payload={"claim_ref": UNKNOWN_CLAIM, "moved_on": "2026-03-16",
                     "new_address": {"line1": line1, "town": "EXAMPLETON", "postcode": "EX1 1HQ"},
                     "weekly_rent": "101.50"})

    def effects(self) -> int:
        return self.backoffice.effects()

    def fail_next(self, calls: int) -> None:
        self.sshd.fail_next(calls)

    def change_in_backoffice(self, outcome: Outcome) -> None:
        assert outcome.reference
        self.backoffice.staff_change(outcome.reference, "RECALCULATED", "benefit recalculated",
                                     record_id=outcome.key)
        self.backoffice.process()

    def settle(self) -> None:
        self.backoffice.process()
