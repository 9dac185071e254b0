"""demo/drift.py seeds one drift of each back-office/CRM-side class in running simulators, once:
checked through the connectors' records() and the CRM's case states, as reconciliation reads them."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import Command, OutcomeStatus
from crm_adapter.models import WriteBack
from crm_adapter.rest import CrmClient
from demo import drift
from demo.systems import CrmDemo, HousingDemo, LicensingDemo, RevenuesDemo, WasteDemo
from simulators.serving import serve_in_thread

SECRETS = {"crm_token": "crm-t", "crm_webhook_secret": "w", "revenues_northgate_password": "rev-pw",
           "housing_repairs_password": "hou-pw", "waste_bartec_password": "was-pw"}


@pytest.fixture
def running(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from simulators.crm import create_app as crm_app
    from simulators.housing.app import create_app as housing_app
    from simulators.revenues.app import create_app as revenues_app
    from simulators.waste.app import create_app as waste_app

    crm = CrmDemo(tmp_path, SECRETS)
    revenues, housing = RevenuesDemo(tmp_path, SECRETS), HousingDemo(tmp_path, SECRETS)
    waste = WasteDemo(tmp_path, SECRETS)
    licensing = LicensingDemo(tmp_path, SECRETS)
    licensing.prepare()
    apps = [crm_app(tmp_path / "crm.db", token="crm-t"),
            revenues_app(tmp_path / "rev.db", username="hub", password="rev-pw", seed_demo=True),
            housing_app(tmp_path / "hou.db", client_id="hub", client_secret="hou-pw",
                        seed_demo=True),
            waste_app(tmp_path / "was.db", username="hub", password="was-pw", seed_demo=True)]
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(serve_in_thread(app)) for app in apps]
        for demo_system, url in zip((crm, revenues, housing, waste), urls):
            demo_system.port = int(url.rsplit(":", 1)[1])
        yield {"crm": crm, "systems": [revenues, housing, licensing, waste]}


def _connector(system: Any) -> Any:
    from connectors.housing.repairs import RepairsConfig, RepairsConnector
    from connectors.licensing.uniform import UniformConfig, UniformConnector
    from connectors.revenues.northgate import NorthgateConfig, NorthgateConnector
    from connectors.waste.bartec import BartecConfig, BartecConnector

    if system.system_id == "revenues_northgate":
        return NorthgateConnector(NorthgateConfig(endpoint=f"{system.base_url}/soap",
                                                  username="hub", password="rev-pw"))
    if system.system_id == "housing_repairs":
        return RepairsConnector(RepairsConfig(base_url=system.base_url, client_id="hub",
                                              client_secret="hou-pw"))
    if system.system_id == "waste_bartec":
        return BartecConnector(BartecConfig(endpoint=f"{system.base_url}/soap", username="hub",
                                            password="was-pw"))
    return UniformConnector(UniformConfig(url=system.url))


def _commands(n: int) -> dict[str, list[Command]]:
    def make(system: str, operation: str, i: int, payload: dict[str, Any]) -> Command:
        return Command(key=f"CRM-D{system[:3]}{i}.s.{i:010d}", system=system, operation=operation,
                       payload=payload, case_ref=f"CRM-D{system[:3]}{i}")
    from simulators.waste import sample
    from tests.connectors.waste.conftest import open_slots

    slots = open_slots()
    return {
        "waste_bartec": [make("waste_bartec", "waste.bulky_collection", i, {
            "uprn": sample.uprn(1 + i), "slot_date": slots[i].isoformat(),
            "items": [{"name": "Sofa", "quantity": 1}]}) for i in range(n)],
        "revenues_northgate": [make("revenues_northgate", "ctax.single_person_discount", i, {
            "account_ref": f"CT{(1, 2, 4)[i]:08d}", "effective_from": "2026-04-01",
            "adults_resident": 1}) for i in range(n)],
        "housing_repairs": [make("housing_repairs", "housing.repair_request", i, {
            "uprn": "200100000001", "priority": "URGENT", "trade": "PLUMBING",
            "description": "Leak", "room": "kitchen"}) for i in range(n)],
        "licensing_uniform": [make("licensing_uniform", "licence.street_trading", i, {
            "applicant": {"name": f"Trader {i}"}, "pitch": "Market Square", "commodities": "Fruit",
            "payment_ref": f"PAY-DRIFT-{i}"}) for i in range(n)],
    }


def _ledger(url: str, command: Command, reference: str) -> None:
    from hub.ledger.db import session_scope
    from hub.ledger.models import Case, Command as Row, OutboxMessage

    with session_scope(url) as session:
        case = Case(crm_id=command.case_ref, version=1, case_type="t", source="pull",
                    state="mapped")
        session.add(case)
        session.flush()
        row = Row(case_id=case.id, system=command.system, operation=command.operation,
                  key=command.key, payload=dict(command.payload), state="confirmed",
                  reference=reference)
        session.add(row)
        session.flush()
        session.add(OutboxMessage(dedupe_key=f"outcome:{command.key}", case_id=case.id,
                                  command_id=row.id, crm_id=command.case_ref,
                                  system=command.system, kind="outcome", status="completed",
                                  note="done", backoffice_reference=reference, state="sent"))


def _confirmed_everywhere(running: dict[str, Any], ledger: str) -> CrmClient:
    """Three confirmed records per back office, in the ledger and written back to the CRM."""
    crm, systems = running["crm"], running["systems"]
    crm_client = CrmClient(crm.base_url, "crm-t")
    for system in systems:
        commands = _commands(3)[system.system_id]
        outcomes = _connector(system).submit(commands)
        for command, outcome in zip(commands, outcomes):
            assert outcome.status is OutcomeStatus.CONFIRMED, outcome
            _ledger(ledger, command, outcome.reference)
            httpx.put(f"{crm.base_url}/api/v1/cases/{command.case_ref}", timeout=5,
                      headers={"Authorization": "Bearer crm-t"},
                      json={"case_type": "t", "data": {}}).raise_for_status()
            crm_client.write_back(command.case_ref, WriteBack(
                idempotency_key=f"outcome:{command.key}", status="completed", note="done",
                backoffice_reference=outcome.reference, backoffice_system=system.system_id))
    return crm_client


def test_one_drift_per_class_seeded_once(running: dict[str, Any], sqlite_ledger: str,
                                         tmp_path: Path) -> None:
    crm, systems = running["crm"], running["systems"]
    crm_client = _confirmed_everywhere(running, sqlite_ledger)

    made = drift.seed_drift(tmp_path, crm, systems, url=sqlite_ledger)
    assert set(made) == set(drift.CLASSES)
    assert drift.seed_drift(tmp_path, crm, systems, url=sqlite_ledger) == {}, "seeded once"
    assert drift.seeded(tmp_path) == made

    records = {s.system_id: list(_connector(s).records()) for s in systems}
    missing = made["missing_in_backoffice"]
    assert missing["system"] == "housing_repairs"
    assert missing["key"] not in {r.key for r in records["housing_repairs"]}
    unknown = made["unknown_in_backoffice"]
    assert unknown["system"] == "waste_bartec"
    [added] = [r for r in records[unknown["system"]] if r.key == unknown["key"]]
    assert added.reference == unknown["reference"] and ".drift." in unknown["key"]
    field = made["field_mismatch"]
    assert (field["system"], field["field"]) == ("licensing_uniform", "applicant.name")
    [changed] = [r for r in records["licensing_uniform"] if r.key == field["key"]]
    assert changed.fields["applicant.name"] == "Changed By Data Fix"
    status = made["status_not_in_crm"]
    [reopened] = [r for r in records["revenues_northgate"] if r.key == status["key"]]
    assert (reopened.status, reopened.crm_status) == ("REOPENED", "open")
    lost = made["writeback_missing"]
    states = {s.crm_id: s for s in crm_client.iter_case_states()}
    assert (states[lost["crm_id"]].status, states[lost["crm_id"]].backoffice_reference) == \
        ("new", None)
    touched = [(e["system"], e["reference"]) for e in made.values()]
    assert len(touched) == len(set(touched)), "each class on its own record"
    cases = [e["crm_id"] for e in made.values()]
    assert len(cases) == len(set(cases)), "and on its own CRM case"


def test_reconciliation_finds_each_seeded_class_once(running: dict[str, Any], sqlite_ledger: str,
                                                     tmp_path: Path) -> None:
    """The reads and the drift makers against the engine: nothing before, each class once after."""
    from hub.reconcile.engine import reconcile_system

    crm, systems = running["crm"], running["systems"]
    crm_client = _confirmed_everywhere(running, sqlite_ledger)

    def found() -> dict[str, int]:
        totals: dict[str, int] = {}
        for system in systems:
            report = reconcile_system(system.system_id, connector=_connector(system),
                                      crm=crm_client, url=sqlite_ledger, dry_run=True)
            for name, count in report.found.items():
                totals[name] = totals.get(name, 0) + count
        return totals

    assert found() == {}, "records read back as sent: no false finding"
    drift.seed_drift(tmp_path, crm, systems, url=sqlite_ledger)
    assert found() == {name: 1 for name in drift.CLASSES}
