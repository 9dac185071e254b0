"""Overdue work items are e-mailed to their team's address over SMTP, once each, without case data."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from hub import escalation, mail
from hub.ledger import db
from hub.ledger.models import AuditEntry, WorkItem, utcnow
from tests.support.smtp import smtp_sink
from tests.web.ledger_rows import refused_move, waste_item


def make_overdue(url: str, *ids: int) -> None:
    with db.session_scope(url) as session:
        for item_id in ids:
            session.get(WorkItem, item_id).due_at = utcnow() - timedelta(hours=3)


def test_overdue_items_are_escalated_to_each_team_once(sqlite_ledger: str) -> None:
    rev = refused_move(sqlite_ledger, "CRM-R1")
    rev_later = refused_move(sqlite_ledger, "CRM-R2", account="CT99999902")
    waste = waste_item(sqlite_ledger)
    make_overdue(sqlite_ledger, rev, waste)
    with smtp_sink() as sink:
        settings = mail.SmtpSettings(host=sink.host, port=sink.port, sender="hub@council.example")
        stats = escalation.escalate_overdue(url=sqlite_ledger, settings=settings)
        again = escalation.escalate_overdue(url=sqlite_ledger, settings=settings)
    assert (stats.items, stats.emails) == (2, 2) and again.items == 0
    by_to = {m["X-Envelope-To"]: m for m in sink.messages}
    assert set(by_to) == {"revenues-team@council.example", "waste-team@council.example"}
    body = by_to["revenues-team@council.example"].get_payload()
    assert f"#{rev} " in body and "CRM case CRM-R1" in body and f"#{rev_later} " not in body
    assert "Test Person" not in body and "Mill Lane" not in body, "no personal data in e-mail"
    assert "overdue work item for Revenues" in by_to["revenues-team@council.example"]["Subject"]
    with db.session_scope(sqlite_ledger) as session:
        assert session.get(WorkItem, rev).escalated_at is not None
        assert session.get(WorkItem, rev_later).escalated_at is None
        actions = session.scalars(sa.select(AuditEntry.action).where(AuditEntry.work_item_id == rev)).all()
    assert actions == ["escalated"]


def test_a_failed_send_is_tried_again_next_time(sqlite_ledger: str) -> None:
    rev = refused_move(sqlite_ledger)
    make_overdue(sqlite_ledger, rev)
    from simulators.serving import free_port

    nobody = mail.SmtpSettings(host="127.0.0.1", port=free_port(), timeout=2)
    failed = escalation.escalate_overdue(url=sqlite_ledger, settings=nobody)
    assert failed.failed_teams == 1 and failed.items == 0
    with smtp_sink() as sink:
        ok = escalation.escalate_overdue(url=sqlite_ledger,
                                         settings=mail.SmtpSettings(host=sink.host, port=sink.port))
    assert ok.items == 1 and len(sink.messages) == 1


def test_closed_and_not_yet_due_items_are_not_escalated(sqlite_ledger: str) -> None:
    rev = refused_move(sqlite_ledger)
    refused_move(sqlite_ledger, "CRM-R2", account="CT99999902")
    make_overdue(sqlite_ledger, rev)
    with db.session_scope(sqlite_ledger) as session:
        session.get(WorkItem, rev).state = "done"
    with smtp_sink() as sink:
        stats = escalation.escalate_overdue(url=sqlite_ledger,
                                            settings=mail.SmtpSettings(host=sink.host, port=sink.port))
    assert stats.items == 0 and sink.messages == []
