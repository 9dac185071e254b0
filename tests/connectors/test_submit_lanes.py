"""``Connector.submit_each`` with lanes: commands for different records sent at the same time,
never one command twice, commands of one case or one record in batch order, the batch's stop
rules kept."""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import pytest
from pydantic import BaseModel

from connectors.base import Command, Connector, ConnectorConfig, Outcome, OutcomeStatus, Update
from connectors.errors import PermanentError, Rejected, TransientError


class _Payload(BaseModel):
    account: str
    n: int


class _Config(ConnectorConfig):
    concurrent_sends: int = 4


class _Recorder(Connector[_Config]):
    """A back office that records each apply (thread, start and end), slowly enough to overlap."""

    name = "lanes"
    domain = "test"
    default_conn_id = "test_lanes"
    Config = _Config
    operations = {"op": _Payload}

    def __init__(self, config: _Config, *, delay: float = 0.01,
                 fail: dict[str, Exception] | None = None) -> None:
        super().__init__(config)
        self.delay = delay
        self.fail = fail or {}
        self.lock = threading.Lock()
        self.applied: list[tuple[str, str, int]] = []   # key, account, thread id
        self.running = 0
        self.most_at_once = 0

    def check(self) -> None:
        pass

    def fetch_updates(self, since: datetime) -> list[Update]:
        return []

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        return self.submit_each(commands, self._apply, lanes=self.config.concurrent_sends,
                                records=lambda c: [c.payload["account"]])

    def _apply(self, command: Command) -> Outcome:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.applied.append((command.key, command.payload["account"], threading.get_ident()))
        try:
            time.sleep(self.delay)
            if command.key in self.fail:
                raise self.fail[command.key]
            return Outcome(key=command.key, status=OutcomeStatus.CONFIRMED, reference=command.key)
        finally:
            with self.lock:
                self.running -= 1


def _commands(n: int, *, accounts: int, cases: int | None = None) -> list[Command]:
    return [Command(key=f"k{i}", system="test_lanes", operation="op",
                    payload={"account": f"A{i % accounts}", "n": i},
                    case_ref=f"C{i % (cases or n)}") for i in range(n)]


def test_lanes_send_at_once_each_command_once_in_order_per_record() -> None:
    connector = _Recorder(_Config(concurrent_sends=4))
    commands = _commands(60, accounts=12)
    outcomes = connector.submit(commands)
    assert [o.key for o in outcomes] == [c.key for c in commands]
    assert all(o.status is OutcomeStatus.CONFIRMED for o in outcomes)
    keys = [key for key, _, _ in connector.applied]
    assert Counter(keys) == Counter(c.key for c in commands)        # each exactly once
    assert 1 < connector.most_at_once <= 4
    for account in {c.payload["account"] for c in commands}:
        sent = [int(key[1:]) for key, acc, _ in connector.applied if acc == account]
        assert sent == sorted(sent)                                 # batch order per record
        assert len({t for _, acc, t in connector.applied if acc == account}) == 1


def test_commands_sharing_a_case_or_a_record_are_one_lane() -> None:
    # Case C0 links accounts A0 and A1 (commands 0 and 1); A1 links to command 3 (case C3).
    commands = [
        Command(key="k0", system="s", operation="op", payload={"account": "A0", "n": 0}, case_ref="C0"),
        Command(key="k1", system="s", operation="op", payload={"account": "A1", "n": 1}, case_ref="C0"),
        Command(key="k2", system="s", operation="op", payload={"account": "A2", "n": 2}, case_ref="C2"),
        Command(key="k3", system="s", operation="op", payload={"account": "A1", "n": 3}, case_ref="C3"),
    ]
    connector = _Recorder(_Config(concurrent_sends=4))
    connector.submit(commands)
    thread = {key: t for key, _, t in connector.applied}
    assert thread["k0"] == thread["k1"] == thread["k3"]
    order = [key for key, _, _ in connector.applied if key != "k2"]
    assert order == ["k0", "k1", "k3"]


def test_one_lane_is_sent_in_the_calling_thread() -> None:
    connector = _Recorder(_Config(concurrent_sends=4), delay=0)
    connector.submit(_commands(5, accounts=1))
    assert {t for _, _, t in connector.applied} == {threading.get_ident()}


def test_a_permanent_error_stops_what_has_not_started() -> None:
    commands = _commands(40, accounts=40)
    connector = _Recorder(_Config(concurrent_sends=2), delay=0.005,
                          fail={"k3": PermanentError("endpoint gone", code="http-404")})
    outcomes = connector.submit(commands)
    started = {key for key, _, _ in connector.applied}
    assert Counter(key for key, _, _ in connector.applied).most_common(1)[0][1] == 1
    assert outcomes[3].status is OutcomeStatus.RETRY
    assert outcomes[3].error_class == "PermanentError"
    not_started = [o for o in outcomes if o.key not in started]
    assert len(not_started) >= 30          # two lanes: at most a few started alongside k3
    assert all(o.status is OutcomeStatus.RETRY and o.error_class == "PermanentError"
               and o.message == "not sent: batch stopped early" for o in not_started)


def test_rejections_stay_per_command_and_the_batch_goes_on() -> None:
    commands = _commands(12, accounts=12)
    connector = _Recorder(_Config(concurrent_sends=3),
                          fail={"k2": Rejected("no such account", code="UnknownAccount")})
    outcomes = connector.submit(commands)
    assert outcomes[2].status is OutcomeStatus.REJECTED
    assert [o.status for i, o in enumerate(outcomes) if i != 2] == [OutcomeStatus.CONFIRMED] * 11


def test_three_transient_failures_in_a_row_stop_the_batch_with_lanes() -> None:
    commands = _commands(30, accounts=30)
    fail = {f"k{i}": TransientError("busy", code="http-503") for i in range(30)}
    connector = _Recorder(_Config(concurrent_sends=2, retry_attempts=1), delay=0.002, fail=fail)
    outcomes = connector.submit(commands)
    assert all(o.status is OutcomeStatus.RETRY for o in outcomes)
    # Stopped after three in a row: at most the two lanes' commands in flight then also ran.
    assert 3 <= len(connector.applied) <= 5
    assert Counter(key for key, _, _ in connector.applied).most_common(1)[0][1] == 1


@pytest.mark.parametrize("lanes", [1, 4])
def test_the_same_outcomes_with_and_without_lanes(lanes: int) -> None:
    commands = _commands(20, accounts=5)
    fail: dict[str, Exception] = {"k4": Rejected("refused", code="X"),
                                  "k9": TransientError("busy", code="http-503")}
    connector = _Recorder(_Config(concurrent_sends=lanes, retry_attempts=1), delay=0, fail=fail)
    outcomes = connector.submit(commands)
    assert [(o.key, o.status) for o in outcomes] == [
        (c.key, OutcomeStatus.REJECTED if c.key == "k4" else
         OutcomeStatus.RETRY if c.key == "k9" else OutcomeStatus.CONFIRMED) for c in commands]
