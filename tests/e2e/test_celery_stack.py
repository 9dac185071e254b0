"""The real stack with the CeleryExecutor, as `make up EXECUTOR=celery` runs it: PostgreSQL for
Airflow's metadata, the Celery result backend and the ledger; Redis as the broker; api-server,
scheduler, dag-processor, triggerer and two Celery workers, all under the supervisor.

About 40 cases over two back offices go through DAG runs the scheduler runs on the workers. Every
case is confirmed exactly once in its back office and written back once; both workers run tasks;
and two dispatch tasks of one system running at the same time on different workers never send one
command twice (the claim takes rows with FOR UPDATE SKIP LOCKED on PostgreSQL; the Revenues
simulator counts every DirectDebitCreate call it receives). Then the supervisor's promises on the
real processes: a killed worker is reported at once and restarted with what it left behind stopped,
and SIGTERM stops everything. Skipped, saying why, only when Redis or PostgreSQL does not answer.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.support.databases import POSTGRES_ADMIN_URL

REPO = Path(__file__).resolve().parents[2]
SYSTEMS = ("revenues_northgate", "licensing_uniform")
ROUND_ONE = 40
BATCH_SIZE = 4
SLOW_CALL_SECONDS = 1.0
pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.timeout(1200)]


def redis_answers() -> str | None:
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_timeout=3, socket_connect_timeout=3).ping()
        return None
    except redis.RedisError as exc:
        return f"Redis does not answer on 127.0.0.1:6379 ({type(exc).__name__})"


def postgres_answers() -> str | None:
    from demo.postgres import answers

    return None if answers(POSTGRES_ADMIN_URL) else "PostgreSQL does not answer on 127.0.0.1:5432"


@dataclass
class RunningStack:
    proc: subprocess.Popen
    home: Path
    name: str
    output: Path
    started_at: str

    def status(self) -> dict[str, Any]:
        return json.loads((self.home / "stack.json").read_text())

    def secrets(self) -> dict[str, str]:
        return json.loads((self.home / "secrets.json").read_text())

    def out(self) -> str:
        return self.output.read_text(errors="replace")

    def api(self):  # type: ignore[no-untyped-def]
        from demo.airflow_api import AirflowApi

        info = self.status()
        return AirflowApi(info["airflow_url"], info["airflow_username"],
                          self.secrets()["airflow_admin_password"])


def leftovers(home: Path) -> list[str]:
    """Processes still running that belong to the stack in ``home`` (by command line or env)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid == os.getpid():
                continue
            text = " ".join(proc.info["cmdline"] or [])
            env = proc.environ() if str(home) not in text else {}
            if str(home) in text or env.get("HUB_DEMO_HOME") == str(home):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(f"{proc.pid} {text[:120]}")
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    for reason in (redis_answers(), postgres_answers()):
        if reason:
            pytest.skip(reason)
    home = tmp_path_factory.mktemp("celery-stack")
    name = f"hub_ct_{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HUB_"))}
    env.update(HUB_DEMO_HOME=str(home), HUB_POSTGRES_URL=POSTGRES_ADMIN_URL,
               HUB_BATCH_SIZE=str(BATCH_SIZE))
    output = home / "up.out"
    started_at = datetime.now(timezone.utc).isoformat()
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "demo", "--up", "--executor", "celery", "--name", name,
             "--api-port", "0", "--web-port", "0", "--systems", *SYSTEMS, "--no-seed",
             "--no-webhooks", "--worker-concurrency", "1", "--smtp-port", "0"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    running = RunningStack(proc, home, name, output, started_at)
    try:
        deadline = time.monotonic() + 480
        while True:
            assert proc.poll() is None, f"make up exited ({proc.returncode}):\n{running.out()[-4000:]}"
            path = home / "stack.json"
            if path.exists() and json.loads(path.read_text()).get("ready"):
                break
            assert time.monotonic() < deadline, f"the stack was not ready:\n{running.out()[-4000:]}"
            time.sleep(1)
        print(f"\n[celery stack] ready in {time.monotonic() - deadline + 480:.0f} s")
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
        from demo.postgres import drop_database

        for suffix in ("airflow", "ledger"):
            drop_database(POSTGRES_ADMIN_URL, f"{name}_{suffix}")
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379, db=5)
        keys = list(client.scan_iter(f"{name}:*"))
        if keys:
            client.delete(*keys)


def put_cases(stack: RunningStack, cases: list[dict[str, Any]]) -> None:
    info, token = stack.status(), stack.secrets()["crm_token"]
    with httpx.Client(base_url=info["crm_url"], timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as crm:
        for case in cases:
            crm.put(f"/api/v1/cases/{case['id']}",
                    json={"case_type": case["case_type"], "data": case["data"]}).raise_for_status()


def run_flow(stack: RunningStack) -> None:
    """Intake, dispatch to both systems, write-back: DAG runs triggered through the REST API,
    run by the scheduler on the Celery workers (asset events start more runs on their own)."""
    from demo.plans import run_plan
    from demo.realstack import RestRunner

    api = stack.api()
    try:
        failures = run_plan("deliver", list(SYSTEMS), [], RestRunner(api, lambda: None).run_stage)
    finally:
        api.close()
    assert failures == 0, stack.out()[-3000:]


def overlapping_dispatches(stack: RunningStack) -> list[tuple[dict, dict]]:
    """Pairs of one system's dispatch tasks (``send_batches``, mapped over the dispatch lanes)
    that ran at the same time on different workers."""
    api = stack.api()
    try:
        tis = [ti for ti in api.task_instances_since(stack.started_at)
               if ti["task_id"] == "send_batches" and ti["start_date"] and ti["end_date"]]
    finally:
        api.close()
    pairs = []
    for i, a in enumerate(tis):
        for b in tis[i + 1:]:
            if a["dag_id"] == b["dag_id"] and a["hostname"] != b["hostname"] \
                    and a["start_date"] < b["end_date"] and b["start_date"] < a["end_date"]:
                pairs.append((a, b))
    return pairs


@pytest.fixture(scope="module")
def delivered(stack: RunningStack) -> dict[str, Any]:
    """Round one: 40 cases over two systems. If no two dispatch tasks of one system happened to
    overlap on different workers, a second round of Revenues cases makes them (the assertion
    below needs that to have happened, not to be luck)."""
    from demo.cases import load_case

    started = time.monotonic()
    cases = [load_case("ct", n, SYSTEMS) for n in range(ROUND_ONE)]
    put_cases(stack, cases)
    run_flow(stack)
    print(f"[celery stack] round 1 in {time.monotonic() - started:.0f} s")
    rounds = 1
    while not overlapping_dispatches(stack) and rounds < 3:
        # Batches now take milliseconds, so one lane's task can drain them all before the other
        # worker has started its own: make every Revenues call slow (answered after
        # SLOW_CALL_SECONDS, well within the client's timeout) so the lanes are still sending
        # when both workers run them. Slow calls are applied once, like any other.
        more = [load_case(f"ct{rounds}", n, (SYSTEMS[0],)) for n in range(8 * BATCH_SIZE)]
        with slow_revenues(stack):
            put_cases(stack, more)
            run_flow(stack)
        cases += more
        rounds += 1
    return {"cases": cases, "rounds": rounds}


@contextmanager
def slow_revenues(stack: RunningStack) -> Iterator[None]:
    """Every call to the Revenues simulator answered ``SLOW_CALL_SECONDS`` late (its ``timeout``
    fault with a delay shorter than the connector's timeout), until the block ends."""
    url = stack.status()["simulator_urls"][SYSTEMS[0]]
    httpx.post(f"{url}/admin/faults", timeout=10,
               json={"count": 1000, "mode": "timeout",
                     "delay_seconds": SLOW_CALL_SECONDS}).raise_for_status()
    try:
        yield
    finally:
        httpx.delete(f"{url}/admin/faults", timeout=10).raise_for_status()


def test_every_case_is_confirmed_once_in_its_back_office_and_written_back_once(
        stack: RunningStack, delivered: dict[str, Any]) -> None:
    from sqlalchemy import select

    from hub.ledger.db import session_scope
    from hub.ledger.models import Case, Command
    from simulators.licensing.backoffice import LicensingBackOffice

    cases = delivered["cases"]
    ids = [c["id"] for c in cases]
    with session_scope(stack.status()["ledger_database_url"]) as session:
        rows = session.execute(select(Case.crm_id, Command.system, Command.key, Command.state)
                               .join(Command, Command.case_id == Case.id)
                               .where(Case.crm_id.in_(ids))).all()
    assert sorted(r.crm_id for r in rows) == sorted(ids), "one command per case"
    assert {r.state for r in rows} == {"confirmed"}, [r for r in rows if r.state != "confirmed"][:5]
    keys = {system: {r.key for r in rows if r.system == system} for system in SYSTEMS}

    info, token = stack.status(), stack.secrets()["crm_token"]
    with httpx.Client(base_url=info["crm_url"], timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as crm:
        for crm_id in ids:
            updates = crm.get(f"/api/v1/cases/{crm_id}/updates").json()["updates"]
            assert [u["status"] for u in updates] == ["completed"], (crm_id, updates)

    revenues = info["simulator_urls"]["revenues_northgate"]
    stats = httpx.get(f"{revenues}/admin/stats", timeout=10).json()
    assert stats["calls"].get("DirectDebitCreate") == len(keys["revenues_northgate"]), \
        "each command sent to Revenues exactly once, however many workers dispatched"
    assert stats["effects"] == len(keys["revenues_northgate"])

    licensing = LicensingBackOffice(f"sqlite:///{stack.home / 'licensing.db'}")
    try:
        ext_refs = [a["EXT_REF"] for a in licensing.applications()]
    finally:
        licensing.close()
    assert sorted(ext_refs) == sorted(keys["licensing_uniform"]), "one application per command"


def test_both_workers_ran_tasks_and_dispatches_overlapped_on_different_workers(
        stack: RunningStack, delivered: dict[str, Any]) -> None:
    api = stack.api()
    try:
        hosts = {ti["hostname"] for ti in api.task_instances_since(stack.started_at)
                 if ti["hostname"]}
    finally:
        api.close()
    workers = {h.split("@")[0] for h in hosts}
    assert {"worker1", "worker2"} <= workers, hosts
    pairs = overlapping_dispatches(stack)
    assert pairs, f"no two dispatch tasks of one system overlapped in {delivered['rounds']} rounds"


def test_a_webhook_reaches_the_back_office_and_the_crm_through_a_redis_signal(
        stack: RunningStack, delivered: dict[str, Any]) -> None:
    """The web app records and maps a signed webhook, publishes a signal on the stack's Redis
    channel, the asset's watcher (DAG processor + triggerer) starts only that system's dispatch
    run, and its ``send_batches`` writes the outcome back to the CRM: no REST trigger, no cron."""
    from crm_adapter.webhook import signed_headers
    from demo.cases import load_case

    info, secrets = stack.status(), stack.secrets()
    assert info["signals"] == "redis"
    case = load_case("sig", 0, (SYSTEMS[0],))
    put_cases(stack, [case])   # the CRM holds it (it pushes nothing: --no-webhooks)
    crm = httpx.Client(base_url=info["crm_url"], timeout=30,
                       headers={"Authorization": f"Bearer {secrets['crm_token']}"})
    hub = httpx.Client(base_url=info["hub_url"], timeout=30)
    api = stack.api()
    try:
        since = datetime.now(timezone.utc).isoformat()
        body = json.dumps(crm.get(f"/api/v1/cases/{case['id']}").json(), sort_keys=True).encode()
        answer = hub.post("/webhooks/crm", content=body, headers=signed_headers(
            secrets["crm_webhook_secret"].encode(), body, uuid.uuid4().hex))
        assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 120
        while not crm.get(f"/api/v1/cases/{case['id']}/updates").json()["updates"]:
            assert time.monotonic() < deadline, "not written back within 120 s of the webhook"
            time.sleep(0.5)
        updates = crm.get(f"/api/v1/cases/{case['id']}/updates").json()["updates"]
        assert [u["status"] for u in updates] == ["completed"]
        figures = hub.get("/api/signals",
                          headers={"Authorization": f"Bearer {secrets['hub_api_token']}"}).json()
        assert figures["transport"] == "redis" and figures["failed"] == 0, figures
        assert figures["by_asset"].get(f"hub://ledger/commands/{SYSTEMS[0]}", 0) >= 1, figures
        runs = api.request("GET", "/api/v2/dags/~/dagRuns",
                           params={"start_date_gte": since, "limit": 100})["dag_runs"]
        started = {(r["dag_id"], r["run_type"]) for r in runs}
        assert (SYSTEMS[0], "asset_triggered") in started, started
        assert not any(dag_id == SYSTEMS[1] and kind == "asset_triggered"
                       for dag_id, kind in started), "only the case's own system was started"
    finally:
        crm.close()
        hub.close()
        api.close()


def test_a_killed_worker_is_reported_at_once_and_restarted(stack: RunningStack,
                                                          delivered: dict[str, Any]) -> None:
    before = stack.status()["components"]["celery-worker-2"]
    pid = before["pid"]
    children = psutil.Process(pid).children(recursive=True)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while f"celery-worker-2 (pid {pid}) killed by SIGKILL" not in stack.out():
        assert time.monotonic() < deadline, "the exit was not reported within 5 s:\n" + stack.out()[-2000:]
        time.sleep(0.1)
    deadline = time.monotonic() + 30
    while stack.status()["components"]["celery-worker-2"]["restarts"] < 1:
        assert time.monotonic() < deadline, stack.out()[-2000:]
        time.sleep(0.5)
    after = stack.status()["components"]["celery-worker-2"]
    assert after["pid"] != pid and psutil.pid_exists(after["pid"])
    assert [e["code"] for e in after["exits"]] == [-signal.SIGKILL]
    deadline = time.monotonic() + 10
    while any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children):
        assert time.monotonic() < deadline, "the worker's pool processes were left running"
        time.sleep(0.2)


def test_sigterm_stops_everything_and_leaves_nothing_running(stack: RunningStack,
                                                             delivered: dict[str, Any]) -> None:
    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(120) == 0, stack.out()[-2000:]
    assert "SIGTERM: stopped everything" in stack.out()
    assert leftovers(stack.home) == []
