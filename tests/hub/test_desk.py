"""The work desk's rules: who sees what, each action with its audit row, CRM write-backs, SLAs."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hub import desk
from hub.accounts import StaffUser
from hub.ledger import db
from hub.ledger.models import AuditEntry, Command, OutboxMessage, WorkItem, utcnow
from tests.web.ledger_rows import refused_move, waste_item

REVENUES = StaffUser(1, "rev.officer", "Rev Officer", "member", frozenset({"revenues"}))
WASTE = StaffUser(2, "waste.officer", "Waste Officer", "member", frozenset({"waste"}))
OPS = StaffUser(3, "ops.analyst", "Ops Analyst", "operations", frozenset({"operations"}))


def audit_rows(url: str, item_id: int) -> list[tuple[str, str, str | None, str | None]]:
    with db.session_scope(url) as session:
        return [(e.actor, e.action, e.state_before, e.state_after) for e in session.scalars(
            sa.select(AuditEntry).where(AuditEntry.work_item_id == item_id).order_by(AuditEntry.id))]


def outbox_rows(url: str) -> list[OutboxMessage]:
    with db.session_scope(url) as session:
        return list(session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_team_member_never_sees_another_teams_item(ledger_url: str) -> None:
    rev_item = refused_move(ledger_url)
    waste = waste_item(ledger_url)
    with db.session_scope(ledger_url) as session:
        rows, total = desk.queue(session, WASTE, desk.QueueFilter(state="all"))
        assert [r.item.id for r in rows] == [waste] and total == 1
        searched, found = desk.queue(session, WASTE, desk.QueueFilter(q=f"#{rev_item}", state="all"))
        assert searched == [] and found == 0
        assert desk.queue(session, WASTE, desk.QueueFilter(q="CRM-R1"))[1] == 0
        assert desk.team_counts(session, WASTE) == {"waste": {"active": 1, "overdue": 0}}
        assert "revenues_northgate" not in desk.filter_choices(session, WASTE)["systems"]
        with pytest.raises(desk.Forbidden):
            desk.view_item(session, WASTE, rev_item)
        for action in (lambda: desk.claim(session, WASTE, rev_item),
                       lambda: desk.comment(session, WASTE, rev_item, "hello"),
                       lambda: desk.resolve(session, WASTE, rev_item, "keyed_manually"),
                       lambda: desk.cancel(session, WASTE, rev_item, "not wanted any more"),
                       lambda: desk.fix_and_retry(session, WASTE, rev_item, {})):
            with pytest.raises(desk.Forbidden):
                action()
        with pytest.raises(desk.NotFound):
            desk.view_item(session, WASTE, 999_999)


def test_operations_see_every_team_but_personal_data_only_of_their_own(ledger_url: str) -> None:
    rev_item = refused_move(ledger_url)
    with db.session_scope(ledger_url) as session:
        rows, _ = desk.queue(session, OPS, desk.QueueFilter())
        assert [r.item.id for r in rows] == [rev_item]
        seen = desk.view_item(session, OPS, rev_item)
        assert not seen.personal and seen.case_data is None and seen.payload is None
        assert not seen.can_fix, "correcting needs the personal data: owning team only"
        owner = desk.view_item(session, REVENUES, rev_item)
        assert owner.personal and owner.case_data["customer"]["name"] == "Test Person"
        assert owner.can_fix and {f.name for f in owner.fix_fields} >= {"account_ref", "moved_on"}


def test_claim_unassign_and_comment_are_audited(ledger_url: str) -> None:
    item_id = refused_move(ledger_url)
    other = StaffUser(9, "rev.two", "Rev Two", "member", frozenset({"revenues"}))
    with db.session_scope(ledger_url) as session:
        desk.claim(session, REVENUES, item_id)
    with db.session_scope(ledger_url) as session:
        with pytest.raises(desk.Conflict, match="rev.officer is working on this item"):
            desk.claim(session, other, item_id)
        desk.comment(session, other, item_id, "Phoned the customer, account number was mistyped")
        desk.unassign(session, other, item_id)
        with pytest.raises(desk.Invalid):
            desk.comment(session, other, item_id, "   ")
    assert audit_rows(ledger_url, item_id) == [
        ("rev.officer", "claimed", "open", "in_progress"),
        ("rev.two", "commented", "in_progress", "in_progress"),
        ("rev.two", "unassigned", "in_progress", "open")]
    with db.session_scope(ledger_url) as session:
        detail = session.scalar(sa.select(AuditEntry.detail).where(AuditEntry.action == "commented"))
    assert "customer" not in detail, "the audit trail never copies the comment's text"


def test_resolving_tells_the_crm_through_the_outbox(ledger_url: str) -> None:
    item_id = refused_move(ledger_url)
    with db.session_scope(ledger_url) as session:
        with pytest.raises(desk.Invalid):
            desk.resolve(session, REVENUES, item_id, "made_up_code")
        desk.resolve(session, REVENUES, item_id, "keyed_manually", "Move keyed from the form")
    with db.session_scope(ledger_url) as session:
        item = session.get(WorkItem, item_id)
        assert (item.state, item.resolution_code, item.assigned_to) == ("done", "keyed_manually", "rev.officer")
        with pytest.raises(desk.Conflict):
            desk.resolve(session, REVENUES, item_id, "duplicate")
    message = outbox_rows(ledger_url)[-1]
    assert (message.kind, message.status, message.crm_id) == ("resolution", "completed", "CRM-R1")
    assert "Entered in the back office by hand" in message.note and "Move keyed" in message.note
    assert audit_rows(ledger_url, item_id)[-1] == ("rev.officer", "resolved", "open", "done")


def test_cancelling_stops_the_command_and_tells_the_crm_why(ledger_url: str) -> None:
    item_id = refused_move(ledger_url)
    with db.session_scope(ledger_url) as session:
        with pytest.raises(desk.Invalid):
            desk.cancel(session, REVENUES, item_id, "")
        desk.cancel(session, REVENUES, item_id, "Customer has not moved after all")
    with db.session_scope(ledger_url) as session:
        item = session.get(WorkItem, item_id)
        command = session.get(Command, item.command_id)
        assert (item.state, command.state) == ("cancelled", "cancelled")
    message = outbox_rows(ledger_url)[-1]
    assert message.status == "rejected" and "Customer has not moved after all" in message.note
    actions = [a[1] for a in audit_rows(ledger_url, item_id)]
    assert actions == ["command_cancelled", "cancelled"]


def test_fix_and_retry_validates_and_queues_one_new_command(ledger_url: str) -> None:
    item_id = refused_move(ledger_url)
    with db.session_scope(ledger_url) as session:
        form = {f.name: f.value for f in desk.view_item(session, REVENUES, item_id).fix_fields}
    with db.session_scope(ledger_url) as session:
        with pytest.raises(desk.Invalid) as bad:
            desk.fix_and_retry(session, REVENUES, item_id, {**form, "account_ref": "CT123"})
        assert list(bad.value.errors) == ["account_ref"]
        assert "CT123" not in str(bad.value.errors), "errors never echo the value"
        with pytest.raises(desk.Invalid, match="Nothing was changed"):
            desk.fix_and_retry(session, REVENUES, item_id, form)
        with pytest.raises(desk.Invalid) as dated:
            desk.fix_and_retry(session, REVENUES, item_id, {**form, "moved_on": "31/02/2026"})
        assert list(dated.value.errors) == ["moved_on"]
        resend = desk.fix_and_retry(session, REVENUES, item_id, {**form, "account_ref": "CT00000005"})
        resend_id, original_key = resend.id, session.get(WorkItem, item_id).command_id
    with db.session_scope(ledger_url) as session:
        new = session.get(Command, resend_id)
        old = session.get(Command, original_key)
        assert new.state == "pending" and new.key == f"{old.key}.f1"
        assert new.payload["account_ref"] == "CT00000005" and new.replaces_command_id == old.id
        assert old.state == "rejected", "the refused command stays as it was"
        with pytest.raises(desk.Conflict):
            desk.fix_and_retry(session, REVENUES, item_id, {**form, "account_ref": "CT00000006"})
    assert outbox_rows(ledger_url)[-1].status == "in_progress"
    assert [a[1] for a in audit_rows(ledger_url, item_id)][-2:] == ["command_created", "fixed_and_resent"]


def test_items_are_due_by_their_kinds_sla_and_sorted_by_it(ledger_url: str) -> None:
    first = refused_move(ledger_url, "CRM-R1")
    second = refused_move(ledger_url, "CRM-R2", account="CT99999902")
    with db.session_scope(ledger_url) as session:
        one = session.get(WorkItem, first)
        assert one.due_at - one.created_at == timedelta(hours=48)
        session.get(WorkItem, second).due_at = utcnow() - timedelta(hours=1)
    with db.session_scope(ledger_url) as session:
        rows, _ = desk.queue(session, REVENUES, desk.QueueFilter())
        assert [r.item.id for r in rows] == [second, first]
        assert [r.overdue for r in rows] == [True, False]
        assert [r.item.id for r in desk.queue(session, REVENUES, desk.QueueFilter(overdue=True))[0]] == [second]
        assert desk.team_counts(session, REVENUES)["revenues"] == {"active": 2, "overdue": 1}


def test_queue_filters(ledger_url: str) -> None:
    first = refused_move(ledger_url, "CRM-R1")
    refused_move(ledger_url, "CRM-R2", account="CT99999902")
    with db.session_scope(ledger_url) as session:
        desk.claim(session, REVENUES, first)
        session.get(WorkItem, first).created_at = utcnow() - timedelta(days=4)

    def ids(**kwargs) -> list[int]:  # type: ignore[no-untyped-def]
        with db.session_scope(ledger_url) as session:
            return [r.item.id for r in desk.queue(session, REVENUES, desk.QueueFilter(**kwargs))[0]]

    assert ids(assignee="me") == [first]
    assert first not in ids(assignee="unassigned")
    assert ids(age="3d") == [first] and ids(age="7d") == []
    assert ids(state="in_progress") == [first]
    assert ids(kind="invalid_case") == []
    assert ids(system="revenues_northgate", q="CRM-R1") == [first]
