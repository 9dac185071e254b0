"""Write-back to the CRM simulator over HTTP: applied once, retried when the CRM is down."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from crm_adapter.rest import CrmClient
from hub import dispatch, outbox
from hub.ledger import db
from hub.ledger.models import Case, OutboxMessage
from simulators.crm.app import create_app
from simulators.serving import free_port, serve_in_thread
from tests.hub.factories import receive_and_map, rows
from tests.hub.scripted import ScriptedConnector

TOKEN = "test-token"


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[str]:
    with serve_in_thread(create_app(tmp_path / "crm.db", token=TOKEN)) as url:
        for n in range(2):
            httpx.put(f"{url}/api/v1/cases/CRM-T{n:04d}", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"case_type": "ctax_change_of_address", "data": {}}).raise_for_status()
        yield url


def _updates(url: str, crm_id: str) -> list:
    response = httpx.get(f"{url}/api/v1/cases/{crm_id}/updates",
                         headers={"Authorization": f"Bearer {TOKEN}"})
    response.raise_for_status()
    body = response.json()
    return body["updates"] if isinstance(body, dict) else body


def test_outcomes_reach_the_crm_exactly_once(sqlite_ledger: str, crm: str) -> None:
    receive_and_map(sqlite_ledger, 2)
    dispatch.dispatch_all(ScriptedConnector(), "revenues_northgate", url=sqlite_ledger)
    with CrmClient(crm, TOKEN) as client:
        assert outbox.deliver_pending(client, url=sqlite_ledger).sent == 2
        # The acknowledgement was "lost": the hub sends the same messages again.
        with db.session_scope(sqlite_ledger) as session:
            session.execute(sa.update(OutboxMessage).values(state="pending"))
        assert outbox.deliver_pending(client, url=sqlite_ledger).sent == 2
    updates = _updates(crm, "CRM-T0000")
    assert len(updates) == 1 and updates[0]["status"] == "completed"


def test_a_crm_outage_is_retried_later(sqlite_ledger: str) -> None:
    receive_and_map(sqlite_ledger, 1)
    dispatch.dispatch_all(ScriptedConnector(), "revenues_northgate", url=sqlite_ledger)
    with CrmClient(f"http://127.0.0.1:{free_port()}", TOKEN, timeout=2) as client:
        stats = outbox.deliver_pending(client, url=sqlite_ledger)
    assert (stats.sent, stats.retry) == (0, 1)
    with db.session_scope(sqlite_ledger) as session:
        [message] = session.scalars(sa.select(OutboxMessage))
        assert message.state == "pending" and message.next_attempt_at is not None
        assert message.last_error.startswith("TransientError")


class _RecordingCrm:
    """Stands in for CrmClient: records each write-back, slowly, from whichever thread."""

    def __init__(self) -> None:
        import threading

        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0

    def write_back(self, crm_id: str, update) -> None:  # type: ignore[no-untyped-def]
        import time

        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.02)
        with self.lock:
            self.in_flight -= 1
            self.calls.append((crm_id, update.idempotency_key))


def test_write_backs_go_out_concurrently_each_case_in_order_each_once(ledger_url: str) -> None:
    receive_and_map(ledger_url, 6)
    with db.session_scope(ledger_url) as session:
        cases = list(session.scalars(sa.select(Case).order_by(Case.id)))
        outbox.enqueue_many(session, [
            outbox.message_row(dedupe_key=f"t:{case.crm_id}:{n}", case=case, kind="note",
                               status="in_progress", note=f"step {n}", system="revenues_northgate")
            for n in range(3) for case in cases])
    client = _RecordingCrm()
    stats = outbox.deliver_pending(client, url=ledger_url, concurrency=3)  # type: ignore[arg-type]
    assert stats.sent == 18 and len(client.calls) == 18
    assert len(set(client.calls)) == 18, "each message sent once"
    by_id = {m.id: m for m in rows(ledger_url, OutboxMessage)}
    assert {m.state for m in by_id.values()} == {"sent"}
    for crm_id in {c for c, _ in client.calls}:
        keys = [int(k.rsplit("-", 1)[1]) for c, k in client.calls if c == crm_id]
        assert keys == sorted(keys), f"{crm_id}'s messages in the order they were queued"
    postgresql = ledger_url.startswith("postgresql")
    assert client.most_in_flight == (3 if postgresql else 1), "concurrent on PostgreSQL only"
