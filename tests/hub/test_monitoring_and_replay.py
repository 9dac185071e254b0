"""Operations figures from the ledger, and the audited replay of failed commands."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hub import dispatch, monitoring, replay
from hub.accounts import StaffUser
from hub.ledger import db
from hub.ledger.models import AuditEntry, Case, Command, WorkItem
from tests.hub.scripted import ScriptedConnector
from tests.web.ops_rows import busy_revenues

OPS = StaffUser(3, "ops.analyst", "Ops Analyst", "operations", frozenset({"operations"}))
MEMBER = StaffUser(1, "rev.officer", "Rev", "member", frozenset({"revenues"}))


def test_percentiles() -> None:
    assert monitoring.percentile([], 0.5) is None
    assert monitoring.percentile([4.0], 0.95) == 4.0
    assert monitoring.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert monitoring.percentile(list(range(101)), 0.95) == pytest.approx(95)


def test_figures_per_system(ledger_url: str) -> None:
    states = busy_revenues(ledger_url)
    assert len(states["confirmed"]) == 3 and len(states["failed"]) == 1 and len(states["pending"]) == 1
    with db.session_scope(ledger_url) as session:   # known latencies: 60 s, 120 s, 600 s
        for command_id, seconds in zip(states["confirmed"], (60, 120, 600)):
            command = session.get(Command, command_id)
            case = session.get(Case, command.case_id)
            case.received_at = command.settled_at - timedelta(seconds=seconds)
    with db.session_scope(ledger_url) as session:
        f = monitoring.collect(session)
    rev = f.systems["revenues_northgate"]
    assert (rev.pending, rev.sending, rev.awaiting, rev.failed) == (1, 0, 0, 1)
    assert rev.oldest_pending_seconds is not None and rev.oldest_pending_seconds >= 0
    assert rev.confirmed_last_hour == 3 and sum(rev.confirmed_per_hour) == 3
    assert rev.latency_p50_seconds == pytest.approx(120) and rev.latency_samples == 3
    assert rev.latency_p95_seconds == pytest.approx(120 + (600 - 120) * 0.9)
    # 3 confirmed + 1 rejected + 8 transient tries of the flaky one + 1 of the pending one
    assert rev.attempts_24h == 13 and rev.failed_attempts_24h == 10
    assert rev.failure_rate == pytest.approx(10 / 13)
    classes = {(g.system, g.error_class): g.count for g in f.failures}
    assert classes == {("revenues_northgate", "TransientError"): 9,
                       ("revenues_northgate", "Rejected"): 1}
    assert [c.id for c in f.failed_commands] == states["failed"]
    assert f.failed_commands[0].work_item_id is not None
    assert set(f.systems) >= {"benefits_academy", "licensing_uniform", "waste_bartec"}


def test_replay_is_guarded_audited_and_sends_under_the_same_key(ledger_url: str) -> None:
    states = busy_revenues(ledger_url)
    failed_id = states["failed"][0]
    with db.session_scope(ledger_url) as session:
        with pytest.raises(replay.ReplayRefused):
            replay.replay(session, MEMBER, [failed_id])
        with pytest.raises(replay.ReplayRefused):
            replay.replay(session, OPS, [])
        done = replay.replay(session, OPS, [failed_id, states["confirmed"][0]])
        assert done == [failed_id], "only failed commands are replayed"
        key = session.get(Command, failed_id).key
    with db.session_scope(ledger_url) as session:
        command = session.get(Command, failed_id)
        assert (command.state, command.attempts, command.maybe_sent) == ("pending", 0, True)
        item = session.scalar(sa.select(WorkItem).where(WorkItem.command_id == failed_id))
        assert (item.state, item.resolution_code) == ("done", "replayed")
        rows = session.execute(sa.select(AuditEntry.actor, AuditEntry.action, AuditEntry.target,
                                         AuditEntry.state_before, AuditEntry.state_after)
                               .where(AuditEntry.command_id == failed_id).order_by(AuditEntry.id)).all()
    assert rows[0] == ("ops.analyst", "replayed", f"command:{failed_id}", "failed", "pending")
    seen = ScriptedConnector()
    dispatch.dispatch_all(seen, "revenues_northgate", url=ledger_url)
    resent = [c for c in seen.submitted if c.key == key]
    assert len(resent) == 1 and resent[0].maybe_sent, "same key; the connector looks before creating"


def test_a_replayed_command_that_fails_again_reopens_its_work_item(ledger_url: str) -> None:
    states = busy_revenues(ledger_url)
    failed_id = states["failed"][0]
    with db.session_scope(ledger_url) as session:
        replay.replay(session, OPS, [failed_id])
    from connectors.base import Outcome, OutcomeStatus

    flaky = ScriptedConnector(lambda c: Outcome(c.key, OutcomeStatus.RETRY, error_class="TransientError",
                                                message="timeout"))
    for _ in range(dispatch.MAX_ATTEMPTS):
        with db.session_scope(ledger_url) as session:
            session.execute(sa.update(Command).where(Command.id == failed_id).values(next_attempt_at=None))
        dispatch.dispatch_all(flaky, "revenues_northgate", url=ledger_url)
    with db.session_scope(ledger_url) as session:
        assert session.get(Command, failed_id).state == "failed"
        items = session.scalars(sa.select(WorkItem).where(WorkItem.command_id == failed_id)).all()
        assert [(i.state, i.kind) for i in items] == [("open", "delivery_failed")]
        actions = session.scalars(sa.select(AuditEntry.action).where(
            AuditEntry.work_item_id == items[0].id).order_by(AuditEntry.id)).all()
    assert actions == ["replayed", "reopened"]
