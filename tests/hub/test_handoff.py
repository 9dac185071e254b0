"""The dispatch task writes its outcomes back to the CRM itself (one hop fewer per case); what it
cannot deliver stays in the outbox for the crm_writeback DAG, and never fails the dispatch."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.base import Outcome, OutcomeStatus
from connectors.errors import PermanentError
from crm_adapter.rest import CrmClient
from hub import handoff, outbox
from hub.ledger.models import Command, OutboxMessage
from simulators.crm.app import create_app
from simulators.serving import free_port, serve_in_thread
from tests.hub.factories import receive, receive_and_map, rows
from tests.hub.scripted import ScriptedConnector

TOKEN = "test-token"
SYSTEM = "revenues_northgate"


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[str]:
    with serve_in_thread(create_app(tmp_path / "crm.db", token=TOKEN)) as url:
        for n in range(5):
            httpx.put(f"{url}/api/v1/cases/CRM-T{n:04d}", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"case_type": "ctax_change_of_address", "data": {}}).raise_for_status()
        yield url


def _applied(url: str) -> int:
    stats = httpx.get(f"{url}/admin/stats").json()
    return int(stats["writebacks_applied"])


def test_outcomes_are_written_back_by_the_task_that_settled_them(ledger_url: str, crm: str) -> None:
    receive_and_map(ledger_url, 5)
    clients: list[CrmClient] = []

    def client() -> CrmClient:
        clients.append(CrmClient(crm, TOKEN))
        return clients[-1]

    report = handoff.dispatch_and_write_back(ScriptedConnector(), SYSTEM, batch_size=2,
                                             max_batches=10, crm_client=client, url=ledger_url)
    assert (report.batches, report.sent.confirmed, report.written_back) == (3, 5, 5)
    assert report.writebacks_waiting == 0 and report.writeback_unavailable is None
    assert len(clients) == 1, "one CRM client for the whole task"
    assert {m.state for m in rows(ledger_url, OutboxMessage)} == {"sent"}
    assert _applied(crm) == 5
    again = handoff.dispatch_and_write_back(ScriptedConnector(), SYSTEM, batch_size=2,
                                            max_batches=10, crm_client=client, url=ledger_url)
    assert (again.batches, again.written_back) == (0, 0) and _applied(crm) == 5


def test_nothing_to_send_touches_neither_back_office_nor_crm(ledger_url: str) -> None:
    def no_client() -> CrmClient:
        raise AssertionError("the CRM is not needed when nothing was settled")

    connector = ScriptedConnector()
    report = handoff.dispatch_and_write_back(connector, SYSTEM, batch_size=10, max_batches=5,
                                             crm_client=no_client, url=ledger_url)
    assert report.batches == 0 and connector.submitted == []


def test_a_crm_that_is_down_leaves_write_backs_for_the_write_back_dag(ledger_url: str) -> None:
    receive_and_map(ledger_url, 2)
    down = f"http://127.0.0.1:{free_port()}"
    report = handoff.dispatch_and_write_back(
        ScriptedConnector(), SYSTEM, batch_size=10, max_batches=5, url=ledger_url,
        crm_client=lambda: CrmClient(down, TOKEN, timeout=1))
    assert report.sent.confirmed == 2, "the back-office change stands"
    assert {c.state for c in rows(ledger_url, Command)} == {"confirmed"}
    assert {m.state for m in rows(ledger_url, OutboxMessage)} == {"pending"}
    # retried by the outbox's own backoff and crm_writeback's timetable, not handed over at once
    assert report.writeback_unavailable and not report.hand_over


def test_a_crm_that_hangs_costs_dispatch_one_timeout_not_one_per_message(ledger_url: str) -> None:
    import socket
    import time

    receive_and_map(ledger_url, 5)
    with socket.socket() as silent:   # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        crm = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        report = handoff.dispatch_and_write_back(
            ScriptedConnector(), SYSTEM, batch_size=2, max_batches=5, url=ledger_url,
            crm_client=lambda: CrmClient(crm, TOKEN, timeout=0.5))
        elapsed = time.monotonic() - started
    assert report.sent.confirmed == 5 and report.batches == 3
    # one wave of attempts for the first batch (its two messages at once on PostgreSQL), then none
    attempts = [m.attempts for m in rows(ledger_url, OutboxMessage)]
    assert 1 <= sum(attempts[:2]) <= 2 and sum(attempts[2:]) == 0
    assert elapsed < 5, f"dispatch waited {elapsed:.1f} s on the CRM"


def test_crm_credentials_refused_hand_over_to_the_write_back_dag(ledger_url: str, crm: str) -> None:
    receive_and_map(ledger_url, 2)
    report = handoff.dispatch_and_write_back(
        ScriptedConnector(), SYSTEM, batch_size=10, max_batches=5, url=ledger_url,
        crm_client=lambda: CrmClient(crm, "wrong-token"))
    assert report.sent.confirmed == 2 and report.written_back == 0
    assert report.writeback_unavailable and "wrong-token" not in report.writeback_unavailable
    assert report.writebacks_waiting == 2, "the task emits hub://ledger/outbox for these"
    with CrmClient(crm, TOKEN) as client:   # the write-back DAG delivers them
        assert outbox.deliver_pending(client, url=ledger_url).sent == 2
    assert _applied(crm) == 2


def test_a_crm_connection_that_is_not_defined_does_not_fail_dispatch(ledger_url: str) -> None:
    receive_and_map(ledger_url, 1)

    def undefined() -> CrmClient:
        raise PermanentError("Airflow connection 'crm' is not defined")

    report = handoff.dispatch_and_write_back(ScriptedConnector(), SYSTEM, batch_size=10,
                                             max_batches=5, crm_client=undefined, url=ledger_url)
    assert report.sent.confirmed == 1 and report.writebacks_waiting == 1
    assert "not defined" in (report.writeback_unavailable or "")


def test_a_back_office_permanent_error_still_writes_back_what_was_settled(ledger_url: str,
                                                                           crm: str) -> None:
    receive_and_map(ledger_url, 2)

    def answer(command):  # type: ignore[no-untyped-def]
        if command.payload["account_ref"] == "CT00000002":
            return Outcome(command.key, OutcomeStatus.RETRY, error_class="PermanentError",
                           message="login refused")
        return Outcome(command.key, OutcomeStatus.CONFIRMED, reference="CT-REF-1")

    with pytest.raises(PermanentError):
        handoff.dispatch_and_write_back(ScriptedConnector(answer), SYSTEM, batch_size=10,
                                        max_batches=5, url=ledger_url,
                                        crm_client=lambda: CrmClient(crm, TOKEN))
    assert [m.state for m in rows(ledger_url, OutboxMessage)] == ["sent"]
    assert _applied(crm) == 1


def test_write_back_stays_with_its_own_system(ledger_url: str, crm: str) -> None:
    receive_and_map(ledger_url, 1)
    receive(ledger_url, "CRM-T0004", {"uprn": "100090000001", "bin_type": "recycling"},
            case_type="waste_missed_bin")   # invalid: a notice with no system, for crm_writeback
    from hub import intake

    intake.map_received(url=ledger_url)
    report = handoff.dispatch_and_write_back(ScriptedConnector(), SYSTEM, batch_size=10,
                                             max_batches=5, url=ledger_url,
                                             crm_client=lambda: CrmClient(crm, TOKEN))
    assert report.written_back == 1
    states = {m.kind: m.state for m in rows(ledger_url, OutboxMessage)}
    assert states["invalid"] == "pending", "left to the crm_writeback DAG, which the web app signals"
