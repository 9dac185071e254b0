"""hub.ledger.bulk: many rows by primary key in one statement, the same answers on every database."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from hub.ledger import bulk, db
from hub.ledger.models import Case, Command, OutboxMessage, utcnow


def _commands(url: str, n: int) -> list[int]:
    now = utcnow()
    with db.session_scope(url) as session:
        case = Case(crm_id="CRM-1", version=1, case_type="t", source="pull", state="mapped",
                    payload={"a": 1}, received_at=now)
        session.add(case)
        session.flush()
        rows = [Command(case_id=case.id, system="s", operation="op", key=f"k{i}",
                        payload={"i": i}, state="sending", claim_token="tok", created_at=now,
                        updated_at=now) for i in range(n)]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


@contextlib.contextmanager
def _statements(url: str) -> Iterator[list[str]]:
    """The statements sent to the database meanwhile (an executemany counts once)."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(db.engine(url), "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine(url), "before_cursor_execute", record)


@pytest.mark.parametrize("n", [3, 60])
def test_update_by_id_sets_each_row_in_one_statement(ledger_url: str, n: int) -> None:
    ids = _commands(ledger_url, n + 1)
    due = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    rows = [{"id": i, "state": "confirmed" if k % 2 else "rejected",
             "reference": f"R{k}" if k % 3 else None, "message": "naïve – ünïcode" if k == 1 else None,
             "held": k % 2 == 0, "attempts": k, "due_by": due + timedelta(minutes=k) if k % 2 else None,
             "claim_token": None} for k, i in enumerate(ids[:n])]
    rows.append({"id": 10 ** 9, "state": "confirmed", "reference": "none", "message": None,
                 "held": False, "attempts": 0, "due_by": None, "claim_token": None})  # not there
    with _statements(ledger_url) as seen, db.session_scope(ledger_url) as session:
        bulk.update_by_id(session, Command.__table__, rows,
                          ("state", "reference", "message", "held", "attempts", "due_by",
                           "claim_token"))
    assert len(seen) == 1   # one statement (one executemany on SQLite) whatever the rows
    if ledger_url.startswith("postgresql"):
        assert "unnest(" in seen[0]   # one statement for the server too, not one per row
    with db.session_scope(ledger_url) as session:
        got = {c.id: c for c in session.scalars(select(Command))}
    assert len(got) == n + 1
    for row in rows[:-1]:
        command = got[row["id"]]
        for name in ("state", "reference", "message", "held", "attempts", "due_by", "claim_token"):
            assert getattr(command, name) == row[name], name
    untouched = got[ids[n]]   # a row not in the list keeps its values
    assert (untouched.state, untouched.claim_token) == ("sending", "tok")


def test_update_by_id_with_no_rows_sends_nothing(ledger_url: str) -> None:
    with _statements(ledger_url) as seen, db.session_scope(ledger_url) as session:
        bulk.update_by_id(session, Command.__table__, [], ("state",))
    assert seen == []


def test_insert_new_returning_skips_taken_keys(ledger_url: str) -> None:
    now = utcnow()
    with db.session_scope(ledger_url) as session:
        case = Case(crm_id="CRM-2", version=1, case_type="t", source="pull", state="mapped",
                    payload=None, received_at=now)
        session.add(case)
        session.flush()
        case_id = case.id

    def row(key: str, note: str) -> dict:
        return {"dedupe_key": key, "case_id": case_id, "command_id": None, "crm_id": "CRM-2",
                "system": None, "kind": "outcome", "status": "completed", "note": note,
                "backoffice_reference": None, "state": "pending", "attempts": 0,
                "next_attempt_at": None, "created_at": now}

    table = OutboxMessage.__table__
    with db.session_scope(ledger_url) as session:
        first = bulk.insert_new_returning(session, table, [row("a", "one"), row("b", "two")],
                                          conflict=("dedupe_key",), returning=("dedupe_key",))
    assert sorted(first) == [("a",), ("b",)]
    with _statements(ledger_url) as seen, db.session_scope(ledger_url) as session:
        second = bulk.insert_new_returning(session, table, [row("b", "again"), row("c", "ünï")],
                                           conflict=("dedupe_key",), returning=("dedupe_key",))
    assert second == [("c",)]
    assert len(seen) == 1
    if ledger_url.startswith("postgresql"):
        assert "unnest(" in seen[0]
    with db.session_scope(ledger_url) as session:
        notes = {key: note for key, note in session.execute(select(table.c.dedupe_key, table.c.note))}
    assert notes == {"a": "one", "b": "two", "c": "ünï"}   # the first "b" kept
