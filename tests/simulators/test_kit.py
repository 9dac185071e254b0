"""The simulator kit: a clock that never repeats, armed faults one per call, the admin API."""
from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from simulators.kit import (Clock, FaultInjector, FaultSwitch, admin_router, secret_argument,
                            serve_in_thread)


def test_clock_readings_are_strictly_increasing_with_microseconds() -> None:
    clock = Clock()
    readings = [clock.now() for _ in range(2000)]
    assert all(a < b for a, b in zip(readings, readings[1:]))
    assert readings[0].utcoffset() == timedelta(0)
    assert len(clock.stamp().split(".")[1]) == len("123456+00:00")
    clock.set_offset(-3600)
    assert clock.now() > readings[-1], "moving the clock back never repeats a time"
    assert clock.offset_seconds == -3600


def test_fault_switch_arms_in_order_and_refuses_unknown_modes() -> None:
    faults = FaultSwitch(default_delay_seconds=1.5)
    faults.arm(1)
    faults.arm(2, "timeout", retry_after=None)
    assert faults.pending == 3
    assert faults.take() == ("http_503", 1.5, None)
    assert faults.take()[0] == faults.take()[0] == "timeout"
    assert faults.take() is None
    with pytest.raises(ValueError):
        faults.arm(1, "server_fault")
    soap_like = FaultSwitch(modes=("server_fault", "http_503", "timeout"))
    soap_like.arm(1)
    assert soap_like.take()[0] == "server_fault", "the first mode is the default"


@pytest.fixture
def served() -> Iterator[tuple[httpx.Client, dict, FaultSwitch]]:
    state = {"applied": 0, "changed": []}
    faults = FaultSwitch()
    app = FastAPI()
    app.add_middleware(FaultInjector, faults=faults, prefixes=("/api",))

    def change(reference: str, status: str, note: str | None) -> dict:
        if reference == "missing":
            raise LookupError(reference)
        if status == "BAD":
            raise ValueError("status must be known")
        state["changed"].append((reference, status, note))
        return {"reference": reference, "status": status}

    app.include_router(admin_router(stats=lambda: {"effects": state["applied"]}, faults=faults,
                                    clock=Clock(), staff_change=change))

    @app.post("/api/apply")
    def apply() -> dict:
        state["applied"] += 1
        return {"applied": state["applied"]}

    @app.get("/other")
    def other() -> dict:
        return {"ok": True}

    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=5) as client:
        yield client, state, faults


def test_http_faults_apply_nothing_and_say_when_to_come_back(served) -> None:
    client, state, _ = served
    client.post("/admin/faults", json={"count": 2, "mode": "http_429", "retry_after": 7})
    assert client.get("/other").status_code == 200, "outside the prefixes: no fault used"
    first = client.post("/api/apply")
    assert first.status_code == 429 and first.headers["Retry-After"] == "7"
    assert client.get("/admin/stats").status_code == 200, "admin calls never fail"
    assert client.post("/api/apply").status_code == 429
    assert client.post("/api/apply").json() == {"applied": 1}
    assert state["applied"] == 1
    assert client.post("/admin/faults", json={"count": 1, "mode": "nope"}).status_code == 422
    client.post("/admin/faults", json={"count": 5})
    assert client.delete("/admin/faults").json() == {"pending": 0}


def test_timeout_fault_applies_then_holds_the_answer_until_the_client_leaves(served) -> None:
    client, state, _ = served
    client.post("/admin/faults", json={"count": 1, "mode": "timeout", "delay_seconds": 30})
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/api/apply", timeout=0.5)
    assert state["applied"] == 1, "applied: the outcome is unknown to the client"
    assert client.post("/api/apply").json() == {"applied": 2}, "the server is not stuck"
    assert time.monotonic() - started < 10


def test_admin_clock_stats_and_staff_change(served) -> None:
    client, state, _ = served
    assert client.get("/admin/stats").json() == {"effects": 0}
    moved = client.post("/admin/clock", json={"offset_seconds": 86400}).json()
    assert moved["offset_seconds"] == 86400
    assert client.post("/admin/records/R1/status", json={"status": "DONE", "note": "n"}).json() == {
        "reference": "R1", "status": "DONE"}
    assert client.post("/admin/records/missing/status", json={"status": "DONE"}).status_code == 404
    assert client.post("/admin/records/R1/status", json={"status": "BAD"}).status_code == 422
    assert client.post("/admin/records/R1/status", json={"status": ""}).status_code == 422
    assert state["changed"] == [("R1", "DONE", "n")]


def test_secret_argument_comes_from_the_flag_or_the_environment(monkeypatch) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client-secret")
    monkeypatch.setenv("SIM_SECRET", "from-env")
    assert secret_argument(parser, "--client-secret", "SIM_SECRET", parser.parse_args([])) == "from-env"
    assert secret_argument(parser, "--client-secret", "SIM_SECRET",
                           parser.parse_args(["--client-secret", "flag"])) == "flag"
    monkeypatch.delenv("SIM_SECRET")
    with pytest.raises(SystemExit):
        secret_argument(parser, "--client-secret", "SIM_SECRET", parser.parse_args([]))


def test_sqlite_state_rolls_back_a_failed_transaction_and_survives_reopening(tmp_path) -> None:
    from simulators.kit import SqliteState, locked

    class Counter(SqliteState):
        @locked
        def value(self) -> int:
            return int(self.db.execute("SELECT COALESCE(SUM(n), 0) FROM t").fetchone()[0])

    schema = "CREATE TABLE IF NOT EXISTS t (n INTEGER);"
    state = Counter(tmp_path / "s.db", schema)
    with state.transaction() as db:
        db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), state.transaction() as db:
        db.execute("INSERT INTO t VALUES (10)")
        raise RuntimeError("half done")
    assert state.value() == 1
    state.close()
    assert Counter(tmp_path / "s.db", schema).value() == 1
