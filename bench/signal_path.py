"""Webhook to back-office write to CRM write-back, one case at a time, on a real Airflow.

    .venv/bin/python bench/signal_path.py [--cases 30] [--pace 4] [--signals redis|rest|none]

A private Airflow (API server, scheduler, DAG processor and triggerer as separate processes,
LocalExecutor, metadata on a throwaway PostgreSQL database, free ports), the hub's own DAG folder,
the back-office and CRM simulators, the hub web app (signals over the machine's Redis with a channel
prefix of its own), and a ledger on a throwaway PostgreSQL database. The CRM simulator pushes each
case to the webhook as it is created. Prints, per case, p50/p95 from webhook receipt to the
back-office write and to the CRM write-back, and the DAG runs and task instances Airflow started
per case, next to Airflow's own floor measured in the same instance: a signal for an asset whose
DAG has one empty task, from publish to finished run. Benefits (batch files answered later) is
left out: its answer waits for the file exchange by design. ``--signals rest`` drives Airflow
through its REST API instead (and also runs the code of hubs before the Redis signals). Nothing
here is a test: it only reports figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.signal_floor import (  # noqa: E402
    FLOOR_DAG, FLOOR_URI, REDIS_URL, percentile, signal_env, wait_for_watchers)
from demo.stack import Process, Stack, free_port, load_secrets  # noqa: E402
from demo.systems import SYSTEMS, CrmDemo, airflow_env  # noqa: E402
from hub.orchestration_assets import channel_for, commands_uri  # noqa: E402
from simulators.world import demo_cases  # noqa: E402
from tests.support.airflow_stack import airflow_stack  # noqa: E402
from tests.support.databases import POSTGRES_ADMIN_URL, fresh_database  # noqa: E402

SKIP_TYPES = {"hb_change_of_circumstances"}   # batch files: answered on the next file exchange


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--pace", type=float, default=4.0, help="seconds between cases")
    parser.add_argument("--signals", choices=["redis", "rest", "none"], default="redis")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="hub-bench-signal-"))
    prefix = f"hubbench{uuid.uuid4().hex[:8]}"
    names = ["crm_token", "crm_webhook_secret", *[n for c in SYSTEMS for n in c.secret_names()]]
    secrets = load_secrets(home / "secrets.json", names)
    crm = CrmDemo(home, secrets)
    systems = [cls(home, secrets) for cls in SYSTEMS]
    sample = [c for c in demo_cases() if c["case_type"] not in SKIP_TYPES]
    dags = home / "dags"   # the hub's DAG files, and the floor DAG when signals go over Redis
    dags.mkdir()
    for path in (REPO / "dags").glob("*.py"):
        (dags / path.name).symlink_to(path)
    if args.signals == "redis":
        (dags / "bench_floor.py").write_text(FLOOR_DAG)
    with fresh_database(POSTGRES_ADMIN_URL, "hub_bench_ledger") as ledger, \
            Stack(home / "logs") as stack:
        from hub.ledger import db

        db.migrate(ledger)
        signals = signal_env(prefix) if args.signals == "redis" else {}
        for system in systems:
            system.prepare()
            for process in system.processes():
                stack.start(process)
        env = {**airflow_env(crm, systems), **signals, "HUB_DATABASE_URL": ledger,
               "HUB_SIGNAL_POLL_SECONDS": "0.2"}
        with airflow_stack(home / "airflow", dags, env) as airflow:
            web_port = free_port()
            web_env = {"HUB_DATABASE_URL": ledger, "CRM_WEBHOOK_SECRET": crm.webhook_secret,
                       **signals}
            if args.signals == "rest":
                web_env.update({"HUB_AIRFLOW_API_URL": f"http://127.0.0.1:{airflow.port}",
                                "HUB_AIRFLOW_USERNAME": "admin", "HUB_AIRFLOW_PASSWORD_FILE": str(
                                    home / "airflow" / "simple_auth_manager_passwords.json.generated")})
            stack.start(Process("hub-web", ["-m", "uvicorn", "hub.web.app:app", "--host",
                                            "127.0.0.1", "--port", str(web_port)],
                                port=web_port, env=web_env))
            stack.start(Process("crm", ["-m", "simulators.crm", "--host", "127.0.0.1", "--port",
                                        str(crm.port), "--db", str(home / "crm.db"), "--webhook-url",
                                        f"http://127.0.0.1:{web_port}/webhooks/crm"],
                                port=crm.port, env={"CRM_SIM_TOKEN": crm.token,
                                                    "CRM_WEBHOOK_SECRET": crm.webhook_secret}))
            if args.signals == "redis":
                wait_for_watchers(prefix, [commands_uri(s) for s in (
                    "revenues_northgate", "waste_bartec", "licensing_uniform")], timeout=240)
            else:
                time.sleep(60)   # the DAG processor has parsed the DAG files
            started = airflow.query("select now()")[0][0]
            print(f"Airflow up; sending {args.cases} cases, one every {args.pace} s", flush=True)
            floor: list[float] = []
            for n in range(args.cases):
                case = sample[n % len(sample)]
                httpx.put(f"{crm.base_url}/api/v1/cases/BENCH-{n:04d}", timeout=10,
                          headers={"Authorization": f"Bearer {crm.token}"},
                          json={"case_type": case["case_type"], "data": case["data"]}
                          ).raise_for_status()
                time.sleep(args.pace / 2)
                if args.signals == "redis":
                    floor.append(floor_once(airflow, prefix, n))
                time.sleep(args.pace / 2)
            figures = collect(ledger, args.cases, timeout=240)
            figures["floor"] = [f for f in floor if f > 0]
            runs = airflow.query("select dag_id, run_type, count(*) from dag_run where "
                                 "queued_at >= :t group by dag_id, run_type order by 1, 2",
                                 t=started)
            tis = airflow.query("select count(*) from task_instance ti join dag_run r on "
                                "r.dag_id = ti.dag_id and r.run_id = ti.run_id where "
                                "r.queued_at >= :t and ti.state in ('success', 'failed') "
                                "and ti.dag_id != 'bench_floor'", t=started)[0][0]
            exited = airflow.exited()
    report(figures, runs, tis, args.cases, exited)
    return 0


def floor_once(airflow, prefix: str, n: int, timeout: float = 60) -> float:  # type: ignore[no-untyped-def]
    """Publish one signal for the floor DAG's asset; seconds until its run finished (-1: timeout)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    before = airflow.query("select count(*) from dag_run where dag_id = 'bench_floor'")[0][0]
    started = time.monotonic()
    deadline = started + timeout
    while not client.publish(channel_for(FLOOR_URI, prefix), json.dumps({"n": n})):
        if time.monotonic() > deadline:
            return -1.0
        time.sleep(0.05)
    sent = time.monotonic()
    while time.monotonic() < deadline:
        done = airflow.query("select count(*) from dag_run where dag_id = 'bench_floor' "
                             "and state = 'success'")[0][0]
        if done > before:
            return time.monotonic() - sent
        time.sleep(0.1)
    return -1.0


def collect(ledger: str, count: int, timeout: float) -> dict[str, list[float]]:
    engine = sa.create_engine(ledger)
    deadline = time.monotonic() + timeout
    query = sa.text("""
        select c.crm_id, c.received_at,
               (select max(a.finished_at) from attempts a join commands m on m.id = a.command_id
                 where m.case_id = c.id and a.outcome in ('confirmed', 'rejected')) as written,
               (select max(o.sent_at) from outbox o where o.case_id = c.id) as written_back,
               (select count(*) from commands m where m.case_id = c.id and
                 m.state not in ('confirmed', 'rejected')) as open,
               (select count(*) from outbox o where o.case_id = c.id and o.state != 'sent') as unsent
        from cases c where c.crm_id like 'BENCH-%' and c.source = 'webhook'""")
    rows: list = []
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            rows = list(conn.execute(query))
        if len(rows) == count and all(r.open == 0 and r.unsent == 0 and r.written_back
                                      for r in rows):
            break
        time.sleep(1)
    engine.dispose()
    done = [r for r in rows if r.written and r.written_back]
    return {"backoffice": [(r.written - r.received_at).total_seconds() for r in done],
            "writeback": [(r.written_back - r.received_at).total_seconds() for r in done],
            "cases": [len(rows)], "complete": [len(done)]}


def report(figures: dict[str, list[float]], runs: list[tuple], tis: int, cases: int,
           exited: dict[str, int]) -> None:
    print(f"cases sent {cases}, recorded from the webhook {figures['cases'][0]}, "
          f"complete {figures['complete'][0]}")
    for name in ("backoffice", "writeback", "floor"):
        values = figures[name]
        if values:
            print(f"{'signal' if name == 'floor' else 'webhook'} -> {name:<10} p50 {statistics.median(values):5.2f} s   "
                  f"p95 {percentile(values, 0.95):5.2f} s   max {max(values):5.2f} s")
    total = sum(r[2] for r in runs if r[0] != "bench_floor")
    print("DAG runs started while cases arrived:")
    for dag_id, run_type, n in runs:
        print(f"  {dag_id:<32} {run_type:<16} {n}")
    print(f"per case (floor DAG excluded): {total / cases:.2f} DAG runs, {tis / cases:.2f} task instances "
          "(including timetable runs in the window)")
    print(json.dumps({"exited_components": exited}))


if __name__ == "__main__":
    sys.exit(main())
