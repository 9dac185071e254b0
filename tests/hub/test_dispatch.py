"""Dispatch: every outcome class lands in the right state, once, with its attempt recorded."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from connectors.base import Command as Cmd
from connectors.base import Outcome, OutcomeStatus
from connectors.errors import PermanentError
from hub import dispatch
from hub.ledger import db
from hub.ledger.models import Attempt, Command, OutboxMessage, WorkItem, utcnow
from tests.hub.factories import receive_and_map, rows
from tests.hub.scripted import ScriptedConnector

SYSTEM = "revenues_northgate"



def test_confirmed_commands_are_written_back_with_the_reference(ledger_url: str) -> None:
    receive_and_map(ledger_url, 3)
    connector = ScriptedConnector()
    stats = dispatch.dispatch_all(connector, SYSTEM, batch_size=2, url=ledger_url)
    assert (stats.claimed, stats.confirmed) == (3, 3)
    assert len(connector.submitted) == 3
    assert {c.state for c in rows(ledger_url, Command)} == {"confirmed"}
    attempts = rows(ledger_url, Attempt)
    assert [a.outcome for a in attempts] == ["confirmed"] * 3 and all(a.finished_at for a in attempts)
    notes = rows(ledger_url, OutboxMessage)
    assert [n.status for n in notes] == ["completed"] * 3
    assert all(n.backoffice_reference and n.backoffice_reference in n.note for n in notes)
    assert dispatch.dispatch_all(connector, SYSTEM, url=ledger_url).claimed == 0, "nothing sent twice"


def test_a_rejection_opens_a_work_item_and_the_batch_goes_on(ledger_url: str) -> None:
    receive_and_map(ledger_url, 3)
    def answer(c: Cmd) -> Outcome:
        if c.payload["account_ref"] == "CT00000002":
            return Outcome(c.key, OutcomeStatus.REJECTED, message="account CT00000002 not found",
                           error_class="Rejected", code="AccountNotFound")
        if c.payload["account_ref"] == "CT00000003":
            return Outcome(c.key, OutcomeStatus.REJECTED, message="move held for review", held=True,
                           error_class="Rejected", code="HELD")
        return Outcome(c.key, OutcomeStatus.CONFIRMED, reference="RQ1")
    stats = dispatch.dispatch_all(ScriptedConnector(answer), SYSTEM, url=ledger_url)
    assert (stats.confirmed, stats.rejected) == (1, 2)
    items = rows(ledger_url, WorkItem)
    assert sorted(i.kind for i in items) == ["backoffice_rejected", "held_for_review"]
    assert {i.team for i in items} == {"revenues"}
    notes = {n.status for n in rows(ledger_url, OutboxMessage)}
    assert notes == {"completed", "needs_review"}
    rejected = [n for n in rows(ledger_url, OutboxMessage) if n.status == "needs_review"]
    assert any("not found" in n.note for n in rejected)


def test_transient_failures_back_off_then_fail_into_a_work_item(ledger_url: str) -> None:
    receive_and_map(ledger_url, 1)
    retry = ScriptedConnector(lambda c: Outcome(c.key, OutcomeStatus.RETRY, error_class="TransientError",
                                                message="HTTP 503"))
    dispatch.dispatch_all(retry, SYSTEM, url=ledger_url)
    [command] = rows(ledger_url, Command)
    assert command.state == "pending" and command.next_attempt_at > utcnow()
    assert dispatch.dispatch_all(retry, SYSTEM, url=ledger_url).claimed == 0, "waits for its backoff"
    for _ in range(dispatch.MAX_ATTEMPTS):
        with db.session_scope(ledger_url) as session:
            session.execute(sa.update(Command).values(next_attempt_at=None))
        dispatch.dispatch_all(retry, SYSTEM, url=ledger_url)
    [command] = rows(ledger_url, Command)
    assert command.state == "failed" and command.attempts == dispatch.MAX_ATTEMPTS
    [item] = rows(ledger_url, WorkItem)
    assert item.kind == "delivery_failed"
    assert len(rows(ledger_url, Attempt)) == dispatch.MAX_ATTEMPTS


def test_a_permanent_error_fails_the_run_and_keeps_commands_pending(ledger_url: str) -> None:
    receive_and_map(ledger_url, 2)
    broken = ScriptedConnector(lambda c: Outcome(c.key, OutcomeStatus.RETRY, error_class="PermanentError",
                                                 message="authentication failed"))
    with pytest.raises(PermanentError):
        dispatch.dispatch_batch(broken, SYSTEM, url=ledger_url)
    commands = rows(ledger_url, Command)
    assert {c.state for c in commands} == {"pending"} and {c.attempts for c in commands} == {0}
    assert rows(ledger_url, WorkItem) == []


def test_a_batch_whose_task_died_is_reclaimed_with_look_before_create(ledger_url: str) -> None:
    receive_and_map(ledger_url, 2)
    with db.session_scope(ledger_url) as session:
        dispatch.claim_batch(session, SYSTEM, 10)   # a worker claims, then dies
    assert dispatch.dispatch_all(ScriptedConnector(), SYSTEM, url=ledger_url).claimed == 0
    with db.session_scope(ledger_url) as session:
        session.execute(sa.update(Command).values(claimed_at=utcnow() - dispatch.LEASE - timedelta(minutes=1)))
    connector = ScriptedConnector()
    assert dispatch.dispatch_all(connector, SYSTEM, url=ledger_url).confirmed == 2
    assert all(c.maybe_sent for c in connector.submitted)


def test_an_unexpected_error_releases_the_batch(ledger_url: str) -> None:
    receive_and_map(ledger_url, 1)
    def explode(c: Cmd) -> Outcome:
        raise RuntimeError("bug")
    with pytest.raises(PermanentError) as info:   # the connector guard classifies the defect
        dispatch.dispatch_batch(ScriptedConnector(explode), SYSTEM, url=ledger_url)
    assert info.value.code == "internal" and "bug" not in str(info.value)
    [command] = rows(ledger_url, Command)
    assert command.state == "pending" and command.maybe_sent


def test_claims_never_overlap(ledger_url: str) -> None:
    receive_and_map(ledger_url, 5)
    with db.session_scope(ledger_url) as session:
        _, first = dispatch.claim_batch(session, SYSTEM, 3)
        first_ids = {c.id for c in first}
    with db.session_scope(ledger_url) as session:
        _, second = dispatch.claim_batch(session, SYSTEM, 3)
        second_ids = {c.id for c in second}
    assert len(first_ids) == 3 and len(second_ids) == 2 and not first_ids & second_ids


def test_awaiting_commands_record_when_the_answer_is_due(ledger_url: str) -> None:
    receive_and_map(ledger_url, 1)
    due = (utcnow() + timedelta(hours=2)).isoformat()
    connector = ScriptedConnector(lambda c: Outcome(c.key, OutcomeStatus.AWAITING, reference="FILE-1",
                                                    details={"due_by": due}))
    assert dispatch.dispatch_all(connector, SYSTEM, url=ledger_url).awaiting == 1
    [command] = rows(ledger_url, Command)
    assert command.state == "awaiting" and command.reference == "FILE-1"
    assert abs((command.due_by - utcnow()).total_seconds() - 7200) < 60
    assert rows(ledger_url, OutboxMessage) == [], "nothing to tell the CRM until the answer comes"
