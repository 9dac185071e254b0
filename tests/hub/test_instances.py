"""Instances: two instances of one connector class (domestic and trade waste on two Bartec
tenants) side by side, declared in an instances file with no Python: separate connections,
teams, assets and ledger rows; each case reaches only its own back office."""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from connectors import catalog
from connectors.catalog import InstancesError, read_instances, registered_connectors
from hub import accounts, connections, dispatch, intake
from hub.ledger.models import Command, WorkItem
from hub.orchestration_assets import commands_uri
from mappings.loader import DEFAULT_DIRECTORY, load_mappings
from simulators.serving import serve_in_thread
from simulators.waste import sample
from simulators.waste.app import create_app
from tests.hub.factories import receive, rows

USERNAME, PASSWORD = "hub-api", "waste-s3cret"
INSTANCES = """
instances:
  waste_bartec:
    connector: waste_bartec
  waste_bartec_trade:
    connector: waste_bartec
    conn_id: bartec_trade_tenant
    team: trade_waste
    dispatch: "*/5 * * * *"
"""


@pytest.fixture
def two_tenants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Two waste simulators (two tenants), the instances file naming both, a Connection each."""
    urls = {}
    with serve_in_thread(create_app(tmp_path / "domestic.db", username=USERNAME,
                                    password=PASSWORD, seed_demo=True)) as domestic, \
         serve_in_thread(create_app(tmp_path / "trade.db", username=USERNAME,
                                    password=PASSWORD, seed_demo=True)) as trade:
        urls = {"waste_bartec": domestic, "waste_bartec_trade": trade}
        (tmp_path / "instances.yaml").write_text(INSTANCES)
        monkeypatch.setenv("HUB_INSTANCES", str(tmp_path / "instances.yaml"))
        for env, url in (("AIRFLOW_CONN_WASTE_BARTEC", domestic),
                         ("AIRFLOW_CONN_BARTEC_TRADE_TENANT", trade)):
            monkeypatch.setenv(env, json.dumps({
                "conn_type": "http", "host": f"{url}/soap", "login": USERNAME,
                "password": PASSWORD, "extra": {"timeout_seconds": 5, "retry_attempts": 2,
                                                "retry_max_wait_seconds": 0.2}}))
        catalog.reload()
        try:
            yield urls
        finally:
            monkeypatch.delenv("HUB_INSTANCES")
            catalog.reload()


def _mappings(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The shipped waste mappings, and a trade copy of the bulky one aimed at the trade instance:
    an instance reuses its connector's operations, so only ``system:`` differs."""
    folder = tmp_path / "mappings"
    folder.mkdir()
    for name in ("waste_bulky_collection", "waste_missed_bin"):
        shutil.copy(DEFAULT_DIRECTORY / f"{name}.yaml", folder)
    text = (DEFAULT_DIRECTORY / "waste_bulky_collection.yaml").read_text()
    (folder / "trade_bulky_collection.yaml").write_text(
        text.replace("case_type: waste_bulky_collection", "case_type: trade_bulky_collection")
        .replace("system: waste_bartec", "system: waste_bartec_trade"))
    return load_mappings(folder)


def _effects(url: str) -> int:
    return int(httpx.get(f"{url}/admin/stats", timeout=5).json()["effects"])


def test_two_instances_of_one_connector_run_side_by_side(
        two_tenants: dict[str, str], sqlite_ledger: str, tmp_path: Path) -> None:
    trade = catalog.entry("waste_bartec_trade")
    assert (trade.connector_id, trade.conn_id, trade.team, trade.dispatch) == (
        "waste_bartec", "bartec_trade_tenant", "trade_waste", "*/5 * * * *")
    assert catalog.entry("waste_bartec").team == "waste"
    assert "trade_waste" in accounts.known_teams()

    bulky = [c for c in sample.sample_cases() if c["case_type"] == "waste_bulky_collection"]
    for n, case in enumerate(bulky):
        receive(sqlite_ledger, f"DOM-{n}", case["data"], case_type="waste_bulky_collection")
        receive(sqlite_ledger, f"TRD-{n}", case["data"], case_type="trade_bulky_collection")
    stats = intake.map_received(mappings=_mappings(tmp_path), url=sqlite_ledger)
    assert dict(stats.systems) == {"waste_bartec": len(bulky), "waste_bartec_trade": len(bulky)}
    assert {commands_uri(s) for s in stats.systems} == {
        "hub://ledger/commands/waste_bartec", "hub://ledger/commands/waste_bartec_trade"}

    before = {s: _effects(u) for s, u in two_tenants.items()}
    results = {}
    for system in ("waste_bartec_trade", "waste_bartec"):
        connector = connections.connector_for(system)
        assert connector.system_id() == system
        results[system] = dispatch.dispatch_all(connector, system, url=sqlite_ledger)
    commands = rows(sqlite_ledger, Command)
    by_system = {s: [c for c in commands if c.system == s] for s in two_tenants}
    assert {c.key[:3] for c in by_system["waste_bartec"]} == {"DOM"}
    assert {c.key[:3] for c in by_system["waste_bartec_trade"]} == {"TRD"}
    for system, url in two_tenants.items():
        confirmed = [c for c in by_system[system] if c.state == "confirmed"]
        assert confirmed, system
        assert _effects(url) - before[system] == len(confirmed), (
            f"{system}: only its own cases reach its back office")
    rejected = [c for c in commands if c.state == "rejected"]
    assert rejected, "the sample holds cases the back office refuses"
    items = rows(sqlite_ledger, WorkItem)
    assert {(i.system, i.team) for i in items} == {("waste_bartec", "waste"),
                                                   ("waste_bartec_trade", "trade_waste")}

    # a staff change in the trade tenant comes back as the trade instance's update only
    confirmed = next(c for c in by_system["waste_bartec_trade"] if c.state == "confirmed")
    since = datetime.now(timezone.utc) - timedelta(seconds=2)
    httpx.post(f"{two_tenants['waste_bartec_trade']}/admin/requests/"
               f"{confirmed.reference}/status",
               json={"status": "COMPLETED"}, timeout=5).raise_for_status()
    updates = connections.connector_for("waste_bartec_trade").fetch_updates(since)
    assert [u.system for u in updates if u.reference == confirmed.reference] == [
        "waste_bartec_trade"]
    assert not [u for u in connections.connector_for("waste_bartec").fetch_updates(since)
                if u.reference == confirmed.reference]


def test_a_bad_instances_file_names_the_instance_and_the_field(tmp_path: Path) -> None:
    registered = registered_connectors()
    cases = {
        "instances:\n  waste_x:\n    connector: no_such\n": "instance 'waste_x' field 'connector'",
        "instances:\n  waste_x:\n    connector: waste_bartec\n    colour: red\n":
            "instance 'waste_x' field 'colour'",
        "instances:\n  waste_x:\n    connector: waste_bartec\n    dispatch: hourly\n":
            "instance 'waste_x' field 'dispatch'",
        "instances:\n  WasteX:\n    connector: waste_bartec\n": "instance 'WasteX'",
        "instances:\n  waste_x:\n    connector: waste_bartec\n  waste_x:\n    connector: waste_bartec\n":
            "'waste_x' is given twice",
        "systems: []\n": "field 'instances'",
    }
    for n, (text, expected) in enumerate(cases.items()):
        path = tmp_path / f"bad{n}.yaml"
        path.write_text(text)
        with pytest.raises(InstancesError) as info:
            read_instances(path, registered)
        assert expected in str(info.value) and str(path) in str(info.value), str(info.value)
    with pytest.raises(InstancesError, match="cannot be read"):
        read_instances(tmp_path / "missing.yaml", registered)


def test_the_shipped_connectors_register_through_the_entry_point_group() -> None:
    registered = registered_connectors()
    assert set(registered) >= {"revenues_northgate", "benefits_academy", "licensing_uniform",
                               "waste_bartec", "housing_repairs"}
    for connector_id, found in registered.items():
        cls = catalog._load(found.connector)
        assert cls.system_id() == connector_id, "the entry point's name is the declared id"
        assert (cls.domain, cls.default_conn_id) == (connector_id.split("_")[0], connector_id)
        assert catalog._load(found.operations) is cls.operations
