"""Reconciliation against the real Housing and CRM simulators: a job's status counts as newer than
the hub's write-back only when its status changed after it (the job's ``status_changed_at``), so
a change to another field behind the hub's back is a field mismatch and nothing more."""
from __future__ import annotations

from pathlib import Path

import httpx

from connectors.base import Command, OutcomeStatus
from crm_adapter.models import WriteBack
from crm_adapter.rest import CrmClient
from hub.ledger.db import session_scope
from hub.ledger.models import Case, Command as CommandRow, OutboxMessage
from hub.reconcile.engine import reconcile_system
from simulators.crm.app import create_app as crm_app
from simulators.housing.app import create_app as housing_app
from simulators.serving import serve_in_thread
from tests.connectors.housing.test_contract import CLIENT_ID, SECRET, RepairsHarness

TOKEN = "crm-housing-token"
SYSTEM = "housing_repairs"


def _delivered(url: str, crm: CrmClient, crm_url: str, command: Command, reference: str) -> None:
    """The ledger's confirmed command with its write-back sent, and the CRM case holding it."""
    with session_scope(url) as session:
        case = Case(crm_id=command.case_ref, version=1, case_type="t", source="pull",
                    state="mapped")
        session.add(case)
        session.flush()
        row = CommandRow(case_id=case.id, system=SYSTEM, operation=command.operation,
                         key=command.key, payload=dict(command.payload), state="confirmed",
                         reference=reference)
        session.add(row)
        session.flush()
        session.add(OutboxMessage(dedupe_key=f"outcome:{command.key}", case_id=case.id,
                                  command_id=row.id, crm_id=command.case_ref, system=SYSTEM,
                                  kind="outcome", status="completed", note="done",
                                  backoffice_reference=reference, state="sent"))
    httpx.put(f"{crm_url}/api/v1/cases/{command.case_ref}", timeout=10,
              headers={"Authorization": f"Bearer {TOKEN}"},
              json={"case_type": "t", "data": {}}).raise_for_status()
    crm.write_back(command.case_ref, WriteBack(
        idempotency_key=f"outcome:{command.key}", status="completed", note="done",
        backoffice_reference=reference, backoffice_system=SYSTEM))


def test_a_field_change_is_a_field_mismatch_and_only_a_status_change_is_a_newer_status(
        ledger_url: str, tmp_path: Path) -> None:
    housing = housing_app(tmp_path / "housing.db", client_id=CLIENT_ID, client_secret=SECRET,
                          seed_demo=True)
    with serve_in_thread(housing) as housing_url, \
            serve_in_thread(crm_app(tmp_path / "crm.db", token=TOKEN)) as crm_url, \
            CrmClient(crm_url, TOKEN) as crm:
        harness = RepairsHarness(housing_url)
        commands = [harness.command(1), harness.command(2)]
        outcomes = harness.connector().submit(commands)
        assert all(o.status is OutcomeStatus.CONFIRMED for o in outcomes), outcomes
        for command, outcome in zip(commands, outcomes):
            _delivered(ledger_url, crm, crm_url, command, outcome.reference)
        first, second = (f"{housing_url}/admin/drift/records/{o.reference}" for o in outcomes)

        def found() -> dict[str, int]:
            return reconcile_system(SYSTEM, connector=harness.connector(), crm=crm,
                                    url=ledger_url, dry_run=True).found

        assert found() == {}, "read back as sent: nothing"
        httpx.post(first, json={"fields": {"room": "loft"}}, timeout=10).raise_for_status()
        assert found() == {"field_mismatch": 1}, "the job was updated, its status was not"
        httpx.post(second, json={"status": "ON_HOLD"}, timeout=10).raise_for_status()
        assert found() == {"field_mismatch": 1, "status_not_in_crm": 1}
        httpx.post(first, json={"status": "NO_ACCESS"}, timeout=10).raise_for_status()
        assert found() == {"field_mismatch": 1, "status_not_in_crm": 2}
    housing.state.store.close()
