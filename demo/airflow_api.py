"""A small client of Airflow's REST API for the demo drivers: trigger DAG runs, wait, read results.

The real stack's demo runs its DAGs the way an operator would: ``POST /api/v2/dags/{id}/dagRuns``,
and the scheduler does the rest. One token (``POST /auth/token``) is kept and renewed on 401.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import httpx

FINISHED = {"success", "failed"}


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 60.0) -> None:
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self.username = username
        self.password = password
        self._token: str | None = None

    def close(self) -> None:
        self.client.close()

    def _auth(self) -> dict[str, str]:
        if self._token is None:
            response = self.client.post("/auth/token", json={"username": self.username,
                                                             "password": self.password})
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=self._auth(), **kwargs)
        if response.status_code == 401:   # token expired: renew once
            self._token = None
            response = self.client.request(method, path, headers=self._auth(), **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        """``/api/v2/monitor/health`` (no login needed)."""
        response = self.client.get("/api/v2/monitor/health")
        response.raise_for_status()
        return response.json()

    def dag_ids(self) -> set[str]:
        body = self.request("GET", "/api/v2/dags", params={"limit": 1000})
        return {d["dag_id"] for d in body.get("dags", [])}

    def trigger(self, dag_id: str, *, attempts: int = 5) -> str:
        """Start a DAG run under a run id of our own, so a retry after a lost answer is safe
        (the second POST answers 409: the run exists)."""
        run_id = f"manual__demo_{uuid.uuid4().hex[:12]}"
        for attempt in range(1, attempts + 1):
            try:
                self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                             json={"dag_run_id": run_id, "logical_date": None})
                return run_id
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code == 409 and attempt > 1:
                    return run_id
                if exc.response.status_code < 500 or attempt == attempts:
                    raise
            except httpx.TransportError:
                if attempt == attempts:
                    raise
            time.sleep(2 * attempt)
        raise AssertionError("unreachable")

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        body = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                            params={"limit": 1000})
        return list(body.get("task_instances", []))

    def task_instances_since(self, since: str) -> list[dict[str, Any]]:
        """Every task instance of every DAG that started at or after ``since`` (ISO time)."""
        found: list[dict[str, Any]] = []
        while True:
            body = self.request("GET", "/api/v2/dags/~/dagRuns/~/taskInstances",
                                params={"start_date_gte": since, "limit": 100,
                                        "offset": len(found), "order_by": "start_date"})
            page = list(body.get("task_instances", []))
            found += page
            if not page or len(found) >= int(body.get("total_entries", 0)):
                return found

    def wait_for_runs(self, runs: Iterable[tuple[str, str]], *, timeout: float = 600.0,
                      tick: Callable[[], None] = lambda: None, poll: float = 1.0) -> dict[str, str]:
        """Wait until every (dag_id, run_id) has finished; ``tick`` runs at every poll (the
        supervisor's check). Returns ``{run_id: state}``; TimeoutError names what is unfinished."""
        pending = dict((run_id, dag_id) for dag_id, run_id in runs)
        states: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while pending:
            tick()
            for run_id, dag_id in list(pending.items()):
                try:
                    state = self.run_state(dag_id, run_id)
                except (httpx.TransportError, httpx.HTTPStatusError):
                    state = "unknown"   # a busy API server: ask again at the next poll
                if state in FINISHED:
                    states[run_id] = state
                    del pending[run_id]
            if pending and time.monotonic() > deadline:
                raise TimeoutError("DAG runs unfinished after "
                                   f"{timeout:.0f} s: {', '.join(sorted(pending.values()))}")
            if pending:
                time.sleep(poll)
        return states

    def wait_until(self, ready: Callable[[], bool], what: str, *, timeout: float,
                   tick: Callable[[], None] = lambda: None, poll: float = 1.0) -> None:
        """Poll ``ready`` (errors count as not ready) until true; TimeoutError names ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            tick()
            try:
                if ready():
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} after {timeout:.0f} s")
            time.sleep(poll)
