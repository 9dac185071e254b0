"""`make up` and `make demo-celery`: the hub on the real Airflow stack, every process supervised.

Airflow's metadata and the hub ledger live in PostgreSQL (``demo.postgres``); the API server,
scheduler, DAG processor, triggerer and, with the CeleryExecutor, two Celery workers run as separate
processes (``demo.airflow_stack``) beside the simulators and the hub web app, all under one
``Supervisor`` (``demo.supervisor``: restart or stop per process, nothing left running). The stack's
URLs and each process's state are kept in ``<home>/stack.json`` for tools such as bench/.

The webhook's signals reach Airflow over the machine's Redis (``HUB_SIGNAL_REDIS_URL``, default
127.0.0.1:6379, on channels prefixed with the stack's name) when it answers, else through Airflow's
REST API. A local SMTP sink keeps the e-mails to teams and the alerts in ``<home>/mail/``, and the
demo staff accounts are created in the stack's ledger (``<home>/accounts.json``).
"""
from __future__ import annotations

import os
import secrets as random_secrets
import time
from datetime import datetime, timezone
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from demo.airflow_api import AirflowApi
from demo.airflow_stack import ADMIN, SECRET_NAMES, AirflowSetup, fernet_key
from demo.driver import Demo, say
from demo.plans import run_plan
from demo.postgres import NoServer, stack_databases
from demo.stack import REPO, Process, free_port
from demo.supervisor import RESTART, StackFailed, StopRequested, Supervisor
from demo.systems import airflow_env


AIRFLOW_ONLY = {"AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"}
"""Secrets Airflow's components share that the hub web app has no use for."""


@dataclass
class StackOptions:
    home: Path
    name: str = "hub"
    """Prefix of the stack's PostgreSQL databases (<name>_airflow, <name>_ledger); Celery queue."""
    executor: str = "local"
    api_port: int = 8080
    """Airflow's API server and UI (0: a free port)."""
    web_port: int = 8700
    """The hub web app (0: a free port)."""
    web: bool = True
    systems: list[str] | None = None
    seed: bool = True
    """Load the demo cases into the CRM simulator."""
    webhooks: bool = True
    """The CRM simulator pushes each new case to the hub's webhook."""
    workers: int = 2
    worker_concurrency: int = 2
    smtp_port: int = 0
    """The SMTP sink for e-mails to teams and alerts (0: a free port)."""
    ready_timeout: float = 300.0


DEFAULT_SIGNAL_REDIS_URL = "redis://127.0.0.1:6379/0"
ALERT_EMAIL = "integration-support@council.example"


def signal_redis_url() -> str:
    """The Redis for the hub's signals when it answers (``HUB_SIGNAL_REDIS_URL``, else the
    machine's), else "" (signals go through Airflow's REST API)."""
    from hub.signals import redis_answers

    url = os.environ.get("HUB_SIGNAL_REDIS_URL") or DEFAULT_SIGNAL_REDIS_URL
    return url if redis_answers(url) else ""


def smtp_sink(home: Path, port: int) -> Process:
    """aiosmtpd writing every message into the Maildir ``home``/mail."""
    for part in ("tmp", "new", "cur"):
        (home / "mail" / part).mkdir(parents=True, exist_ok=True)
    return Process("smtp-sink", ["-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                                 "-c", "aiosmtpd.handlers.Mailbox", str(home / "mail")],
                   port=port, policy=RESTART)


def simulator_urls(systems: list[Any]) -> dict[str, str | None]:
    """Each simulator's base URL (None for those without HTTP: Benefits, Licensing), as
    ``stack.json`` keeps them for ``python -m demo.drift`` and bench/."""
    return {s.system_id: getattr(s, "base_url", None) for s in systems}


class RealStack:
    """Start the real stack under a supervisor and wait until Airflow has parsed the DAGs."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.demo = Demo(options.home)
        self.supervisor = Supervisor(options.home / "logs", status_path=options.home / "stack.json",
                                     report=say)
        self.api: AirflowApi | None = None
        self.airflow: AirflowSetup | None = None
        self.accounts_file: Path | None = None

    def start(self) -> None:
        o, d, sup = self.options, self.demo, self.supervisor
        o.home.mkdir(parents=True, exist_ok=True)
        try:
            databases = stack_databases(o.name)
        except NoServer as exc:
            raise SystemExit(f"[demo] {exc}") from exc
        makers = {"airflow_fernet_key": fernet_key,
                  **{n: (lambda: random_secrets.token_urlsafe(32)) for n in SECRET_NAMES}}
        web_port = o.web_port or free_port()
        smtp_port = o.smtp_port or free_port()
        hub_url = f"http://127.0.0.1:{web_port}"
        d.setup(only=o.systems, makers=makers, HUB_DATABASE_URL=databases.ledger,
                HUB_TASK_RETRIES="3", HUB_SMTP_HOST="127.0.0.1", HUB_SMTP_PORT=str(smtp_port),
                HUB_ALERT_EMAIL=ALERT_EMAIL, HUB_WEB_BASE_URL=hub_url)
        redis_url = signal_redis_url()
        self.airflow = airflow = AirflowSetup(
            home=o.home / "airflow", database_url=databases.airflow, executor=o.executor,
            secrets=d.secrets, name=o.name, api_port=o.api_port or free_port(),
            worker_log_port=free_port(), trigger_log_port=free_port(), workers=o.workers,
            worker_concurrency=o.worker_concurrency,
            broker_url=os.environ.get("HUB_CELERY_BROKER_URL", ""),
            signal_redis_url=redis_url, signal_prefix=o.name)
        env = {**d.env, **airflow.environment(), "HUB_AIRFLOW_UI_URL": airflow.api_url}
        say(f"preparing the ledger and Airflow's metadata in PostgreSQL ({o.name}_*); "
            f"executor: {o.executor}; signals to Airflow: "
            + (f"Redis ({o.name}.* channels)" if redis_url else "REST API (no Redis answers)"))
        from demo import accounts as demo_accounts
        from hub.ledger import db

        db.migrate(databases.ledger)
        self.accounts_file = demo_accounts.ensure(o.home)
        airflow.prepare(env)
        sup.info = {"name": o.name, "executor": o.executor, "home": str(o.home),
                    "airflow_url": airflow.api_url, "airflow_username": ADMIN,
                    "airflow_password_file": str(airflow.password_file),
                    "hub_url": hub_url if o.web else None,
                    "signals": "redis" if redis_url else "airflow-rest",
                    "mail_dir": str(o.home / "mail"),
                    "crm_url": d.crm.base_url, "ledger_database_url": databases.ledger,
                    "airflow_database_url": databases.airflow,
                    "systems": [s.system_id for s in d.systems],
                    "simulator_urls": simulator_urls(d.systems),
                    "ready": False}
        say("starting simulators: " + ", ".join(s.system_id for s in d.systems)
            + f"; an SMTP sink on 127.0.0.1:{smtp_port}")
        sup.start(smtp_sink(o.home, smtp_port))
        d.start_systems(sup)
        env.update(airflow_env(d.crm, d.systems))
        d.env = env
        sup.info["hub_env"] = str(d.write_hub_env())
        if o.web:
            sup.start(Process("hub-web", ["-m", "uvicorn", "hub.web.app:app", "--host", "127.0.0.1",
                                          "--port", str(web_port)], port=web_port, policy=RESTART,
                              env={**{k: v for k, v in env.items() if k not in AIRFLOW_ONLY},
                                   "CRM_WEBHOOK_SECRET": d.secrets["crm_webhook_secret"],
                                   "HUB_API_TOKEN": d.secrets["hub_api_token"],
                                   "HUB_AIRFLOW_API_URL": airflow.api_url,
                                   "HUB_AIRFLOW_USERNAME": ADMIN,
                                   "HUB_AIRFLOW_PASSWORD_FILE": str(airflow.password_file)}))
        say("starting Airflow: " + ", ".join(p.name for p in airflow.components(env)))
        for component in airflow.components(env):   # all at once; wait_ready sees them up
            sup.start(component, wait=False)
        webhook = f"{sup.info['hub_url']}/webhooks/crm" if o.web and o.webhooks else None
        sup.start(d.crm.process(webhook_url=webhook, seed=o.seed))
        self.api = AirflowApi(airflow.api_url, ADMIN, d.secrets["airflow_admin_password"])

    def expected_dags(self) -> set[str]:
        systems = [s.system_id for s in self.demo.systems]
        return {"crm_intake", "crm_writeback", *systems, *[f"{s}_status_sync" for s in systems]}

    def signal_channels(self) -> list[str]:
        """The Redis channels the stack's asset watchers listen on (one per system's commands
        asset, the CRM cases and the outbox)."""
        from hub.orchestration_assets import CRM_CASES_URI, OUTBOX_URI, channel_for, commands_uri

        uris = [CRM_CASES_URI, OUTBOX_URI, *[commands_uri(s.system_id) for s in self.demo.systems]]
        return [channel_for(uri, self.options.name) for uri in uris]

    def wait_ready(self) -> None:
        """Airflow's components report healthy and every DAG of the stack is parsed."""
        api, tick, timeout = self.api, self.supervisor.check, self.options.ready_timeout
        assert api is not None
        components = ("metadatabase", "scheduler", "triggerer", "dag_processor")

        def healthy() -> bool:
            health = api.health()
            return all(health.get(c, {}).get("status") == "healthy" for c in components)

        api.wait_until(healthy, "Airflow's components are not all healthy", timeout=timeout,
                       tick=tick)
        expected = self.expected_dags()
        api.wait_until(lambda: expected <= api.dag_ids(), "the DAGs are not all parsed",
                       timeout=timeout, tick=tick)
        if self.airflow is not None and self.airflow.signal_redis_url:
            channels = self.signal_channels()
            api.wait_until(lambda: watchers_listening(self.airflow.signal_redis_url, channels),
                           "the asset watchers are not all listening on Redis", timeout=timeout,
                           tick=tick)
        self.supervisor.info["ready"] = True
        self.supervisor.write_status()


def watchers_listening(redis_url: str, channels: list[str]) -> bool:
    """Every channel has a subscriber (the triggerer runs its asset's watcher)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return all(n > 0 for _, n in client.pubsub_numsub(*channels))
    except redis.RedisError:
        return False
    finally:
        client.close()


class RestRunner:
    """Runs a demo stage by triggering its DAGs through the REST API; the scheduler runs them."""

    def __init__(self, api: AirflowApi, tick: Any, timeout: float = 900.0) -> None:
        self.api, self.tick, self.timeout = api, tick, timeout

    def run_stage(self, dag_ids: list[str]) -> list[str]:
        started = time.monotonic()
        runs = [(dag_id, self.api.trigger(dag_id)) for dag_id in dag_ids]
        states = self.api.wait_for_runs(runs, timeout=self.timeout, tick=self.tick)
        for dag_id, run_id in runs:
            say(f"  Airflow DAG run {dag_id}: {states[run_id]} "
                f"({time.monotonic() - started:.1f} s)")
        return [states[run_id] for _, run_id in runs]



def tasks_by_host(api: AirflowApi, since: str) -> dict[str, Counter[str]]:
    """For every task instance started since ``since`` (the runs the demo triggered and those the
    scheduler started on asset events and timetables): the host (worker) that ran it."""
    hosts: dict[str, Counter[str]] = defaultdict(Counter)
    for ti in api.task_instances_since(since):
        if ti.get("hostname"):
            hosts[ti["hostname"]][f"{ti['dag_id']}.{ti['task_id']}"] += 1
    return dict(hosts)


def reconcile_hints(info: dict[str, Any], home: Path) -> list[str]:
    """How a person reconciles this stack from another terminal, and makes a drift to find."""
    env_file = info.get("hub_env") or str(home / "hub.env")
    home_arg = "" if home.resolve() == (REPO / "var" / "up").resolve() else f" --home {home}"
    lines = [f"the ledger and Connections of this stack for `hub`: {env_file} (private, 0600); "
             f"reconcile from another terminal: .venv/bin/hub --env-file {env_file} reconcile "
             "[--system S] [--dry-run]",
             f"change a record behind the hub's back: .venv/bin/python -m demo.drift{home_arg} "
             "field_mismatch licensing_uniform (or missing_in_backoffice, unknown_in_backoffice, "
             "status_not_in_crm; any system)"]
    from demo.drift import DRIFT_STATUS

    for system, url in sorted((info.get("simulator_urls") or {}).items()):
        status = next((v for k, v in DRIFT_STATUS.items()
                       if system.startswith(k) and k.split("_")[0] in ("housing", "revenues",
                                                                      "waste")), None)
        if url and status:
            lines.append(f"  or by hand ({system}): curl -X POST {url}/admin/drift/records/"
                         f"<reference> -H 'content-type: application/json' -d "
                         f"'{{\"status\": \"{status}\"}}'")
    return lines


def up(options: StackOptions) -> int:
    """Keep the stack running until Ctrl-C or SIGTERM (0), or until a fatal exit (1)."""
    Supervisor.stop_on_signals()
    stack = RealStack(options)
    try:
        with stack.supervisor:
            stack.start()
            stack.wait_ready()
            info = stack.supervisor.info
            say(f"running. Airflow UI: {info['airflow_url']} (user {ADMIN}; password in "
                f"{info['airflow_password_file']})"
                + (f"; hub pages: {info['hub_url']}/" if info["hub_url"] else "")
                + f"; CRM simulator: {info['crm_url']}; state of every process: "
                f"{options.home / 'stack.json'}")
            if info["hub_url"] and stack.accounts_file is not None:
                from demo import accounts as demo_accounts

                for line in demo_accounts.describe(stack.accounts_file, info["hub_url"]):
                    say(line)
                say(f"the same pages inside Airflow: {info['airflow_url']}/hub/ (its Integration "
                    f"hub menu); e-mails to teams and alerts land in {info['mail_dir']}")
            for line in reconcile_hints(info, options.home):
                say(line)
            say("press Ctrl-C to stop everything")
            code = stack.supervisor.run()
            say("stopping everything")
            return code
    except StopRequested as exc:
        say(f"{exc}: stopped everything")
        return 0
    except (StackFailed, TimeoutError, RuntimeError, httpx.HTTPError) as exc:
        say(f"{exc}; stopped everything")
        return 1


def demo_celery(options: StackOptions) -> int:
    """The demo flow on the CeleryExecutor: DAG runs triggered through the REST API, run by the
    scheduler on two Celery workers; the summary of ``make demo`` and who ran which task."""
    Supervisor.stop_on_signals()
    started = time.monotonic()
    stack = RealStack(options)
    try:
        with stack.supervisor:
            stack.start()
            stack.wait_ready()
            d = stack.demo
            from hub import reports

            before = reports.system_figures()
            since = datetime.now(timezone.utc).isoformat()
            effects_before = {s.system_id: s.effects() for s in d.systems}
            say(f"CRM holds {d.crm.stats().get('cases', '?')} sample cases; triggering the DAGs "
                "through Airflow's REST API (the scheduler runs them on the Celery workers)")
            runner = RestRunner(stack.api, stack.supervisor.check)
            systems = [s.system_id for s in d.systems]
            failures = run_plan("deliver", systems, [s.system_id for s in d.systems if s.asynchronous],
                                runner.run_stage)
            changed = d.staff_changes()
            if changed:
                say("back-office staff changed one record in each system: "
                    + ", ".join(f"{k} {v[0]}" for k, v in changed.items()) + "; syncing status")
            else:
                say("staff changes were made on an earlier run; syncing status again "
                    "(expect nothing new)")
            failures += run_plan("sync", systems, [], runner.run_stage)
            summary = d.summarise(before, effects_before)
            crm_stats = d.crm.stats()
            hosts = tasks_by_host(stack.api, since)
    except StopRequested as exc:
        say(f"{exc}: stopped everything")
        return 130
    except (StackFailed, TimeoutError, RuntimeError, httpx.HTTPError) as exc:
        say(f"{exc}; stopped everything")
        return 1
    d.print_summary(summary, crm_stats)
    print()
    print_workers(hosts)
    say(f"done in {time.monotonic() - started:.0f} s; logs in {options.home / 'logs'}; "
        "everything it started is stopped")
    if failures:
        say(f"{failures} DAG run(s) did not succeed; see the Airflow logs in "
            f"{options.home / 'airflow' / 'logs'}")
        return 1
    return 0


def print_workers(hosts: dict[str, Counter[str]]) -> None:
    print("Celery workers (from the hostname Airflow recorded on each task instance):")
    for host in sorted(hosts):
        tasks = hosts[host]
        print(f"  {host}: {sum(tasks.values())} task instances: "
              + ", ".join(f"{name} x{n}" if n > 1 else name for name, n in sorted(tasks.items())))
    workers = [h for h in hosts if h.startswith("worker")]
    if len(workers) < 2:
        print(f"  (only {len(workers)} worker(s) ran tasks this time)")
