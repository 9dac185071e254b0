"""Per-system routing: the asset events a task reports are exactly the ones with new work.

The task callables run here with Airflow's own outlet-event accessors, serialised the way the task
runner sends them to Airflow's API server on success, so what is asserted is what Airflow receives.
"""
from __future__ import annotations

from typing import Any

import pytest

from tests.hub.factories import coa_data, receive

MISSED_BIN = {"uprn": "100090000001", "bin_type": "recycling", "collection_date": "2026-02-27"}


def _events_sent(task: Any, *args: Any) -> tuple[Any, list[str]]:
    from airflow.sdk.execution_time.context import OutletEventAccessors
    from airflow.sdk.execution_time.task_runner import _serialize_outlet_events

    events = OutletEventAccessors()
    result = task.python_callable(*args, outlet_events=events, run_id="test")
    return result, sorted(e["dest_asset_key"]["uri"] for e in _serialize_outlet_events(events)
                          if "dest_asset_key" in e and "source_alias_name" in e)


@pytest.fixture
def intake_task(sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HUB_DATABASE_URL", sqlite_ledger)
    from hub.orchestration import intake_dag

    return intake_dag().task_dict["map_cases"]


def test_a_revenues_case_creates_an_event_only_for_revenues(sqlite_ledger: str,
                                                            intake_task: Any) -> None:
    receive(sqlite_ledger, "CRM-R1", coa_data())
    stats, uris = _events_sent(intake_task, 1)
    assert stats["mapped"] == 1
    assert uris == ["hub://ledger/commands/revenues_northgate"]


def test_cases_for_two_systems_start_those_two_only(sqlite_ledger: str, intake_task: Any) -> None:
    receive(sqlite_ledger, "CRM-R2", coa_data())
    receive(sqlite_ledger, "CRM-W2", MISSED_BIN, case_type="waste_missed_bin")
    _, uris = _events_sent(intake_task, 2)
    assert uris == ["hub://ledger/commands/revenues_northgate", "hub://ledger/commands/waste_bartec"]


def test_nothing_new_emits_nothing(sqlite_ledger: str, intake_task: Any) -> None:
    receive(sqlite_ledger, "CRM-R3", coa_data())
    _events_sent(intake_task, 1)
    receive(sqlite_ledger, "CRM-R3", coa_data(), version=2)   # same request again: no command
    stats, uris = _events_sent(intake_task, 1)
    assert stats["mapped"] == 1 and stats["commands"] == 0 and uris == []


def test_an_invalid_case_hands_its_notice_to_the_write_back(sqlite_ledger: str,
                                                            intake_task: Any) -> None:
    receive(sqlite_ledger, "CRM-W4", {"uprn": "1"}, case_type="waste_missed_bin")
    _, uris = _events_sent(intake_task, 1)
    assert uris == ["hub://ledger/outbox"]


def test_the_dispatch_task_hands_over_only_what_it_could_not_write_back(
        sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", sqlite_ledger)
    from hub import connections, orchestration
    from tests.hub.scripted import ScriptedConnector

    monkeypatch.setattr(connections, "connector_for", lambda system_id: ScriptedConnector())
    receive(sqlite_ledger, "CRM-R5", coa_data())
    from hub import intake

    intake.map_received(url=sqlite_ledger)
    # no CRM connection defined: the write-back is left, and the outbox asset is emitted for it
    monkeypatch.delenv("AIRFLOW_CONN_CRM", raising=False)
    send = orchestration.dispatch_dag("revenues_northgate").task_dict["send_batches"]
    report, uris = _events_sent(send, 0)
    assert report["sent"]["confirmed"] == 1 and report["writebacks_waiting"] == 1
    assert uris == ["hub://ledger/outbox"]
    _, uris = _events_sent(send, 0)   # handed over once: the next run settles nothing new
    assert uris == []


def test_a_dispatch_that_wrote_everything_back_emits_nothing(
        sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import json

    import httpx

    from hub import connections, intake, orchestration
    from simulators.crm.app import create_app
    from simulators.serving import serve_in_thread
    from tests.hub.scripted import ScriptedConnector

    monkeypatch.setenv("HUB_DATABASE_URL", sqlite_ledger)
    monkeypatch.setattr(connections, "connector_for", lambda system_id: ScriptedConnector())
    with serve_in_thread(create_app(tmp_path / "crm.db", token="t")) as crm:
        httpx.put(f"{crm}/api/v1/cases/CRM-R6", headers={"Authorization": "Bearer t"},
                  json={"case_type": "ctax_change_of_address", "data": {}}).raise_for_status()
        monkeypatch.setenv("AIRFLOW_CONN_CRM", json.dumps({"conn_type": "http", "host": crm,
                                                           "password": "t"}))
        receive(sqlite_ledger, "CRM-R6", coa_data())
        intake.map_received(url=sqlite_ledger)
        send = orchestration.dispatch_dag("revenues_northgate").task_dict["send_batches"]
        report, uris = _events_sent(send, 0)
    assert report["written_back"] == 1 and uris == []
