"""A reconciliation run against a real ledger (SQLite, PostgreSQL and MariaDB) and in-memory sides: each
class found, safe ones healed once, the rest work items once, runs stored; two runs at once or one
after another never apply an effect twice."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from hub import dispatch, outbox
from hub.ledger import db
from hub.ledger.models import (Case, Command, OutboxMessage, ReconcileFinding, ReconcileRun,
                               WorkItem)
from hub.reconcile import engine
from tests.hub import factories
from tests.hub.reconcile.fakes import MemoryBackOffice, MemoryCrm
from tests.support.threads import at_once

SYSTEM = "revenues_northgate"


def _world(url: str, cases: int = 7) -> tuple[MemoryBackOffice, MemoryCrm, list[Command]]:
    factories.receive_and_map(url, cases)
    office, crm = MemoryBackOffice(), MemoryCrm()
    dispatch.dispatch_all(office, SYSTEM, url=url)
    outbox.deliver_pending(crm, url=url)
    return office, crm, factories.rows(url, Command)


def _drift(url: str, office: MemoryBackOffice, crm: MemoryCrm, commands: list[Command]) -> None:
    """One drift of each class."""
    del office.store[commands[0].key]                                   # missing
    office.store["CRM-X.unknown.0000000000"] = replace(                 # unknown
        office.store[commands[1].key], key="CRM-X.unknown.0000000000", reference="RQ-X")
    rec = office.store[commands[2].key]                                 # field mismatch
    office.store[commands[2].key] = replace(rec, fields={**rec.fields, "moved_on": "2026-04-01"})
    rec = office.store[commands[3].key]                                 # later status
    office.store[commands[3].key] = replace(rec, status="CANCELLED", crm_status="rejected",
                                            changed_at=datetime.now(timezone.utc) + timedelta(seconds=1))
    crm.lose_writebacks(commands[4].case.crm_id if False else _crm_id(url, commands[4]))
    with db.session_scope(url) as session:                              # stuck
        session.execute(sa.update(Command).where(Command.id == commands[5].id).values(
            state="sending", claimed_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    factories.receive(url, "CRM-UNMAPPED", factories.coa_data("CT99999999"))   # unmapped
    with db.session_scope(url) as session:
        session.execute(sa.update(Case).where(Case.crm_id == "CRM-UNMAPPED").values(
            received_at=datetime.now(timezone.utc) - timedelta(hours=3)))


def _crm_id(url: str, command: Command) -> str:
    with db.session_scope(url) as session:
        return session.get(Case, command.case_id).crm_id


def test_a_run_finds_each_class_heals_the_safe_ones_and_a_rerun_finds_nothing_new(
        ledger_url: str) -> None:
    office, crm, commands = _world(ledger_url)
    _drift(ledger_url, office, crm, commands)
    creates, applied = office.creates, crm.applied

    report = engine.reconcile_system(SYSTEM, connector=office, crm=crm, url=ledger_url)
    assert report.status == "finished"
    assert report.found == {"missing_in_backoffice": 1, "unknown_in_backoffice": 1,
                            "field_mismatch": 1, "status_not_in_crm": 1,
                            "writeback_missing": 1, "stuck": 1, "unmapped_case": 1}
    assert report.new == report.found
    assert report.healed == 4 and report.work_items == 3
    assert report.compared["ledger"] == 7 and report.compared["backoffice"] == 7
    # healed: the lost write-back applied again (same key), the stuck one settled by look-up,
    # the missing one back to pending for dispatch, the unmapped case mapped
    assert crm.applied >= applied + 1
    assert crm.cases[_crm_id(ledger_url, commands[4])]["status"] == "completed"
    by_id = {c.id: c for c in factories.rows(ledger_url, Command)}
    assert by_id[commands[0].id].state == "pending" and by_id[commands[0].id].maybe_sent
    assert by_id[commands[5].id].state == "confirmed"
    with db.session_scope(ledger_url) as session:
        assert session.scalar(sa.select(Case.state).where(Case.crm_id == "CRM-UNMAPPED")) == "mapped"
        items = list(session.scalars(sa.select(WorkItem).where(WorkItem.kind.like("reconcile_%"))))
        assert sorted(i.kind for i in items) == ["reconcile_field_mismatch",
                                                 "reconcile_status_not_in_crm",
                                                 "reconcile_unknown_in_backoffice"]
        assert all(i.team == "revenues" for i in items)
        mismatch = next(i for i in items if i.kind == "reconcile_field_mismatch")
        assert "moved_on" in mismatch.reason and "2026-04-01" not in mismatch.reason
        run = session.get(ReconcileRun, report.run)
        assert (run.status, run.healed, run.work_items_opened, run.new_findings) == ("finished", 4, 3, 7)
        assert run.findings_by_class["field_mismatch"] == 1

    dispatch.dispatch_all(office, SYSTEM, url=ledger_url)   # the normal path resends the missing one
    assert office.creates == creates + 2                     # it, and the newly mapped case
    outbox.deliver_pending(crm, url=ledger_url)

    again = engine.reconcile_system(SYSTEM, connector=office, crm=crm, url=ledger_url)
    assert again.new == {} and again.healed == 0 and again.work_items == 0
    assert again.found == {"unknown_in_backoffice": 1, "field_mismatch": 1, "status_not_in_crm": 1}
    assert office.creates == creates + 2


def test_dry_run_reports_and_changes_nothing(ledger_url: str) -> None:
    office, crm, commands = _world(ledger_url)
    _drift(ledger_url, office, crm, commands)
    before = {c.id: c.state for c in factories.rows(ledger_url, Command)}
    applied = crm.applied
    report = engine.reconcile_system(SYSTEM, connector=office, crm=crm, url=ledger_url,
                                     dry_run=True)
    assert sum(report.found.values()) == 7 and report.healed == 0 and report.work_items == 0
    assert {c.id: c.state for c in factories.rows(ledger_url, Command)} == before
    assert crm.applied == applied and not factories.rows(ledger_url, WorkItem)
    outcomes = {f.outcome for f in factories.rows(ledger_url, ReconcileFinding)}
    assert outcomes == {"reported"}
    # a dry run does not make the drift "known": the real run still finds it new and heals
    real = engine.reconcile_system(SYSTEM, connector=office, crm=crm, url=ledger_url)
    assert sum(real.new.values()) == 7 and real.healed == 4


def test_two_runs_at_once_apply_each_effect_once(ledger_url: str) -> None:
    office, crm, commands = _world(ledger_url)
    office.looks_first = False          # the back office would create twice if asked twice
    _drift(ledger_url, office, crm, commands)
    creates, applied = office.creates, crm.applied
    reports = at_once(lambda: engine.reconcile_system(SYSTEM, connector=office, crm=crm,
                                                      url=ledger_url, deliver=False))
    for _ in range(2):
        dispatch.dispatch_all(office, SYSTEM, url=ledger_url)
    assert office.creates == creates + 2          # the missing record and the unmapped case, once
    assert crm.applied == applied + 1             # the lost write-back, once
    items = [(w.kind, w.dedupe_key) for w in factories.rows(ledger_url, WorkItem)
             if w.kind.startswith("reconcile_")]
    assert len(items) == 3, (items, [(r.found, r.new, r.healed) for r in reports])
    # and one after another: a third run heals nothing more
    third = engine.reconcile_system(SYSTEM, connector=office, crm=crm, url=ledger_url)
    assert third.healed == 0 and third.work_items == 0
    for _ in range(2):
        dispatch.dispatch_all(office, SYSTEM, url=ledger_url)
    assert office.creates == creates + 2
    repeated = {k: crm.history.count(k) for k in crm.history if crm.history.count(k) > 1}
    assert list(repeated.values()) == [2], "only the lost write-back, applied once more"


def test_a_connector_that_cannot_list_leaves_the_back_office_out(ledger_url: str) -> None:
    office, crm, commands = _world(ledger_url, cases=2)

    class Unlisted(MemoryBackOffice):
        def records(self, *, since=None, page_size=500):  # noqa: ANN001, ANN202
            raise NotImplementedError("no listing")

    report = engine.reconcile_system(SYSTEM, connector=Unlisted(), crm=crm, url=ledger_url)
    assert report.found == {} and "cannot list" in (report.error or "")


def test_a_resent_record_is_written_back_with_its_new_reference_once(ledger_url: str) -> None:
    office, crm, commands = _world(ledger_url, cases=2)
    gone = commands[0]
    old_reference = office.store.pop(gone.key).reference
    engine.reconcile_system(SYSTEM, connector=office, crm=crm, url=ledger_url)
    dispatch.dispatch_all(office, SYSTEM, url=ledger_url)
    outbox.deliver_pending(crm, url=ledger_url)
    crm_id = _crm_id(ledger_url, gone)
    new_reference = office.store[gone.key].reference
    assert new_reference != old_reference
    assert crm.cases[crm_id]["ref"] == new_reference, "the CRM is told the new reference"
    again = engine.reconcile_system(SYSTEM, connector=office, crm=crm, url=ledger_url)
    dispatch.dispatch_all(office, SYSTEM, url=ledger_url)
    outbox.deliver_pending(crm, url=ledger_url)
    assert again.found == {} and again.healed == 0
    assert sum(1 for k in crm.history if crm.cases.get(crm_id)) and \
        len([k for k in crm.history if k in {f"hub-outbox-{m.id}" for m in factories.rows(
            ledger_url, OutboxMessage) if m.crm_id == crm_id}]) == 2, "two outcomes, each once"


def test_keys_merge_in_code_point_order_whatever_the_database_collation(ledger_url: str) -> None:
    """Keys that a case-insensitive collation (MariaDB's default) orders differently from
    Python: the ledger is read in code-point order, so nothing is reported missing or unknown."""
    office, crm, commands = _world(ledger_url, cases=4)
    renamed = dict(zip([c.key for c in commands], ["a-case.step.0", "B-case.step.0",
                                                    "_case.step.0", "Z-case.step.0"]))
    with db.session_scope(ledger_url) as session:
        for old, new in renamed.items():
            session.execute(sa.update(Command).where(Command.key == old).values(key=new))
    for old, new in renamed.items():
        office.store[new] = replace(office.store.pop(old), key=new)
    assert sorted(renamed.values()) != sorted(renamed.values(), key=str.lower)
    report = engine.reconcile_system(SYSTEM, connector=office, crm=crm, url=ledger_url)
    assert report.found == {} and report.compared["ledger"] == 4, report
