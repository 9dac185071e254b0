"""A connector whose answers a test scripts, for exercising the hub's state machine.

The back-office behaviour itself is tested against the simulators; here we need exact control over
outcomes (including ones a simulator makes hard to provoke, such as a task dying mid-batch).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from connectors.base import Command, Connector, ConnectorConfig, Outcome, OutcomeStatus, Update
from connectors.revenues.operations import OPERATIONS


class ScriptedConnector(Connector[ConnectorConfig]):
    name = "northgate"
    domain = "revenues"
    default_conn_id = "revenues_northgate"
    Config = ConnectorConfig
    operations = OPERATIONS

    def __init__(self, answer: Callable[[Command], Outcome] | None = None) -> None:
        super().__init__(ConnectorConfig())
        self.answer = answer or (lambda c: Outcome(c.key, OutcomeStatus.CONFIRMED, reference=f"RQ-{c.key[-6:]}"))
        self.submitted: list[Command] = []
        self.updates: list[Update] = []

    def check(self) -> None:
        return None

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        self.submitted.extend(commands)
        return [self.answer(c) for c in commands]

    def fetch_updates(self, since: datetime) -> list[Update]:
        return [u for u in self.updates if u.changed_at > since]
