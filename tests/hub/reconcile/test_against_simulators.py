"""Two reconciliation runs at once against the real Revenues and CRM simulators (SOAP and REST over
sockets), on SQLite, PostgreSQL and MariaDB: the record deleted behind the hub's back is created again once,
the write-back the CRM lost is applied again once, and a later run changes nothing more."""
from __future__ import annotations

from pathlib import Path

import httpx

from crm_adapter.rest import CrmClient
from hub import dispatch, intake, outbox
from hub.ledger.models import Case, Command
from hub.reconcile import engine
from simulators.crm.app import create_app as crm_app
from simulators.serving import serve_in_thread
from tests.connectors.revenues.harness import running_simulator
from tests.hub import factories
from tests.hub.factories import coa_data
from tests.support.threads import at_once

TOKEN = "crm-reconcile-token"
SYSTEM = "revenues_northgate"


def test_two_runs_at_once_against_the_simulators_apply_each_effect_once(
        ledger_url: str, tmp_path: Path) -> None:
    with running_simulator(tmp_path / "revenues.db") as revenues, \
            serve_in_thread(crm_app(tmp_path / "crm.db", token=TOKEN)) as crm_url:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for n in range(1, 4):
            httpx.put(f"{crm_url}/api/v1/cases/CRM-R{n}", headers=auth, timeout=10,
                      json={"case_type": "ctax_change_of_address",
                            "data": coa_data(f"CT{n:08d}")}).raise_for_status()
        with CrmClient(crm_url, TOKEN) as crm:
            intake.pull_from_crm(crm, url=ledger_url)
            intake.map_received(url=ledger_url)
            connector = revenues.connector()
            dispatch.dispatch_all(connector, SYSTEM, url=ledger_url)
            outbox.deliver_pending(crm, url=ledger_url)
        commands = [c for c in factories.rows(ledger_url, Command) if c.state == "confirmed"]
        assert len(commands) == 3
        gone, lost = commands[0], commands[1]
        httpx.delete(f"{revenues.url}/admin/drift/records/{gone.reference}",
                     timeout=10).raise_for_status()
        lost_case = next(c.crm_id for c in factories.rows(ledger_url, Case) if c.id == lost.case_id)
        httpx.post(f"{crm_url}/admin/cases/{lost_case}/lose-writeback",
                   timeout=10).raise_for_status()
        effects = revenues.effects()
        applied = httpx.get(f"{crm_url}/admin/stats", timeout=10).json()["writebacks_applied"]

        def run() -> engine.RunReport:
            with CrmClient(crm_url, TOKEN) as client:
                return engine.reconcile_system(SYSTEM, connector=revenues.connector(), crm=client,
                                               url=ledger_url, deliver=False)

        reports = at_once(run)
        assert sum(r.found.get("missing_in_backoffice", 0) for r in reports) >= 1
        assert sum(r.healed for r in reports) == 2, "one run healed each, the other found it done"

        def settle() -> None:
            for _ in range(2):
                dispatch.dispatch_all(revenues.connector(), SYSTEM, url=ledger_url)
            with CrmClient(crm_url, TOKEN) as crm:
                outbox.deliver_pending(crm, url=ledger_url)
        settle()
        created = revenues.effects() - effects
        assert created >= 1
        listed = [r for r in revenues.connector().records() if r.key == gone.key]
        assert len(listed) == 1, "the deleted record exists again, once"
        stats = httpx.get(f"{crm_url}/admin/stats", timeout=10).json()
        # the lost write-back applied once more, and the resent record's new reference once
        assert stats["writebacks_applied"] == applied + 2

        with CrmClient(crm_url, TOKEN) as client:
            later = engine.reconcile_system(SYSTEM, connector=revenues.connector(), crm=client,
                                            url=ledger_url)
        settle()
        assert later.found == {} and later.healed == 0
        assert revenues.effects() - effects == created
        assert httpx.get(f"{crm_url}/admin/stats", timeout=10).json()["writebacks_applied"] \
            == applied + 2
