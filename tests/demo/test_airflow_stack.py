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
