"""What Airflow's separate components must share (or they cannot talk to each other), and what tells
two Celery workers on one machine apart."""
from __future__ import annotations

from pathlib import Path

import pytest

from demo.airflow_stack import SECRET_NAMES, AirflowSetup, fernet_key
from demo.supervisor import RESTART
from demo.worker_identity import hostname

SHARED = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__API_AUTH__JWT_SECRET",
          "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY",
          "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__CORE__EXECUTOR")


def setup(tmp_path: Path, executor: str) -> AirflowSetup:
    secrets = {n: f"secret-{n}" for n in SECRET_NAMES} | {"airflow_fernet_key": fernet_key()}
    return AirflowSetup(home=tmp_path, database_url="postgresql+psycopg2://u@127.0.0.1/af",
                        executor=executor, secrets=secrets, name="hub_x", api_port=18080)


@pytest.mark.parametrize("executor", ["local", "celery"])
def test_every_component_shares_the_database_secrets_and_execution_api(tmp_path, executor) -> None:
    airflow = setup(tmp_path, executor)
    components = airflow.components(airflow.environment())
    names = [c.name for c in components]
    assert names[0] == "api-server" and names[-1] == "scheduler", "scheduler stops first"
    expected = {"api-server", "dag-processor", "triggerer", "scheduler"}
    if executor == "celery":
        expected |= {"celery-worker-1", "celery-worker-2"}
    assert set(names) == expected
    for key in SHARED:
        assert len({c.env[key] for c in components}) == 1, key
    env = components[0].env
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "secret-airflow_jwt_secret"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert all(c.policy == RESTART for c in components)


def test_celery_workers_have_names_of_their_own_and_the_stacks_queue(tmp_path) -> None:
    airflow = setup(tmp_path, "celery")
    workers = [c for c in airflow.components(airflow.environment()) if c.name.startswith("celery")]
    assert [w.env["HUB_WORKER_NAME"] for w in workers] == ["worker1", "worker2"]
    for worker in workers:
        assert worker.argv[worker.argv.index("--queues") + 1] == "hub_x"
        assert worker.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == "hub_x"
        assert worker.env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] == "hub_x:"
        assert worker.env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql+psycopg2://u@127.0.0.1/af"


def test_a_worker_reports_its_own_name_to_airflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_WORKER_NAME", "worker2")
    assert hostname().startswith("worker2@")
    monkeypatch.delenv("HUB_WORKER_NAME")
    assert "@" not in hostname()


def test_signals_reach_the_dag_processor_the_triggerer_and_the_web_app_over_one_redis(
        tmp_path) -> None:
    airflow = setup(tmp_path, "local")
    airflow.signal_redis_url, airflow.signal_prefix = "redis://127.0.0.1:6379/0", "hub_x"
    components = {c.name: c for c in airflow.components(airflow.environment())}
    for name in ("dag-processor", "triggerer", "api-server", "scheduler"):
        env = components[name].env
        # the DAG processor builds each asset's watcher from the connection id; the triggerer
        # runs it with the Connection from the environment; the web app publishes on the channels
        assert env["HUB_SIGNAL_CONN_ID"] == "hub_redis", name
        assert env["AIRFLOW_CONN_HUB_REDIS"] == env["HUB_SIGNAL_REDIS_URL"] == "redis://127.0.0.1:6379/0"
        assert env["HUB_SIGNAL_CHANNEL_PREFIX"] == "hub_x"


def test_without_redis_no_watchers_are_configured(tmp_path) -> None:
    env = setup(tmp_path, "local").environment()
    assert not {"HUB_SIGNAL_CONN_ID", "HUB_SIGNAL_REDIS_URL", "AIRFLOW_CONN_HUB_REDIS"} & set(env)


@pytest.mark.parametrize(("executor", "lanes"), [("local", "1"), ("celery", "2")])
def test_celery_dispatches_in_two_lanes_and_deadline_alerts_stay_on(
        tmp_path, monkeypatch: pytest.MonkeyPatch, executor: str, lanes: str) -> None:
    monkeypatch.delenv("HUB_DEADLINE_MINUTES", raising=False)
    env = setup(tmp_path, executor).environment()
    assert env["HUB_DISPATCH_LANES"] == lanes
    assert int(env["HUB_DEADLINE_MINUTES"]) > 0, "the real scheduler keeps Deadline Alerts"


def test_settings_have_the_last_word(tmp_path) -> None:
    airflow = setup(tmp_path, "local")
    airflow.settings = {"AIRFLOW__API__WORKERS": "1", "HUB_SIGNAL_POLL_SECONDS": "0.2"}
    env = airflow.environment()
    assert env["AIRFLOW__API__WORKERS"] == "1" and env["HUB_SIGNAL_POLL_SECONDS"] == "0.2"


def test_signals_fall_back_to_rest_when_redis_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from demo.realstack import signal_redis_url
    from demo.stack import free_port

    monkeypatch.setenv("HUB_SIGNAL_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert signal_redis_url() == ""
