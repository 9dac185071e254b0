"""On a real Airflow (scheduler, DAG processor, triggerer and API server as separate processes,
metadata on a throwaway PostgreSQL database, LocalExecutor) and the machine's Redis: a signal the
web app's publisher sends is turned by the asset's watcher into an asset event that starts only
the DAG scheduled on that asset, and a burst of marks starts a few runs, not one per mark."""
from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.orchestration_assets import commands_uri
from hub.signals import RedisTransport, SignalPublisher
from tests.support.airflow_stack import AirflowStack, airflow_stack

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.timeout(600)]
REDIS_URL = "redis://127.0.0.1:6379/0"

DAG_FILE = '''
from airflow.sdk import DAG, task
from hub.orchestration import START, hub_asset
from hub.orchestration_assets import commands_uri

for system in ("alpha", "beta"):
    with DAG(dag_id=f"signal_{system}", schedule=[hub_asset(commands_uri(system))],
             start_date=START, catchup=False, max_active_runs=1) as dag:
        @task
        def work() -> int:
            return 1
        work()
    globals()[f"dag_{system}"] = dag
'''


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowStack, str]]:
    if not (_answers(6379) and _answers(5432)):
        pytest.skip("needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432")
    home = tmp_path_factory.mktemp("airflow")
    dags = home / "dags"
    dags.mkdir()
    (dags / "signal_dags.py").write_text(DAG_FILE)
    prefix = f"hubtest{uuid.uuid4().hex[:10]}"
    conn_id = f"hub_redis_{prefix}"
    env = {f"AIRFLOW_CONN_{conn_id.upper()}": REDIS_URL, "HUB_SIGNAL_CONN_ID": conn_id,
           "HUB_SIGNAL_CHANNEL_PREFIX": prefix, "HUB_SIGNAL_POLL_SECONDS": "0.2"}
    with airflow_stack(home, dags, env) as running:
        yield running, prefix


def _runs(stack: AirflowStack, dag_id: str) -> list[tuple]:
    return stack.query("select run_id, state, start_date, end_date from dag_run "
                       "where dag_id = :dag_id order by id", dag_id=dag_id)


def _wait_for(predicate, timeout: float, what: str, stack: AirflowStack):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        assert not stack.exited(), f"Airflow components exited: {stack.exited()}"
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_signal_starts_only_the_dag_of_its_asset(stack: tuple[AirflowStack, str]) -> None:
    airflow, prefix = stack
    publisher = SignalPublisher(RedisTransport(REDIS_URL, prefix=prefix), interval=0.5,
                                unheard_retry_seconds=240)
    # the watchers subscribe once the DAG processor registered them and the triggerer started them
    publisher.mark(commands_uri("alpha"))
    assert publisher.flush(timeout=240), f"no watcher heard: {publisher.snapshot()}"
    heard = time.monotonic()
    _wait_for(lambda: [r for r in _runs(airflow, "signal_alpha") if r[1] == "success"], 120,
              "signal_alpha to run", airflow)
    latency = time.monotonic() - heard
    print(f"signal heard -> DAG run succeeded: {latency:.1f} s")
    time.sleep(3)
    assert _runs(airflow, "signal_beta") == [], "beta's DAG did not start"
    events = airflow.query("select a.uri, count(*) from asset_event e join asset a "
                           "on a.id = e.asset_id group by a.uri")
    assert dict(events) == {commands_uri("alpha"): 1}

    # a burst: 300 marks in 3 s make a few signals and a few DAG runs, not 300
    before = len(_runs(airflow, "signal_alpha"))
    for _ in range(30):
        for _ in range(10):
            publisher.mark(commands_uri("alpha"))
        time.sleep(0.1)
    assert publisher.flush(timeout=120)
    last_mark = time.monotonic()

    def finished() -> list[tuple]:
        runs = _runs(airflow, "signal_alpha")[before:]
        return runs if runs and all(r[1] in ("success", "failed") for r in runs) else []

    runs = _wait_for(finished, 180, "the burst's runs", airflow)
    while True:   # until no run follows for 10 s (asset events queued behind a running run)
        time.sleep(10)
        again = _wait_for(finished, 180, "the burst's runs", airflow)
        if len(again) == len(runs):
            break
        runs = again
    stats = publisher.snapshot()
    publisher.close()
    print(f"burst: 300 marks -> {stats['published']} signals heard, {stats['unheard']} unheard "
          f"and retried, {len(runs)} DAG runs; settled {time.monotonic() - last_mark:.1f} s after")
    assert {r[1] for r in runs} == {"success"}
    assert 1 <= len(runs) <= 12, "coalesced: far fewer runs than marks"
    assert stats["failed"] == 0 and stats["dropped"] == 0
    assert _runs(airflow, "signal_beta") == []
    assert not airflow.exited()
