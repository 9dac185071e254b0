"""Batch intake and batch settlement: the same ledger as one row at a time, in a few statements."""
from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from connectors.base import Command as Cmd
from connectors.base import Outcome, OutcomeStatus
from crm_adapter.models import CrmCase
from hub import dispatch, intake, outbox
from hub.ledger import db
from hub.ledger.models import Attempt, Case, Command, OutboxMessage, WorkItem
from tests.hub.factories import coa_data, rows
from tests.hub.scripted import ScriptedConnector

SYSTEM = "revenues_northgate"
WHEN = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _case(crm_id: str, version: int = 1, **data: object) -> CrmCase:
    return CrmCase(crm_id=crm_id, version=version, case_type="ctax_change_of_address",
                   updated_at=WHEN, data=coa_data(**data))  # type: ignore[arg-type]


@contextlib.contextmanager
def counted(url: str) -> Iterator[collections.Counter[str]]:
    """Statements sent to the ledger in the block, by their first word."""
    counts: collections.Counter[str] = collections.Counter()

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        counts[statement.split()[0].upper()] += 1

    engine = db.engine(url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_record_cases_stores_each_version_once_and_says_which_are_new(ledger_url: str) -> None:
    assert intake.record_case(_case("CRM-1"), source="pull", url=ledger_url)
    batch = [_case("CRM-1"), _case("CRM-2"), _case("CRM-2"), _case("CRM-1", 2), _case("CRM-3")]
    ids = intake.record_cases(batch, source="webhook", url=ledger_url)
    assert ids[0] is None and ids[2] is None, "already recorded, or earlier in the same batch"
    stored = {(c.crm_id, c.version): c for c in rows(ledger_url, Case)}
    assert ids[1] == stored[("CRM-2", 1)].id and ids[3] == stored[("CRM-1", 2)].id
    assert ids[4] == stored[("CRM-3", 1)].id
    assert len(stored) == 4 and stored[("CRM-2", 1)].source == "webhook"
    assert stored[("CRM-2", 1)].payload == coa_data() and stored[("CRM-2", 1)].state == "received"
    assert intake.record_cases(batch, source="pull", url=ledger_url) == [None] * 5
    assert intake.record_cases([], source="pull", url=ledger_url) == []


def test_record_cases_uses_one_insert_per_batch(ledger_url: str) -> None:
    with counted(ledger_url) as counts:
        intake.record_cases([_case(f"CRM-{n}") for n in range(60)], source="pull", url=ledger_url)
    assert counts["INSERT"] == 1 and counts["SELECT"] <= 1
    assert len(rows(ledger_url, Case)) == 60


def test_a_case_the_ledger_refuses_fails_alone(ledger_url: str) -> None:
    bad = CrmCase(crm_id="CRM-BAD", version=1, case_type="ctax_change_of_address", updated_at=WHEN,
                  data={"not_json": {1, 2}})
    with pytest.raises(sa.exc.StatementError):
        intake.record_cases([_case("CRM-A"), bad, _case("CRM-B")], source="pull", url=ledger_url)
    assert sorted(c.crm_id for c in rows(ledger_url, Case)) == ["CRM-A", "CRM-B"]


def test_map_cases_in_chunks_decides_keys_as_one_at_a_time(ledger_url: str) -> None:
    # Versions of one case spread over chunks of two: A, B, A again (sent under .v3), A repeated.
    intake.record_cases([_case("CRM-7", 1, moving_date="2026-03-01"), _case("CRM-8"),
                         _case("CRM-7", 2, moving_date="2026-04-01"),
                         _case("CRM-7", 3, moving_date="2026-03-01"),
                         _case("CRM-7", 4, moving_date="2026-03-01"),
                         _case("CRM-9", account="bad account")], source="pull", url=ledger_url)
    ids = [c.id for c in rows(ledger_url, Case)]
    stats = intake.map_cases(ids, url=ledger_url, chunk_size=2)
    assert (stats.mapped, stats.invalid, stats.commands) == (5, 1, 4)
    commands = [c for c in rows(ledger_url, Command) if c.key.startswith("CRM-7")]
    assert [c.payload["moved_on"] for c in commands] == ["2026-03-01", "2026-04-01", "2026-03-01"]
    assert commands[2].key.endswith(".v3") and commands[2].key.startswith(commands[0].key[:40])
    assert {c.state for c in rows(ledger_url, Case)} == {"mapped", "invalid"}
    [item] = rows(ledger_url, WorkItem)
    assert item.kind == "invalid_case" and "CRM-9" in item.reason
    assert intake.map_cases(ids, url=ledger_url).mapped == 0, "mapped cases are not mapped again"


def _mixed(c: Cmd) -> Outcome:
    n = int(c.payload["account_ref"][-4:])
    if n % 4 == 1:
        return Outcome(c.key, OutcomeStatus.REJECTED, message="account not live", code="NotLive",
                       error_class="Rejected")
    if n % 4 == 2:
        return Outcome(c.key, OutcomeStatus.RETRY, message="HTTP 503", error_class="TransientError")
    if n % 4 == 3:
        return Outcome(c.key, OutcomeStatus.AWAITING, reference="FILE-1")
    return Outcome(c.key, OutcomeStatus.CONFIRMED, reference=f"RQ{n}")


def _dispatch_statements(url: str, size: int, prefix: str) -> int:
    intake.record_cases([_case(f"{prefix}{n:03d}", account=f"CT{n + 1:08d}") for n in range(size)],
                        source="pull", url=url)
    intake.map_received(url=url)
    with counted(url) as counts:
        stats = dispatch.dispatch_batch(ScriptedConnector(_mixed), SYSTEM, batch_size=size, url=url)
    assert stats.claimed == size
    return sum(counts.values())


def test_settling_a_batch_takes_the_same_statements_for_8_or_80_commands(ledger_url: str) -> None:
    small = _dispatch_statements(ledger_url, 8, "S")
    large = _dispatch_statements(ledger_url, 80, "L")
    assert small == large, "statements per batch do not grow with its size"
    commands = [c for c in rows(ledger_url, Command) if c.key.startswith("L")]
    assert collections.Counter(c.state for c in commands) == {
        "confirmed": 20, "rejected": 20, "pending": 20, "awaiting": 20}
    assert all(c.claim_token is None for c in commands)
    assert len(rows(ledger_url, Attempt)) == 88
    notes = rows(ledger_url, OutboxMessage)
    assert len(notes) == 44 and len({n.dedupe_key for n in notes}) == 44
    assert len([i for i in rows(ledger_url, WorkItem) if i.kind == "backoffice_rejected"]) == 22


def test_enqueue_many_skips_keys_already_queued_or_repeated(ledger_url: str) -> None:
    intake.record_cases([_case("CRM-1")], source="pull", url=ledger_url)
    with db.session_scope(ledger_url) as session:
        case = session.scalars(sa.select(Case)).one()
        outbox.enqueue(session, dedupe_key="k1", case=case, kind="outcome", status="completed",
                       note="first", system=SYSTEM)
        queued = outbox.enqueue_many(session, [
            outbox.message_row(dedupe_key=key, case=case, kind="outcome", status="completed",
                               note=note, system=SYSTEM)
            for key, note in [("k1", "again"), ("k2", "second"), ("k2", "repeat"), ("k3", "third")]])
    assert queued == 2
    assert [(m.dedupe_key, m.note) for m in rows(ledger_url, OutboxMessage)] == [
        ("k1", "first"), ("k2", "second"), ("k3", "third")]


@pytest.mark.postgres
def test_mapping_skips_cases_another_mapper_holds(postgres_ledger_database: str) -> None:
    from tests.conftest import _truncate

    url = postgres_ledger_database
    _truncate(url)
    intake.record_cases([_case("CRM-1"), _case("CRM-2")], source="pull", url=url)
    held_id, free_id = (c.id for c in rows(url, Case))
    with db.engine(url).connect() as other:
        with other.begin():
            other.execute(sa.select(Case.id).where(Case.id == held_id).with_for_update())
            stats = intake.map_cases([held_id, free_id], url=url)
        assert stats.mapped == 1
    assert {c.crm_id: c.state for c in rows(url, Case)} == {"CRM-1": "received", "CRM-2": "mapped"}
    assert intake.map_received(url=url).mapped == 1, "the held case is mapped once it is free"


def test_a_pulled_page_with_a_case_the_ledger_refuses_keeps_it_and_moves_on(
        ledger_url: str) -> None:
    """The pull records a page together; one case the ledger refuses is kept as an inbound
    rejection for operations (not pulled again for ever), the others are stored, and the page's
    cursor is stored after them."""
    from hub.ledger.models import InboundRejection

    bad = CrmCase(crm_id="CRM-BAD", version=1, case_type="ctax_change_of_address", updated_at=WHEN,
                  data={"not_json": {1, 2}})
    pages = intake._PageRecorder(intake.LedgerCursors(ledger_url), url=ledger_url)
    for case in (_case("CRM-P1"), bad, _case("CRM-P2")):
        pages.record(case)
    pages.set(intake.CRM_PULL_CURSOR, "page-1")
    assert sorted(c.crm_id for c in rows(ledger_url, Case)) == ["CRM-P1", "CRM-P2"]
    [kept] = rows(ledger_url, InboundRejection)
    assert kept.delivery_id == "pull:CRM-BAD:v1" and kept.source == "pull"
    assert [w.kind for w in rows(ledger_url, WorkItem)] == ["unreadable_input"]
    assert intake.LedgerCursors(ledger_url).get(intake.CRM_PULL_CURSOR) == "page-1"
