"""The ledger schema and its idempotency on CRM id + version, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from hub.ledger import db
from hub.ledger.models import Case, Command, utcnow
from tests.hub.factories import coa_data, receive


def test_migrations_create_every_table_and_are_repeatable(ledger_url: str) -> None:
    db.migrate(ledger_url)   # a second upgrade is a no-op
    names = set(sa.inspect(db.engine(ledger_url)).get_table_names())
    assert {"cases", "commands", "attempts", "outbox", "work_items", "cursors",
            "webhook_deliveries", "inbound_rejections", "backoffice_updates"} <= names


def test_a_case_version_is_recorded_once(ledger_url: str) -> None:
    assert receive(ledger_url, "CRM-1", coa_data()) is True
    assert receive(ledger_url, "CRM-1", coa_data()) is False
    assert receive(ledger_url, "CRM-1", coa_data(), version=2) is True
    with db.session_scope(ledger_url) as session:
        rows = session.execute(sa.select(Case.crm_id, Case.version).order_by(Case.version)).all()
    assert [tuple(r) for r in rows] == [("CRM-1", 1), ("CRM-1", 2)]


def test_database_refuses_a_duplicate_case_version(ledger_url: str) -> None:
    receive(ledger_url, "CRM-2", coa_data())
    with pytest.raises(sa.exc.IntegrityError):
        with db.session_scope(ledger_url) as session:
            session.add(Case(crm_id="CRM-2", version=1, case_type="x", source="pull",
                             received_at=utcnow()))


def test_command_keys_are_unique(ledger_url: str) -> None:
    receive(ledger_url, "CRM-3", coa_data())
    with db.session_scope(ledger_url) as session:
        case_id = session.scalar(sa.select(Case.id))
    with pytest.raises(sa.exc.IntegrityError):
        with db.session_scope(ledger_url) as session:
            for _ in range(2):
                session.add(Command(case_id=case_id, system="revenues_northgate", operation="op",
                                    key="SAME-KEY", payload={}))
                session.flush()


def test_times_are_stored_and_read_as_utc(ledger_url: str) -> None:
    receive(ledger_url, "CRM-4", coa_data())
    with db.session_scope(ledger_url) as session:
        received = session.scalar(sa.select(Case.received_at))
    assert received.tzinfo is not None and received.utcoffset().total_seconds() == 0
    with pytest.raises(sa.exc.StatementError):
        with db.session_scope(ledger_url) as session:
            session.add(Case(crm_id="CRM-5", version=1, case_type="x", source="pull",
                             received_at=datetime(2026, 1, 1)))


@pytest.mark.postgres
def test_a_pooled_connection_dropped_while_idle_is_replaced_not_used(
        postgres_ledger_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ping per transaction on PostgreSQL, but a connection idle past the window is pinged:
    one the server dropped meanwhile (a restart, an idle timeout) is replaced before use."""
    url = postgres_ledger_database
    pings: list[object] = []
    ping = db._ping_connection

    def counted(dbapi_conn: object) -> None:
        pings.append(dbapi_conn)
        ping(dbapi_conn)

    monkeypatch.setattr(db, "_ping_connection", counted)
    engine = db.engine(url)
    engine.dispose()
    try:
        with db.session_scope(url) as session:
            pid = session.scalar(sa.text("SELECT pg_backend_pid()"))
        for _ in range(3):   # back to back: no ping
            with db.session_scope(url) as session:
                assert session.scalar(sa.text("SELECT pg_backend_pid()")) == pid
        assert pings == []
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
        with db.session_scope(url) as session:
            assert session.scalar(sa.text("SELECT pg_backend_pid()")) != pid
        assert pings                # the dropped connection was pinged, and replaced
    finally:
        engine.dispose()
