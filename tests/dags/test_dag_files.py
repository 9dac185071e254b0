"""Every DAG file parses cleanly, quickly and without I/O; DAGs have the shapes operators expect."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

DAGS = Path(__file__).resolve().parents[2] / "dags"


class ParseTimeIO(AssertionError):
    """A DAG file did I/O while being parsed."""


def parse_without_io(folder: Path) -> Any:
    """Parse a DAG folder with network, database, HTTP and subprocess access forbidden."""
    import httpx

    from airflow.dag_processing.dagbag import DagBag   # Airflow's own start-up may touch its DB
    from hub.ledger import db

    def forbid(what: str):  # type: ignore[no-untyped-def]
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise ParseTimeIO(f"{what} at DAG parse time")
        return refuse

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", forbid("network connection"))
    mp.setattr(sqlalchemy, "create_engine", forbid("database engine"))
    mp.setattr(db, "_create", forbid("ledger engine"))
    mp.setattr(httpx.Client, "send", forbid("HTTP request"))
    mp.setattr(subprocess, "Popen", forbid("subprocess"))
    try:
        return DagBag(str(folder))
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def dagbag() -> Any:
    return parse_without_io(DAGS)


def test_the_parse_check_catches_io(tmp_path: Path) -> None:
    (tmp_path / "bad_dag.py").write_text(
        "from airflow.sdk import DAG\nfrom hub.ledger import db\n"
        "db.engine('sqlite:///x.db')\ndag = DAG(dag_id='bad', schedule=None)\n")
    bag = parse_without_io(tmp_path)
    assert "ledger engine at DAG parse time" in str(bag.import_errors)


def test_every_dag_file_imports_without_errors_or_io(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    files = {Path(d.fileloc).name for d in dagbag.dags.values()}
    assert files == {p.name for p in DAGS.glob("*.py")}, "every file defines at least one DAG"


def test_dag_files_stay_thin() -> None:
    for path in DAGS.glob("*.py"):
        code = [l for l in path.read_text().splitlines() if l.strip() and not l.startswith(("#", '"""'))]
        assert len(code) <= 12, f"{path.name} holds logic; put it in hub/"
        assert "import airflow" not in path.read_text() or path.name == "__init__.py"


def test_the_expected_dags_exist(dagbag: Any) -> None:
    from connectors.catalog import SYSTEMS

    expected = {"crm_intake", "crm_writeback", "hub_housekeeping", "hub_desk_escalation"}
    for system in SYSTEMS:
        expected |= {system, f"{system}_status_sync", f"{system}_reconcile"}
    assert expected == set(dagbag.dags), \
        "one dispatch, one status sync and one reconcile per instance, no more"
    assert "revenues_northgate" in dagbag.dags


def test_every_instance_in_the_instances_file_gets_its_own_dags(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two instances of one connector class: separate DAG ids, assets, crons and tags, and no
    Python written (only the instances file)."""
    from connectors import catalog

    instances = tmp_path / "instances.yaml"
    instances.write_text(
        "instances:\n"
        "  waste_bartec:\n    connector: waste_bartec\n"
        "  waste_bartec_trade:\n    connector: waste_bartec\n    team: trade_waste\n"
        "    conn_id: bartec_trade_tenant\n    dispatch: '*/7 * * * *'\n"
        "    status_sync: '*/9 * * * *'\n    description: Trade waste tenant.\n")
    monkeypatch.setenv("HUB_INSTANCES", str(instances))
    catalog.reload()
    try:
        bag = parse_without_io(DAGS)
    finally:
        monkeypatch.delenv("HUB_INSTANCES")
        catalog.reload()
    assert bag.import_errors == {}
    assert {d for d in bag.dags if d.startswith("waste_")} == {
        "waste_bartec", "waste_bartec_status_sync", "waste_bartec_reconcile", "waste_bartec_trade",
        "waste_bartec_trade_status_sync", "waste_bartec_trade_reconcile"}
    assert "revenues_northgate" not in bag.dags
    trade = bag.dags["waste_bartec_trade"]
    assert _scheduled_uris(trade) == {"hub://ledger/commands/waste_bartec_trade"}
    assert _scheduled_uris(bag.dags["waste_bartec"]) == {"hub://ledger/commands/waste_bartec"}
    assert trade.timetable.timetable._expression == "*/7 * * * *"
    assert "trade_waste" in trade.tags and "bartec_trade_tenant" in trade.doc_md
    sync = bag.dags["waste_bartec_trade_status_sync"]
    assert sync.timetable.timetable._expression == "*/9 * * * *"


def test_each_reconcile_dag_is_one_nightly_task(dagbag: Any) -> None:
    dag = dagbag.dags["revenues_northgate_reconcile"]
    assert set(dag.task_dict) == {"reconcile"}
    assert not dag.catchup and dag.max_active_runs == 1
    assert "reconcile" in dag.tags
    assert dag.timetable.timetable._expression == "15 1 * * *"


def test_dispatch_is_one_task_per_lane_sending_batches_not_one_per_record(dagbag: Any) -> None:
    dag = dagbag.dags["revenues_northgate"]
    assert set(dag.task_dict) == {"send_batches"}, "no planning task ahead of the send"
    send = dag.task_dict["send_batches"]
    assert send.is_mapped and send.op_kwargs_expand_input.value == {"lane": [0]}
    assert not dag.catchup


def test_only_dispatch_may_run_twice_at_once(dagbag: Any) -> None:
    """Two dispatch runs claim disjoint batches like two lanes do (tests/hub/test_dispatch.py); a
    second run keeps Airflow 3.3's stale max_active_runs flag from stalling a system's dispatch.
    Everything else (intake's cursor, the write-back, sync, reconcile) stays one run at a time."""
    limits = {dag_id: dag.max_active_runs for dag_id, dag in dagbag.dags.items()}
    dispatch = {d for d, dag in dagbag.dags.items() if "dispatch" in dag.tags}
    assert {"revenues_northgate", "licensing_uniform"} <= dispatch
    assert {limits[d] for d in dispatch} == {2}
    assert {limits[d] for d in set(limits) - dispatch} == {1}


def _scheduled_uris(dag: Any) -> set[str]:
    return {key.uri for key, _ in dag.timetable.asset_condition.iter_assets()}


def test_each_dispatch_listens_only_for_its_own_systems_commands(dagbag: Any) -> None:
    from airflow.timetables.assets import AssetOrTimeSchedule

    from connectors.catalog import SYSTEMS

    for system in SYSTEMS:
        if system in dagbag.dags:
            dag = dagbag.dags[system]
            assert isinstance(dag.timetable, AssetOrTimeSchedule), "and on its own timetable"
            assert _scheduled_uris(dag) == {f"hub://ledger/commands/{system}"}
    assert _scheduled_uris(dagbag.dags["crm_writeback"]) == {"hub://ledger/outbox"}


def test_intake_listens_for_webhook_events_and_runs_on_a_timetable(dagbag: Any) -> None:
    from airflow.timetables.assets import AssetOrTimeSchedule

    dag = dagbag.dags["crm_intake"]
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert _scheduled_uris(dag) == {"hub://crm/cases"}


def test_without_a_signal_connection_the_assets_have_no_watchers(dagbag: Any) -> None:
    for dag in dagbag.dags.values():
        for _, asset in dag.timetable.asset_condition.iter_assets():
            assert not asset.watchers, dag.dag_id


def test_with_a_signal_connection_every_hub_asset_has_its_own_redis_watcher(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_SIGNAL_CONN_ID", "hub_redis")
    monkeypatch.setenv("HUB_SIGNAL_CHANNEL_PREFIX", "council-a")
    bag = parse_without_io(DAGS)
    assert bag.import_errors == {}
    channels = {}
    for dag in bag.dags.values():
        for key, asset in dag.timetable.asset_condition.iter_assets():
            [watcher] = asset.watchers
            trigger = watcher.trigger
            assert trigger["classpath"].endswith("redis_await_message.AwaitMessageTrigger")
            assert trigger["kwargs"]["redis_conn_id"] == "hub_redis"
            assert trigger["kwargs"]["poll_interval"] <= 1, "a signal is picked up within a second"
            [channel] = trigger["kwargs"]["channels"]
            channels[key.uri] = channel
    assert channels["hub://ledger/commands/revenues_northgate"] == \
        "council-a.ledger.commands.revenues_northgate"
    assert channels["hub://crm/cases"] == "council-a.crm.cases"
    assert len(set(channels.values())) == len(channels) >= 6


def test_lanes_send_at_once_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DISPATCH_LANES", "3")
    from hub.orchestration import dispatch_dag

    send = dispatch_dag("waste_bartec").task_dict["send_batches"]
    assert send.op_kwargs_expand_input.value == {"lane": [0, 1, 2]}


def test_a_permanent_error_fails_the_task_without_retries() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from connectors.errors import PermanentError, TransientError
    from hub.orchestration import _fail_fast_on_permanent_error

    with pytest.raises(AirflowFailException, match="login refused"):
        with _fail_fast_on_permanent_error():
            raise PermanentError("login refused")
    with pytest.raises(TransientError):   # anything else keeps Airflow's normal retries
        with _fail_fast_on_permanent_error():
            raise TransientError("timeout")
