"""Status sync: each back-office change reaches the CRM outbox once; late answers settle commands."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from connectors.base import Outcome, OutcomeStatus, Update
from hub import dispatch, status_sync
from hub.ledger import db
from hub.ledger.models import Command, OutboxMessage, WorkItem, utcnow
from tests.hub.factories import receive_and_map, rows
from tests.hub.scripted import ScriptedConnector

SYSTEM = "revenues_northgate"



def _confirmed(url: str, count: int = 1) -> ScriptedConnector:
    receive_and_map(url, count)
    connector = ScriptedConnector()
    dispatch.dispatch_all(connector, SYSTEM, url=url)
    return connector


def test_a_staff_change_is_written_back_once(ledger_url: str) -> None:
    connector = _confirmed(ledger_url)
    [command] = rows(ledger_url, Command)
    change = Update(system=SYSTEM, update_id="CHG-1", reference=command.reference, status="COMPLETED",
                    changed_at=utcnow(), key=command.key, crm_status="closed", note="Bill sent")
    connector.updates.append(change)
    first = status_sync.sync_system(connector, SYSTEM, url=ledger_url)
    assert (first.fetched, first.applied) == (1, 1)
    updates = [m for m in rows(ledger_url, OutboxMessage) if m.kind == "update"]
    assert len(updates) == 1 and updates[0].status == "completed" and "COMPLETED" in updates[0].note
    # The next sync re-reads its overlap window and sees the change again: applied once.
    again = status_sync.sync_system(connector, SYSTEM, url=ledger_url)
    assert (again.fetched, again.applied, again.duplicates) == (1, 0, 1)
    with db.session_scope(ledger_url) as session:
        session.execute(sa.delete(status_sync.Cursor))
    from_scratch = status_sync.sync_system(connector, SYSTEM, url=ledger_url)
    assert (from_scratch.applied, from_scratch.duplicates) == (0, 1)
    assert len([m for m in rows(ledger_url, OutboxMessage) if m.kind == "update"]) == 1


def test_a_change_committed_late_behind_the_cursor_is_still_applied(ledger_url: str) -> None:
    connector = _confirmed(ledger_url, 2)
    first, second = rows(ledger_url, Command)
    now = utcnow()
    connector.updates.append(Update(system=SYSTEM, update_id="C-NEW", reference=first.reference,
                                    status="COMPLETED", changed_at=now, key=first.key))
    status_sync.sync_system(connector, SYSTEM, url=ledger_url)
    # A staff transaction that started earlier commits now, stamped before the cursor.
    connector.updates.append(Update(system=SYSTEM, update_id="C-LATE", reference=second.reference,
                                    status="COMPLETED", changed_at=now - timedelta(seconds=30),
                                    key=second.key))
    late = status_sync.sync_system(connector, SYSTEM, url=ledger_url)
    assert late.applied == 1
    notes = [m.command_id for m in rows(ledger_url, OutboxMessage) if m.kind == "update"]
    assert sorted(notes) == sorted([first.id, second.id])


def test_changes_to_records_the_hub_did_not_create_are_ignored(ledger_url: str) -> None:
    connector = _confirmed(ledger_url)
    connector.updates.append(Update(system=SYSTEM, update_id="CHG-X", reference="RQ-NOT-OURS",
                                    status="COMPLETED", changed_at=utcnow()))
    stats = status_sync.sync_system(connector, SYSTEM, url=ledger_url)
    assert stats.unmatched == 1
    assert [m for m in rows(ledger_url, OutboxMessage) if m.kind == "update"] == []


def test_a_late_answer_settles_an_awaiting_command(ledger_url: str) -> None:
    receive_and_map(ledger_url, 2)
    connector = ScriptedConnector(lambda c: Outcome(c.key, OutcomeStatus.AWAITING, reference="F1"))
    dispatch.dispatch_all(connector, SYSTEM, url=ledger_url)
    accepted, refused = rows(ledger_url, Command)
    connector.updates += [
        Update(system=SYSTEM, update_id="R1", reference="CLAIM-9", status="ACCEPTED", changed_at=utcnow(),
               key=accepted.key, resolves=OutcomeStatus.CONFIRMED),
        Update(system=SYSTEM, update_id="R2", reference="F1", status="REJECTED", changed_at=utcnow(),
               key=refused.key, resolves=OutcomeStatus.REJECTED, message="claim not found")]
    assert status_sync.sync_system(connector, SYSTEM, url=ledger_url).resolved == 2
    accepted, refused = rows(ledger_url, Command)
    assert (accepted.state, accepted.reference) == ("confirmed", "CLAIM-9")
    assert refused.state == "rejected" and refused.message == "claim not found"
    [item] = rows(ledger_url, WorkItem)
    assert item.kind == "backoffice_rejected"


def test_an_answer_past_due_opens_one_work_item(ledger_url: str) -> None:
    receive_and_map(ledger_url, 1)
    past = (utcnow() - timedelta(hours=1)).isoformat()
    connector = ScriptedConnector(lambda c: Outcome(c.key, OutcomeStatus.AWAITING, reference="F2",
                                                    details={"due_by": past}))
    dispatch.dispatch_all(connector, SYSTEM, url=ledger_url)
    assert status_sync.sync_system(connector, SYSTEM, url=ledger_url).overdue == 1
    status_sync.sync_system(connector, SYSTEM, url=ledger_url)
    [item] = rows(ledger_url, WorkItem)
    assert item.kind == "response_overdue" and "F2" in item.reason
