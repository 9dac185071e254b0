"""`hub check`: a ledger the hub wrote is consistent; each impossible state is found and named."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from connectors.base import Outcome, OutcomeStatus
from hub import cli, dispatch
from hub.ledger import consistency, db
from hub.ledger.models import Command, OutboxMessage, WorkItem
from tests.conftest import _truncate
from tests.hub.factories import coa_data, receive, receive_and_map, rows
from tests.hub.scripted import ScriptedConnector
from tests.support.databases import POSTGRES_ADMIN_URL, migrated_ledger

SYSTEM = "revenues_northgate"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def private_ledger(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated ledger of this test's own, for tests that change the schema itself."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_ledger")
        return
    with migrated_ledger(POSTGRES_ADMIN_URL, "hub_check_test") as url:
        yield url


def busy_ledger(url: str) -> None:
    """Every command state the hub produces: confirmed, rejected, held, awaiting, pending, sending,
    failed, plus an invalid case."""
    receive_and_map(url, 8)
    receive(url, "CRM-BAD", coa_data(moving_date="not a date"))
    from hub import intake

    intake.map_received(url=url)
    answers = iter([OutcomeStatus.CONFIRMED, OutcomeStatus.REJECTED, OutcomeStatus.AWAITING,
                    OutcomeStatus.CONFIRMED])

    def answer(c):  # type: ignore[no-untyped-def]
        status = next(answers)
        return Outcome(c.key, status, reference=f"RQ-{c.key[-6:]}",
                       message=None if status is not OutcomeStatus.REJECTED else "no such account")
    dispatch.dispatch_batch(ScriptedConnector(answer), SYSTEM, batch_size=4, url=url)
    with db.session_scope(url) as session:   # one batch in flight, as a dump may catch it
        dispatch.claim_batch(session, SYSTEM, 2)
    with db.session_scope(url) as session:   # one command that used up its tries
        last = session.scalars(sa.select(Command).where(Command.state == "pending")).first()
        last.attempts = dispatch.MAX_ATTEMPTS
        last.next_attempt_at = None
    dispatch.dispatch_all(ScriptedConnector(lambda c: Outcome(
        c.key, OutcomeStatus.RETRY, error_class="TransientError", message="HTTP 503")), SYSTEM,
        url=url)


def codes(url: str) -> set[str]:
    return {f.code for f in consistency.check(url).findings}


def test_a_ledger_the_hub_wrote_is_consistent(ledger_url: str) -> None:
    busy_ledger(ledger_url)
    report = consistency.check(ledger_url)
    assert report.findings == []
    assert report.consistent and report.revision == report.head
    states = {c.state for c in rows(ledger_url, Command)}
    assert {"confirmed", "rejected", "awaiting", "sending", "failed", "pending"} <= states
    assert report.counts["cases"] == 9 and report.counts["commands"] == 8


@pytest.mark.parametrize(("corrupt", "code"), [
    ("UPDATE commands SET state = 'sent' WHERE id = 1", "command-state"),
    ("UPDATE commands SET claim_token = NULL WHERE state = 'sending'", "sending-unclaimed"),
    ("UPDATE commands SET due_by = NULL WHERE state = 'awaiting'", "awaiting-undue"),
    ("DELETE FROM outbox WHERE command_id = 1", "settled-unreported"),
    ("UPDATE commands SET settled_at = NULL WHERE state = 'confirmed'", "settled-untimed"),
    ("DELETE FROM work_items WHERE kind = 'backoffice_rejected'", "rejected-without-work-item"),
    ("DELETE FROM work_items WHERE kind = 'delivery_failed'", "failed-without-work-item"),
    ("UPDATE cases SET error = NULL WHERE state = 'invalid'", "invalid-case-unexplained"),
    ("UPDATE outbox SET state = 'sent', sent_at = NULL WHERE id = 1", "outbox-sent-untimed"),
    ("UPDATE work_items SET state = 'done' WHERE id = 1", "work-item-closed-untimed"),
])
def test_each_impossible_state_is_found(ledger_url: str, corrupt: str, code: str) -> None:
    busy_ledger(ledger_url)
    with db.engine(ledger_url).begin() as conn:
        assert conn.execute(sa.text(corrupt)).rowcount >= 1
    report = consistency.check(ledger_url)
    assert [f.code for f in report.findings] == [code]
    assert report.findings[0].count >= 1 and report.findings[0].ids


def test_rows_pointing_at_nothing_are_found(sqlite_ledger: str) -> None:
    """Foreign keys hold this on a live database; a restore without them (data-only, triggers
    off) can break it."""
    busy_ledger(sqlite_ledger)
    with db.engine(sqlite_ledger).connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.exec_driver_sql("DELETE FROM cases WHERE id = 1")
        conn.exec_driver_sql("UPDATE outbox SET command_id = 999 WHERE id = 2")
        conn.exec_driver_sql("UPDATE work_items SET case_id = 998 WHERE id = 1")
        conn.commit()
    assert {"command-orphan", "outbox-orphan", "work-item-orphan"} <= codes(sqlite_ledger)


def test_a_missing_index_is_schema_drift(private_ledger: str) -> None:
    with db.engine(private_ledger).begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_commands_state"))
    [finding] = consistency.check(private_ledger).findings
    assert finding.code == "schema-drift" and "ix_commands_state" in " ".join(finding.ids)


def test_a_ledger_behind_the_code_asks_for_an_upgrade(private_ledger: str) -> None:
    with db.engine(private_ledger).begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    [finding] = consistency.check(private_ledger).findings
    assert finding.code == "schema-revision" and "hub upgrade" in finding.message


@pytest.mark.postgres
def test_a_sequence_behind_its_ids_is_found(postgres_ledger_database: str) -> None:
    url = postgres_ledger_database
    _truncate(url)
    receive_and_map(url, 3)
    with db.engine(url).begin() as conn:
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('commands', 'id'), 1)"))
    [finding] = consistency.check(url).findings
    assert finding.code == "sequence-behind" and finding.ids[0].startswith("commands")


def test_cli_check_exits_non_zero_with_findings_and_never_prints_payloads(
        sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", sqlite_ledger)
    busy_ledger(sqlite_ledger)
    assert cli.main(["check"]) == 0
    assert "ledger consistent" in capsys.readouterr().out
    with db.engine(sqlite_ledger).begin() as conn:
        conn.execute(sa.delete(OutboxMessage).where(OutboxMessage.command_id.is_not(None)))
        conn.execute(sa.delete(WorkItem))
    assert cli.main(["check", "--json"]) == 1
    out = capsys.readouterr().out
    body = json.loads(out)
    assert body["consistent"] is False
    assert {f["code"] for f in body["findings"]} >= {"settled-unreported", "rejected-without-work-item"}
    assert "Test Person" not in out and "Mill Lane" not in out


def test_cli_restored_releases_and_marks_unsettled_work_then_checks(
        sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", sqlite_ledger)
    busy_ledger(sqlite_ledger)
    unsettled = [c for c in rows(sqlite_ledger, Command) if c.state in ("pending", "sending")]
    assert cli.main(["restored", "--no-pull"]) == 0
    out = capsys.readouterr().out
    sending = sum(c.state == "sending" for c in unsettled)
    assert sending and len(unsettled) > sending
    assert f"{sending} commands caught mid-send released; {len(unsettled)} unsettled commands" in out
    assert "ledger consistent" in out
    after = {c.id: c for c in rows(sqlite_ledger, Command)}
    assert all(after[c.id].state == "pending" and after[c.id].maybe_sent for c in unsettled)
    assert all(not c.maybe_sent for c in after.values() if c.state == "confirmed"), \
        "settled work is left as it is"
