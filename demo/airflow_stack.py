"""Airflow's components for the real stack, each its own supervised process, sharing one setup.

The API server, scheduler, DAG processor and triggerer (and, with the CeleryExecutor, the Celery
workers) run as separate processes on Airflow's metadata database in PostgreSQL. What they must share
is set here once and handed to every one of them: the metadata URL, the JWT secret that signs and
checks the tokens between them (``[api_auth] jwt_secret``), the API server's secret key, the Fernet
key for Connections, the Execution API URL the task runners call, the login of the simple auth
manager, and the Redis the hub's signals travel on (the DAG processor builds each asset's watcher
from ``HUB_SIGNAL_CONN_ID``; the triggerer runs the watchers with that Connection). Sizes suit a
2-core machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from demo.stack import REPO, Process
from demo.supervisor import RESTART

SECRET_NAMES = ("airflow_jwt_secret", "airflow_api_secret_key", "airflow_admin_password")
ADMIN = "admin"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/5"
"""Redis database 5 of the machine's server; each stack also has a queue and key prefix of its own."""


def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@dataclass
class AirflowSetup:
    """One Airflow installation of the real stack."""

    home: Path
    """AIRFLOW_HOME: logs and the admin password file (no airflow.cfg: everything is in the env)."""
    database_url: str
    executor: str
    """``local`` (LocalExecutor in the scheduler) or ``celery`` (CeleryExecutor, Celery workers)."""
    secrets: dict[str, str]
    name: str
    """The stack's name: the Celery queue and Redis key prefix."""
    api_port: int = 8080
    worker_log_port: int = 8793
    trigger_log_port: int = 8794
    workers: int = 2
    worker_concurrency: int = 2
    broker_url: str = ""
    signal_redis_url: str = ""
    """Redis for the hub's signals (``hub.signals``): each asset gets an ``AssetWatcher`` on it.
    Empty: no watchers; the web app posts asset events through the REST API instead."""
    signal_prefix: str = ""
    """Channel prefix of this stack's signals (``HUB_SIGNAL_CHANNEL_PREFIX``; empty: ``hub``)."""
    dags_folder: Path = REPO / "dags"
    settings: dict[str, str] = field(default_factory=dict)
    """Last word on any variable (tests: a smaller API server, quicker heartbeats)."""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def password_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json.generated"

    @property
    def parallelism(self) -> int:
        """Task slots: six task processes in the scheduler (LocalExecutor), or twice the Celery
        worker slots so the queue holds the next tasks while the workers run theirs."""
        return 6 if self.executor == "local" else 2 * self.workers * self.worker_concurrency

    @property
    def dispatch_lanes(self) -> int:
        """Dispatch tasks per DAG run (``HUB_DISPATCH_LANES``): one per Celery worker, so the
        workers send one system's backlog together; one with the LocalExecutor."""
        return self.workers if self.executor == "celery" else 1

    def environment(self) -> dict[str, str]:
        """The environment every Airflow component (and every task) of this stack runs with."""
        sql = self.database_url
        env = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor" if self.executor == "local" else "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": str(self.parallelism),
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "AIRFLOW__CORE__FERNET_KEY": self.secrets["airflow_fernet_key"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.password_file),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__WORKERS": "2",
            "AIRFLOW__API__SECRET_KEY": self.secrets["airflow_api_secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": self.secrets["airflow_jwt_secret"],
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql,
            # Small pools: several components share one server (max_connections is often 100).
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "5",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.worker_log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.trigger_log_port),
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            # A task runner gives up on a busy API server after 5 tries of 5 s by default, and the
            # task fails without running; on a loaded 2-core machine, wait longer.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "60",
            # Airflow 3.3 can leave a DAG's "at max_active_runs" flag set after its asset-triggered
            # run finishes (apache/airflow#71998, #73032); the scheduler then creates no run for
            # the waiting asset events until the DAG processor parses the file again (every 30 s
            # by default): one-system stalls of about 33 s under steady load. Parse every 10 s
            # (and dispatch DAGs allow two runs at once: hub/orchestration.py).
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            # Deadline Alerts stay on under the real scheduler (only dag.test() switches them off).
            "HUB_DEADLINE_MINUTES": os.environ.get("HUB_DEADLINE_MINUTES") or "30",
            "HUB_DISPATCH_LANES": str(self.dispatch_lanes),
            "PYTHONPATH": str(REPO),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        if self.signal_redis_url:
            from hub.signals import redis_signal_env

            env.update(redis_signal_env(self.signal_redis_url))
            if self.signal_prefix:
                env["HUB_SIGNAL_CHANNEL_PREFIX"] = self.signal_prefix
        if self.executor == "celery":
            env.update({
                "AIRFLOW__CELERY__BROKER_URL": self.broker_url or DEFAULT_BROKER_URL,
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{sql}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.name,
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": f"{self.name}:",
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
            })
        env.update(self.settings)
        return env

    def prepare(self, env: dict[str, str]) -> None:
        """Migrate Airflow's metadata database and write the admin's password file (0600)."""
        self.home.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], cwd=REPO, check=True,
                       env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)
        self.password_file.write_text(json.dumps({ADMIN: self.secrets["airflow_admin_password"]}))
        self.password_file.chmod(0o600)

    def components(self, env: dict[str, str]) -> list[Process]:
        """Every Airflow process of the stack: the API server first (the others call it), the
        scheduler last (stopped first, so no new task starts while the workers finish theirs)."""
        def airflow(name: str, *args: str, port: int | None = None,
                    extra: dict[str, str] | None = None) -> Process:
            return Process(name, ["-m", "airflow", *args], port=port, env={**env, **(extra or {})},
                           policy=RESTART)

        processes = [
            airflow("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port),
                    port=self.api_port),
            airflow("dag-processor", "dag-processor"),
            airflow("triggerer", "triggerer"),
        ]
        if self.executor == "celery":
            for n in range(1, self.workers + 1):
                processes.append(airflow(
                    f"celery-worker-{n}", "celery", "worker", "--celery-hostname", f"worker{n}@%h",
                    "--queues", self.name, "--concurrency", str(self.worker_concurrency),
                    "--skip-serve-logs",
                    extra={"HUB_WORKER_NAME": f"worker{n}",
                           "AIRFLOW__CORE__HOSTNAME_CALLABLE": "demo.worker_identity.hostname"}))
        return [*processes, airflow("scheduler", "scheduler")]
