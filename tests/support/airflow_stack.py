"""A private real Airflow for tests and benchmarks: metadata on a throwaway PostgreSQL database, the
API server on a free port, and the scheduler, DAG processor and triggerer as separate processes
(LocalExecutor), set up exactly as `make up` sets them up (``demo.airflow_stack.AirflowSetup``: the
shared JWT secret, Execution API URL, Fernet key, admin login...), only over a DAG folder of the
caller's and with quicker heartbeats. Everything it starts is stopped (whole process trees) when the
context ends."""
from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from demo.airflow_stack import SECRET_NAMES, AirflowSetup, fernet_key
from demo.stack import Stack, free_port, wait_for_port
from tests.support.databases import POSTGRES_ADMIN_URL, fresh_database

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
QUICK = {
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": "4",
    "AIRFLOW__API__WORKERS": "1",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
}
"""What a test stack changes from `make up`'s: a smaller API server, quicker heartbeats."""

__all__ = ["AirflowStack", "airflow_stack", "free_port"]


@dataclass
class AirflowStack:
    home: Path
    db_url: str
    port: int
    env: dict[str, str]
    setup: AirflowSetup
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return self.setup.api_url

    def exited(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def query(self, sql: str, **params: object) -> list[tuple]:
        engine = sa.create_engine(self.db_url.replace("postgresql://", "postgresql+psycopg2://"))
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql), params)]
        finally:
            engine.dispose()

    def log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def airflow_stack(home: Path, dags: Path, extra_env: Mapping[str, str],
                  ready_timeout: float = 240) -> Iterator[AirflowStack]:
    """Start a real Airflow over ``dags``, ``extra_env`` in every component's environment; yields
    once the API server answers. The admin's password is in ``home``/
    simple_auth_manager_passwords.json.generated (user ``admin``)."""
    with fresh_database(POSTGRES_ADMIN_URL, "hub_airflow_triggers") as db_url:
        home.mkdir(parents=True, exist_ok=True)
        setup = AirflowSetup(
            home=home, database_url=db_url, executor="local",
            secrets={**{n: secrets.token_urlsafe(32) for n in SECRET_NAMES},
                     "airflow_fernet_key": fernet_key()},
            name=f"test_{secrets.token_hex(4)}", api_port=free_port(),
            worker_log_port=free_port(), trigger_log_port=free_port(), dags_folder=dags,
            settings={**QUICK, **extra_env})
        env = setup.environment()
        setup.prepare(env)
        processes = Stack(home)
        stack = AirflowStack(home=home, db_url=db_url, port=setup.api_port, env=env, setup=setup)
        try:
            for component in setup.components(env):
                processes.start(component, wait=False)
                assert component.popen is not None
                stack.processes[component.name] = component.popen
            api = stack.processes["api-server"]
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline:
                if stack.exited():
                    raise RuntimeError(f"Airflow components exited: {stack.exited()}")
                with contextlib.suppress(RuntimeError):
                    wait_for_port(setup.api_port, timeout=1, proc=api)
                    break
            else:
                raise RuntimeError("Airflow's API server did not start")
            yield stack
        finally:
            processes.stop()
