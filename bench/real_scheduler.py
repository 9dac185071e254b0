"""Issue 11 items 3 and 4 on the real scheduler: latency one case at a time next to Airflow's own
floor, and throughput of the batched design against one mapped task per case.

    .venv/bin/python bench/real_scheduler.py [--latency-cases 100] [--throughput-cases 500]
                                             [--runs 1] [--only latency,throughput] [--json FILE]
    .venv/bin/python -m bench --only scheduler --real-stack     # the same, as lines of the table

Starts a private real Airflow as `make up` sets it up (``tests.support.airflow_stack``: API
server, scheduler, DAG processor and triggerer as separate processes, LocalExecutor, metadata on a
throwaway PostgreSQL database, free ports), over the hub's DAG files plus two of the bench's own,
the back-office and CRM simulators, the hub web app with its signals over the machine's Redis (a
channel prefix of its own) and a ledger on a throwaway PostgreSQL database. Everything is stopped
and dropped at the end.

**Latency (item 3).** ``--latency-cases`` webhooks one at a time (the next once the previous one is
written back): each case is created in the CRM simulator, which pushes it, signed, to the webhook.
Per case: webhook receipt (``cases.received_at``) to the back-office write (the attempt's
``finished_at``) and to the CRM write-back (``outbox.sent_at``). After each case, the floor: a
Redis signal for ``hub://bench/floor``, whose DAG (``bench_floor``) has one empty task, from the
publish to the run's ``end_date``: Airflow's own asset-event-to-finished-run on the same path.

**Throughput (item 4).** The same ``--throughput-cases`` cases (alternately Revenues over SOAP and
Licensing in its database) are put in the CRM (its webhook off), then one design is started and
timed until every case is confirmed in its back office and written back to the CRM:
- batched: a run of ``crm_intake`` (pull, map; emits the per-system assets), which starts the
  systems' dispatch DAGs (``send_batches``: batches of 200, write-back after each batch);
- naive: ``bench_naive``: one task pulls and maps, then one mapped task per command sends that
  command and writes its outcome back (the same hub functions with a batch of one).
The hub's own DAGs are paused while the naive design runs. Nothing here is a test: it reports
figures.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.signal_floor import (  # noqa: E402
    FLOOR_DAG, FLOOR_URI, REDIS_URL, percentile, signal_env, wait_for_watchers)
from demo.airflow_api import AirflowApi  # noqa: E402
from demo.cases import load_case  # noqa: E402
from demo.stack import Process, Stack, _tree, free_port, load_secrets, terminate  # noqa: E402
from demo.systems import SYSTEMS, CrmDemo, airflow_env  # noqa: E402
from hub.orchestration_assets import channel_for, commands_uri  # noqa: E402

NAIVE_DAG = '''"""The naive design for the bench (bench/real_scheduler.py): one mapped task per command."""
from airflow.sdk import DAG, task
from hub.orchestration import START

with DAG(dag_id="bench_naive", schedule=None, start_date=START, catchup=False,
         max_active_runs=1) as dag:
    @task
    def pull_and_map() -> list[str]:
        from hub import connections, dispatch, intake

        intake.pull_from_crm(connections.crm_client())
        intake.map_received(limit=100_000)
        return [system for system in ("revenues_northgate", "licensing_uniform")
                for _ in range(dispatch.pending_count(system))]

    @task
    def send_one(system: str) -> dict:
        from hub import connections, handoff

        report = handoff.dispatch_and_write_back(
            connections.connector_for(system), system, batch_size=1, max_batches=1,
            crm_client=connections.crm_client)
        return {"confirmed": report.sent.confirmed, "written_back": report.written_back}

    send_one.expand(system=pull_and_map())
'''
HUB_DAGS = ("crm_intake", "crm_writeback", "revenues_northgate", "licensing_uniform",
            "waste_bartec", "benefits_academy", "housing_repairs")
SIGNALLED = ("revenues_northgate", "licensing_uniform")
MAKE_UP = {"AIRFLOW__CORE__PARALLELISM": "6", "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": "6",
           "AIRFLOW__API__WORKERS": "2", "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "5"}
"""Where the test stack (``tests.support.airflow_stack.QUICK``) differs from `make up`: as `make up`."""


def describe(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_s": round(statistics.median(values), 2),
            "p95_s": round(percentile(values, 0.95), 2), "max_s": round(max(values), 2)}


@dataclass
class Bench:
    home: Path
    crm: CrmDemo
    ledger_url: str
    airflow: Any
    """tests.support.airflow_stack.AirflowStack"""
    processes: Stack
    prefix: str
    web_port: int
    api: AirflowApi

    def airflow_engine(self) -> sa.Engine:
        return sa.create_engine(self.airflow.db_url.replace("postgresql://", "postgresql+psycopg2://"),
                                pool_size=1)

    def crm_process(self, webhook: bool) -> None:
        """(Re)start the CRM simulator, pushing to the webhook or not; same database and port."""
        for process in [p for p in self.processes.processes if p.name == "crm"]:
            if process.popen:
                terminate(_tree(process.popen.pid))
                process.popen.wait(10)
            self.processes.processes.remove(process)
        url = f"http://127.0.0.1:{self.web_port}/webhooks/crm" if webhook else None
        self.processes.start(self.crm.process(url, seed=False))

    def pause(self, dag_ids: tuple[str, ...], paused: bool) -> None:
        for dag_id in dag_ids:
            self.api.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})

    def put(self, case: dict[str, Any]) -> None:
        httpx.put(f"{self.crm.base_url}/api/v1/cases/{case['id']}", timeout=30,
                  headers={"Authorization": f"Bearer {self.crm.token}"},
                  json={"case_type": case["case_type"], "data": case["data"]}).raise_for_status()


@contextlib.contextmanager
def private_stack(settings: dict[str, str] | None = None, keep: bool = False) -> Iterator[Bench]:
    """The hub on a real Airflow of its own; ``settings`` has the last word on Airflow's env."""
    from hub.ledger import db
    from tests.support.airflow_stack import airflow_stack
    from tests.support.databases import POSTGRES_ADMIN_URL, fresh_database

    # The simulators keep their SQLite files in memory, as in the ceiling bench: the figures are
    # the hub's and Airflow's, not this machine's disk flushes for a stand-in CRM (the ledger and
    # Airflow's metadata stay on PostgreSQL, on disk).
    shm = Path("/dev/shm")
    home = Path(tempfile.mkdtemp(prefix="hub-bench-real-", dir=shm if shm.is_dir() else None))
    prefix = f"hubbench{uuid.uuid4().hex[:8]}"
    names = ["crm_token", "crm_webhook_secret", *[n for c in SYSTEMS for n in c.secret_names()]]
    secrets = load_secrets(home / "secrets.json", names)
    crm = CrmDemo(home, secrets)
    systems = [cls(home, secrets) for cls in SYSTEMS]
    dags = home / "dags"
    dags.mkdir()
    for path in (REPO / "dags").glob("*.py"):
        (dags / path.name).symlink_to(path)
    (dags / "bench_floor.py").write_text(FLOOR_DAG)
    (dags / "bench_naive.py").write_text(NAIVE_DAG)
    signals = signal_env(prefix)
    with fresh_database(POSTGRES_ADMIN_URL, "hub_bench_ledger") as ledger, \
            Stack(home / "logs") as processes:
        db.migrate(ledger)
        for system in systems:
            system.prepare()
            for process in system.processes():
                processes.start(process)
        env = {**airflow_env(crm, systems), **signals, "HUB_DATABASE_URL": ledger,
               "HUB_DEADLINE_MINUTES": "30", **MAKE_UP, **(settings or {})}
        with airflow_stack(home / "airflow", dags, env) as airflow:
            web_port = free_port()
            processes.start(Process("hub-web", [
                "-m", "uvicorn", "hub.web.app:app", "--host", "127.0.0.1", "--port", str(web_port)],
                port=web_port, env={"HUB_DATABASE_URL": ledger,
                                    "CRM_WEBHOOK_SECRET": crm.webhook_secret, **signals}))
            password = json.loads((home / "airflow" /
                                   "simple_auth_manager_passwords.json.generated").read_text())["admin"]
            api = AirflowApi(airflow.api_url, "admin", password)
            bench = Bench(home, crm, ledger, airflow, processes, prefix, web_port, api)
            try:
                bench.crm_process(webhook=True)
                wait_for_dags(bench, (*HUB_DAGS, "bench_floor", "bench_naive"))
                wait_for_watchers(prefix, [commands_uri(s) for s in SIGNALLED] + [FLOOR_URI],
                                  timeout=300)
                yield bench
            finally:
                api.close()
    if keep:
        print(f"kept {home}", flush=True)
    else:
        shutil.rmtree(home, ignore_errors=True)


def wait_for_dags(bench: Bench, dag_ids: tuple[str, ...], timeout: float = 300) -> None:
    bench.api.wait_until(lambda: set(dag_ids) <= bench.api.dag_ids(), "the DAGs were not parsed",
                         timeout=timeout, poll=2)


# -- item 3 -------------------------------------------------------------------------------------
CASE_TIMES = sa.text("""
    SELECT c.received_at,
           (SELECT max(a.finished_at) FROM attempts a JOIN commands m ON m.id = a.command_id
             WHERE m.case_id = c.id AND a.outcome IN ('confirmed', 'rejected')) AS written,
           (SELECT max(o.sent_at) FROM outbox o WHERE o.case_id = c.id
             AND o.kind = 'outcome') AS written_back
    FROM cases c WHERE c.crm_id = :crm_id AND c.source = 'webhook'""")


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def latency(bench: Bench, cases: int, timeout: float = 120) -> dict[str, Any]:
    """``cases`` webhooks one at a time, each followed by one floor measurement."""
    import redis

    ledger = sa.create_engine(bench.ledger_url, pool_size=1)
    airflow_db = bench.airflow_engine()
    signals = redis.Redis.from_url(REDIS_URL)
    run = uuid.uuid4().hex[:6]
    backoffice: list[float] = []
    writeback: list[float] = []
    floor: list[float] = []
    lost = 0
    with airflow_db.connect() as conn:
        since = conn.execute(sa.text("SELECT now()")).scalar_one()
    for n in range(cases):
        case = load_case(f"lat{run}", n)
        bench.put(case)
        deadline = time.monotonic() + timeout
        row = None
        while time.monotonic() < deadline:
            with ledger.connect() as conn:
                row = conn.execute(CASE_TIMES, {"crm_id": case["id"]}).first()
            if row is not None and row.written is not None and row.written_back is not None:
                break
            time.sleep(0.1)
        if row is None or row.written is None or row.written_back is None:
            lost += 1
        else:
            backoffice.append((row.written - row.received_at).total_seconds())
            writeback.append((row.written_back - row.received_at).total_seconds())
        floor_s = floor_once(signals, airflow_db, bench.prefix, timeout)
        if floor_s is not None:
            floor.append(floor_s)
        if (n + 1) % 10 == 0:
            print(f"  latency: {n + 1}/{cases} cases; back office p50 "
                  f"{statistics.median(backoffice or [0]):.2f} s, floor p50 "
                  f"{statistics.median(floor or [0]):.2f} s", flush=True)
    with airflow_db.connect() as conn:
        runs = conn.execute(sa.text(
            "SELECT dag_id, run_type, count(*) FROM dag_run WHERE queued_at >= :t "
            "GROUP BY dag_id, run_type ORDER BY 1, 2"), {"t": since}).all()
        tis = conn.execute(sa.text(
            "SELECT count(*) FROM task_instance ti JOIN dag_run r ON r.dag_id = ti.dag_id AND "
            "r.run_id = ti.run_id WHERE r.queued_at >= :t AND ti.dag_id != 'bench_floor'"),
            {"t": since}).scalar_one()
    ledger.dispose()
    airflow_db.dispose()
    hub_runs = sum(r[2] for r in runs if r[0] != "bench_floor")
    return {"cases": cases, "unfinished": lost,
            "webhook_to_backoffice": describe(backoffice),
            "webhook_to_writeback": describe(writeback),
            "floor_signal_to_finished_run": describe(floor),
            "dag_runs_per_case": round(hub_runs / cases, 2),
            "task_instances_per_case": round(tis / cases, 2),
            "dag_runs": [list(map(str, r)) for r in runs],
            "raw": {"backoffice": backoffice, "writeback": writeback, "floor": floor}}


def floor_once(signals: Any, airflow_db: sa.Engine, prefix: str, timeout: float) -> float | None:
    """Publish one signal for the floor DAG's asset: seconds from the publish to its run's end."""
    count = sa.text("SELECT count(*) FROM dag_run WHERE dag_id = 'bench_floor'")
    finished = sa.text("SELECT max(end_date) FROM dag_run WHERE dag_id = 'bench_floor' "
                       "AND state = 'success'")
    with airflow_db.connect() as conn:
        before = conn.execute(count).scalar_one()
    deadline = time.monotonic() + timeout
    while True:
        sent = time.time()
        if signals.publish(channel_for(FLOOR_URI, prefix), json.dumps({"at": sent})):
            break   # a watcher heard it (the triggerer restarts a watcher after each event)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    while time.monotonic() < deadline:
        with airflow_db.connect() as conn:
            if conn.execute(count).scalar_one() > before:
                end = conn.execute(finished).scalar_one()
                if end is not None and _epoch(end) > sent:
                    return _epoch(end) - sent
        time.sleep(0.1)
    return None


# -- item 4 -------------------------------------------------------------------------------------
PROGRESS = sa.text("""
    SELECT (SELECT count(*) FROM commands m JOIN cases c ON c.id = m.case_id
             WHERE c.crm_id LIKE :p AND m.state IN ('confirmed', 'rejected')) AS settled,
           (SELECT count(*) FROM outbox WHERE crm_id LIKE :p AND kind = 'outcome'
             AND state = 'sent') AS written_back""")


def throughput_once(bench: Bench, design: str, cases: int, timeout: float) -> dict[str, Any]:
    """Put ``cases`` in the CRM (no webhook), start ``design``, time it to the last write-back."""
    run = f"{design[:3]}{uuid.uuid4().hex[:6]}"
    for n in range(cases):
        bench.put(load_case(run, n))
    ledger = sa.create_engine(bench.ledger_url, pool_size=1)
    started = time.time()
    dag_id = "crm_intake" if design == "batched" else "bench_naive"
    bench.api.trigger(dag_id)
    done: dict[str, Any] = {}
    while time.time() - started < timeout:
        with ledger.connect() as conn:
            done = dict(conn.execute(PROGRESS, {"p": f"LOAD-{run}-%"}).mappings().one())
        if done["settled"] >= cases and done["written_back"] >= cases:
            break
        time.sleep(0.2)
    took = time.time() - started
    ledger.dispose()
    complete = done.get("settled", 0) >= cases and done.get("written_back", 0) >= cases
    return {"design": design, "cases": cases, "seconds": round(took, 2),
            "cases_per_s": round(cases / took, 2) if complete else None, **done}


def throughput(bench: Bench, cases: int, runs: int, timeout: float = 1800,
               designs: tuple[str, ...] = ("batched", "naive")) -> dict[str, Any]:
    bench.crm_process(webhook=False)
    results: dict[str, list[dict[str, Any]]] = {"batched": [], "naive": []}
    try:
        for n in range(runs):
            if "batched" in designs:
                results["batched"].append(throughput_once(bench, "batched", cases, timeout))
                print(f"  throughput run {n + 1}: batched {results['batched'][-1]}", flush=True)
            if "naive" not in designs:
                continue
            bench.pause(HUB_DAGS, True)
            try:
                results["naive"].append(throughput_once(bench, "naive", cases, timeout))
            finally:
                bench.pause(HUB_DAGS, False)
            print(f"  throughput run {n + 1}: naive {results['naive'][-1]}", flush=True)
    finally:
        bench.crm_process(webhook=True)
    return results


# -- entry points --------------------------------------------------------------------------------
def measure(*, latency_cases: int, throughput_cases: int, runs: int = 1,
            only: tuple[str, ...] = ("latency", "throughput"),
            designs: tuple[str, ...] = ("batched", "naive"),
            settings: dict[str, str] | None = None, keep: bool = False) -> dict[str, Any]:
    """Start a private stack, measure, stop it (its folder removed unless ``keep``); the
    figures as a dict."""
    out: dict[str, Any] = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "settings": settings or {}}
    with private_stack(settings, keep) as bench:
        print(f"real stack up in {bench.home}", flush=True)
        if "latency" in only:
            out["latency"] = latency(bench, latency_cases)
        if "throughput" in only:
            out["throughput"] = throughput(bench, throughput_cases, runs, designs=designs)
        out["exited_components"] = bench.airflow.exited()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-cases", type=int, default=100)
    parser.add_argument("--throughput-cases", type=int, default=500)
    parser.add_argument("--runs", type=int, default=1, help="throughput runs (medians)")
    parser.add_argument("--only", default="latency,throughput")
    parser.add_argument("--designs", default="batched,naive",
                        help="throughput designs to run (naive takes minutes per 100 cases)")
    parser.add_argument("--set", action="append", default=[], metavar="VAR=VALUE",
                        help="an Airflow setting for every component, e.g. "
                             "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.2")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder (logs)")
    args = parser.parse_args(argv)
    settings = dict(s.split("=", 1) for s in args.set)
    out = measure(latency_cases=args.latency_cases, throughput_cases=args.throughput_cases,
                  runs=args.runs, only=tuple(x.strip() for x in args.only.split(",")),
                  designs=tuple(x.strip() for x in args.designs.split(",")), settings=settings,
                  keep=args.keep)
    summary = {k: v for k, v in out.items() if k != "latency"}
    if "latency" in out:
        summary["latency"] = {k: v for k, v in out["latency"].items() if k != "raw"}
    print(json.dumps(summary, indent=2))
    from bench import report, scheduler

    print(report.table(scheduler.figures(out)))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
