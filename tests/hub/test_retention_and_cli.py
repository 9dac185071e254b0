"""Retention blanks personal data of finished work only; the CLI re-maps fixed invalid cases."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hub import cli, dispatch, intake, retention
from hub.ledger import db
from hub.ledger.models import Case, Command, utcnow
from tests.hub.factories import coa_data, receive, receive_and_map
from tests.hub.scripted import ScriptedConnector


def test_purge_blanks_finished_work_and_keeps_open_work(ledger_url: str) -> None:
    receive_and_map(ledger_url, 2)
    with db.session_scope(ledger_url) as session:
        _, claimed = dispatch.claim_batch(session, "revenues_northgate", 1)   # first stays in flight
    dispatch.dispatch_all(ScriptedConnector(), "revenues_northgate", url=ledger_url)
    with db.session_scope(ledger_url) as session:
        old = utcnow() - timedelta(days=120)
        session.execute(sa.update(Case).values(received_at=old))
        session.execute(sa.update(Command).values(updated_at=old))
    stats = retention.purge_personal_data(days=90, url=ledger_url)
    assert (stats.cases, stats.commands) == (1, 1)
    with db.session_scope(ledger_url) as session:
        cases = {c.crm_id: c for c in session.scalars(sa.select(Case))}
        commands = list(session.scalars(sa.select(Command).order_by(Command.id)))
    assert cases["CRM-T0000"].payload is not None, "in-flight work keeps its data"
    assert cases["CRM-T0001"].payload is None and cases["CRM-T0001"].purged_at is not None
    assert commands[0].payload is not None and commands[1].payload is None
    assert commands[1].reference, "references stay for audit"


def test_remap_invalid_picks_up_fixed_mappings(sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", sqlite_ledger)
    receive(sqlite_ledger, "CRM-R1", coa_data(), case_type="ctax_change_of_adress")   # misspelt
    intake.map_received(url=sqlite_ledger)
    with db.session_scope(sqlite_ledger) as session:
        session.execute(sa.update(Case).values(case_type="ctax_change_of_address"))   # fixed in CRM data
    assert cli.main(["remap-invalid"]) == 0
    with db.session_scope(sqlite_ledger) as session:
        [case] = session.scalars(sa.select(Case))
        assert case.state == "mapped"
        assert session.scalar(sa.select(sa.func.count(Command.id))) == 1
