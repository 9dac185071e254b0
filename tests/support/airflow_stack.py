"""A private real Airflow for tests: metadata on a throwaway PostgreSQL database, the API server on a
free port, and the scheduler, DAG processor and triggerer as separate processes (LocalExecutor).
Everything it starts is stopped (whole process trees) when the context ends."""
from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import sqlalchemy as sa

from tests.support.databases import POSTGRES_ADMIN_URL, fresh_database

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AirflowStack:
    home: Path
    db_url: str
    port: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

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


def _stop(processes: Mapping[str, subprocess.Popen]) -> None:
    tree: list[psutil.Process] = []
    for popen in processes.values():
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(popen.pid)
            tree += [*root.children(recursive=True), root]
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(tree, timeout=15)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    for popen in processes.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=5)


@contextlib.contextmanager
def airflow_stack(home: Path, dags: Path, extra_env: Mapping[str, str],
                  ready_timeout: float = 240) -> Iterator[AirflowStack]:
    """Start a real Airflow over ``dags``; yields once the API server answers."""
    with fresh_database(POSTGRES_ADMIN_URL, "hub_airflow_triggers") as db_url:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **extra_env,
        })
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        stack = AirflowStack(home=home, db_url=db_url, port=port, env=env)
        try:
            for name in COMPONENTS:
                argv = [sys.executable, "-m", "airflow", name]
                with open(home / f"{name}.log", "ab") as log:
                    stack.processes[name] = subprocess.Popen(
                        argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline:
                if stack.exited():
                    raise RuntimeError(f"Airflow components exited: {stack.exited()}")
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                time.sleep(0.5)
            else:
                raise RuntimeError("Airflow's API server did not start")
            yield stack
        finally:
            _stop(stack.processes)
