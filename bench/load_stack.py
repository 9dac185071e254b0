"""What the real-stack load benchmarks share: the stack, the CRM as load source, probes, progress.

The harness looks at the hub from outside, the way an operations team would, so it does not care how
intake is triggered: it creates cases in the CRM simulator (which pushes each one, signed, to the
hub's webhook, as a council's CRM does), and watches the ledger (each case's command confirmed, its
outcome written back), the back offices' own counts, Airflow's ``/api/v2/monitor/health`` and the
hub's ``/healthz``, the supervisor's record of process exits (``stack.json``), the counters of the hub
web app's signal publisher (``GET /api/signals`` with the API token: signals sent to Airflow, heard
by a watcher, failed, given up) and, through Airflow's REST API, which DAG runs started and why
(asset events from signals, timetables, manual triggers).

The stack is the one `make up` keeps running (``var/up/stack.json``), or one the benchmark starts
itself (``--start``: a private folder, its own PostgreSQL databases, dropped afterwards).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from demo.cases import SYSTEM_OF, load_case  # noqa: E402

PUSH_FAILURE = re.compile(r"CRM sim: push of case .* (failed|answered HTTP)")


# -- the stack ---------------------------------------------------------------------------------
@dataclass
class Stack:
    home: Path
    info: dict[str, Any]
    secrets: dict[str, str]
    started: subprocess.Popen | None = None

    @classmethod
    def read(cls, home: Path) -> "Stack":
        return cls(home, json.loads((home / "stack.json").read_text()),
                   json.loads((home / "secrets.json").read_text()))

    def refresh(self) -> None:
        self.info = json.loads((self.home / "stack.json").read_text())

    def exits(self) -> dict[str, int]:
        """Process exits the supervisor has seen so far, per process."""
        self.refresh()
        return {name: len(c["exits"]) for name, c in self.info["components"].items()}

    def log_matches(self, process: str, pattern: re.Pattern[str]) -> int:
        path = self.home / "logs" / f"{process}.log"
        if not path.exists():
            return 0
        with open(path, errors="replace") as log:
            return sum(1 for line in log if pattern.search(line))


def _alive(home: Path) -> bool:
    try:
        info = json.loads((home / "stack.json").read_text())
    except (OSError, ValueError):
        return False
    pid = info.get("supervisor_pid")
    if not info.get("ready") or not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except OSError:
        return False
    return all(c["state"] == "running" for c in info["components"].values())


@contextlib.contextmanager
def stack(executor: str, home: Path | None, start: bool, ready_timeout: float = 600) -> Iterator[Stack]:
    """The running `make up` stack in ``home`` (default var/up), or, with ``start``, a stack of
    the benchmark's own, stopped and dropped afterwards."""
    if not start:
        home = (home or REPO / "var" / "up").resolve()
        if not _alive(home):
            raise SystemExit(f"no running stack in {home}: start one with `make up` "
                             f"(EXECUTOR={executor}) or pass --start")
        found = Stack.read(home)
        if found.info.get("executor") != executor:
            raise SystemExit(f"the stack in {home} runs the {found.info.get('executor')} executor, "
                             f"not {executor}")
        yield found
        return
    home = Path(tempfile.mkdtemp(prefix=f"hub-load-{executor}-"))
    name = f"hub_load_{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HUB_"))}
    env.update(HUB_DEMO_HOME=str(home))
    for passed in ("HUB_POSTGRES_URL", "HUB_CELERY_BROKER_URL"):
        if passed in os.environ:
            env[passed] = os.environ[passed]
    out = open(home / "up.out", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "demo", "--up", "--executor", executor,
                             "--name", name, "--api-port", "0", "--web-port", "0", "--smtp-port", "0",
                             "--no-seed"],
                            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    print(f"starting a stack of its own ({executor}) in {home}; output in {home / 'up.out'}",
          flush=True)
    try:
        deadline = time.monotonic() + ready_timeout
        while not _alive(home):
            if proc.poll() is not None:
                raise SystemExit(f"the stack exited ({proc.returncode}); see {home / 'up.out'}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the stack was not ready in {ready_timeout:.0f} s")
            time.sleep(1)
        found = Stack.read(home)
        found.started = proc
        yield found
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(180)
            except subprocess.TimeoutExpired:
                proc.kill()
        out.close()
        from demo.postgres import main as postgres

        postgres(["drop", name])


# -- signals and DAG runs --------------------------------------------------------------------------
SIGNAL_COUNTERS = ("marked", "published", "unheard", "failed", "dropped")


class Signals:
    """The hub web app's signal publisher, read through ``GET /api/signals`` (API token).

    ``failed`` counts publishes that raised (Redis or Airflow's API not answering: retried with
    backoff), ``dropped`` signals no watcher heard for 30 s (left to the timetables). Counters start
    at zero when the web app (re)starts, so a difference never goes below zero."""

    def __init__(self, found: Stack) -> None:
        self.url = f"{found.info['hub_url']}/api/signals" if found.info.get("hub_url") else None
        self.headers = {"Authorization": f"Bearer {found.secrets.get('hub_api_token', '')}"}
        self.before = self.read()

    def read(self) -> dict[str, Any] | None:
        if self.url is None:
            return None
        try:
            response = httpx.get(self.url, headers=self.headers, timeout=30)
            response.raise_for_status()
            return response.json()
        except httpx.HTTPError as exc:
            print(f"could not read {self.url} ({type(exc).__name__})", flush=True)
            return None

    def since_start(self) -> dict[str, Any] | None:
        """What the publisher did since this object was made (None: not readable)."""
        after = self.read()
        if after is None or after.get("transport") is None:
            return after
        before = self.before or {}
        delta: dict[str, Any] = {"transport": after["transport"]}
        for name in SIGNAL_COUNTERS:
            now, then = int(after.get(name, 0)), int(before.get(name, 0))
            delta[name] = now - then if now >= then else now   # restarted: counted from zero
        delta["last_error"] = after.get("last_error")
        delta["waiting"] = after.get("waiting", [])
        return delta


def dag_runs_by_type(found: Stack, since: str) -> dict[str, dict[str, int]]:
    """DAG runs started since ``since`` per DAG and run type (asset_triggered: a signal or an
    upstream task's asset event; scheduled: the timetable; manual: the REST API)."""
    from demo.airflow_api import AirflowApi

    api = AirflowApi(found.info["airflow_url"], found.info["airflow_username"],
                     found.secrets["airflow_admin_password"])
    runs: dict[str, dict[str, int]] = {}
    try:
        offset = 0
        while True:
            body = api.request("GET", "/api/v2/dags/~/dagRuns",
                               params={"start_date_gte": since, "limit": 100, "offset": offset})
            page = body.get("dag_runs", [])
            for run in page:
                per_dag = runs.setdefault(run["dag_id"], {})
                per_dag[run["run_type"]] = per_dag.get(run["run_type"], 0) + 1
            offset += len(page)
            if not page or offset >= int(body.get("total_entries", 0)):
                return runs
    except httpx.HTTPError as exc:
        return {"error": {type(exc).__name__: 1}}
    finally:
        api.close()


def signal_report(signals: Signals, found: Stack, since: str) -> dict[str, Any]:
    """``failed_trigger_calls`` (publishes that failed), the publisher's counters, DAG runs."""
    figures = signals.since_start()
    return {"failed_trigger_calls": None if not figures or figures.get("transport") is None
            else figures["failed"],
            "signals": figures,
            "dag_runs_by_type": dag_runs_by_type(found, since)}


# -- health probes -------------------------------------------------------------------------------
@dataclass
class Probe:
    """GETs one URL every ``interval`` seconds from its own thread; records each latency."""

    name: str
    url: str
    interval: float = 0.25
    timeout: float = 10.0
    samples: list[tuple[float, float, bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "Probe":
        threading.Thread(target=self._run, name=f"probe-{self.name}", daemon=True).start()
        return self

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    ok = client.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = time.monotonic() - started
                self.samples.append((started, took, ok))
                self._stop.wait(max(0.0, self.interval - took))

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> dict[str, Any]:
        took = [s[1] for s in self.samples]
        if not took:
            return {"samples": 0}
        return {"samples": len(took), "failed": sum(not s[2] for s in self.samples),
                "over_1s": sum(t > 1.0 for t in took), "p50_ms": round(1000 * _pct(took, 50)),
                "p99_ms": round(1000 * _pct(took, 99)), "max_ms": round(1000 * max(took))}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def probes(found: Stack, interval: float) -> list[Probe]:
    urls = [("airflow", f"{found.info['airflow_url']}/api/v2/monitor/health")]
    if found.info.get("hub_url"):
        urls.append(("hub", f"{found.info['hub_url']}/healthz"))
    return [Probe(name, url, interval).start() for name, url in urls]


# -- the CRM as load source ----------------------------------------------------------------------
class Crm:
    """Creates cases in the CRM simulator; it pushes each one to the hub's webhook before it
    answers, so the time a PUT returns is when the hub has the webhook."""

    def __init__(self, found: Stack, threads: int = 16) -> None:
        self.base = found.info["crm_url"]
        self.headers = {"Authorization": f"Bearer {found.secrets['crm_token']}"}
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="crm")
        self.sent: dict[str, float] = {}
        """crm id -> wall-clock time (epoch seconds) its PUT returned."""
        self.failed: list[str] = []

    def _client(self) -> httpx.Client:
        if not hasattr(self.local, "client"):
            self.local.client = httpx.Client(base_url=self.base, headers=self.headers, timeout=60)
        return self.local.client

    def put(self, case: dict[str, Any]) -> None:
        try:
            self._client().put(f"/api/v1/cases/{case['id']}", json={
                "case_type": case["case_type"], "data": case["data"]}).raise_for_status()
            self.sent[case["id"]] = time.time()
        except httpx.HTTPError as exc:
            self.failed.append(f"{case['id']}: {type(exc).__name__}")

    def submit(self, case: dict[str, Any]):  # type: ignore[no-untyped-def]
        return self.pool.submit(self.put, case)

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def writebacks(self, crm_id: str) -> list[dict[str, Any]]:
        return self._client().get(f"/api/v1/cases/{crm_id}/updates").json()["updates"]


def cases(run: str, count: int) -> list[dict[str, Any]]:
    return [load_case(run, n) for n in range(count)]


# -- progress in the ledger ----------------------------------------------------------------------
class Ledger:
    """Counts and times for one run's cases (crm ids ``LOAD-<run>-...``)."""

    def __init__(self, found: Stack, run: str) -> None:
        import sqlalchemy as sa

        self.engine = sa.create_engine(found.info["ledger_database_url"], pool_size=2,
                                       pool_pre_ping=True)
        self.prefix = f"LOAD-{run}-%"
        self.sa = sa

    def counts(self) -> dict[str, int]:
        sql = self.sa.text("""
            SELECT
              (SELECT count(*) FROM cases WHERE crm_id LIKE :p) AS received,
              (SELECT count(*) FROM commands m JOIN cases c ON c.id = m.case_id
                WHERE c.crm_id LIKE :p AND m.state = 'confirmed') AS confirmed,
              (SELECT count(*) FROM commands m JOIN cases c ON c.id = m.case_id
                WHERE c.crm_id LIKE :p AND m.state IN ('rejected', 'failed')) AS refused,
              (SELECT count(*) FROM outbox WHERE crm_id LIKE :p AND kind = 'outcome'
                AND state = 'sent') AS written_back""")
        with self.engine.connect() as conn:
            return dict(conn.execute(sql, {"p": self.prefix}).mappings().one())

    def times(self) -> dict[str, dict[str, float]]:
        """Per case: when its command was confirmed and its outcome written back (epoch s)."""
        sql = self.sa.text("""
            SELECT c.crm_id, max(m.settled_at) AS settled,
                   (SELECT max(o.sent_at) FROM outbox o WHERE o.case_id = c.id
                     AND o.kind = 'outcome') AS written
            FROM cases c JOIN commands m ON m.case_id = c.id
            WHERE c.crm_id LIKE :p AND m.state = 'confirmed' GROUP BY c.id, c.crm_id""")
        with self.engine.connect() as conn:
            rows = conn.execute(sql, {"p": self.prefix}).mappings().all()
        return {r["crm_id"]: {"settled": _epoch(r["settled"]), "written": _epoch(r["written"])}
                for r in rows}

    def close(self) -> None:
        self.engine.dispose()


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def effects(found: Stack) -> dict[str, int]:
    """The back offices' own counts of changes (Revenues: applied requests; Licensing: rows)."""
    out: dict[str, int] = {}
    urls = found.info.get("simulator_urls", {})
    if urls.get("revenues_northgate"):
        out["revenues_northgate"] = int(httpx.get(f"{urls['revenues_northgate']}/admin/stats",
                                                  timeout=30).json()["effects"])
    licensing_db = found.home / "licensing.db"
    if licensing_db.exists():
        from simulators.licensing.backoffice import LicensingBackOffice

        backoffice = LicensingBackOffice(f"sqlite:///{licensing_db}")
        try:
            out["licensing_uniform"] = backoffice.applications_created()
        finally:
            backoffice.close()
    return out


def expected_effects(run_cases: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for case in run_cases:
        system = SYSTEM_OF[case["case_type"]]
        out[system] = out.get(system, 0) + 1
    return out


def latencies(sent: dict[str, float], times: dict[str, dict[str, float]], key: str) -> list[float]:
    return [times[c][key] - sent[c] for c in sent if c in times and times[c][key] is not None]


def describe(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_s": round(statistics.median(values), 1),
            "p95_s": round(_pct(values, 95), 1), "max_s": round(max(values), 1)}


def verify_writebacks(crm: Crm, crm_ids: list[str]) -> dict[str, int]:
    """Per case, how many write-backs the CRM applied: every case should have exactly one."""
    counts: dict[int, int] = {}
    with ThreadPoolExecutor(8) as pool:
        for n in pool.map(lambda c: len(crm.writebacks(c)), crm_ids):
            counts[n] = counts.get(n, 0) + 1
    return {f"cases_with_{n}_writebacks": v for n, v in sorted(counts.items())}


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def print_report(title: str, report: dict[str, Any]) -> None:
    print(f"\n== {title} ==")
    for key, value in report.items():
        print(f"{key:<40} {json.dumps(value) if isinstance(value, (dict, list)) else value}")
