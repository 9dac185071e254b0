"""The REST fallback speaks Airflow 3's API: one cached token (renewed on 401), asset ids looked up
once, asset events posted; behind the publisher, a burst of cases makes a few calls, one at a time."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Header, HTTPException

from hub.airflow_events import AirflowError, AirflowRestTransport, rest_transport_from_env
from hub.signals import SignalPublisher
from simulators.serving import serve_in_thread

CASES = "hub://crm/cases"
REVENUES = "hub://ledger/commands/revenues_northgate"


class FakeAirflow:
    """Airflow's token, asset list and asset event endpoints, counting what it is asked."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.tokens_issued = 0
        self.asset_lookups = 0
        self.valid_tokens: set[str] = set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    def app(self) -> FastAPI:
        app = FastAPI()

        def authorised(authorization: str) -> None:
            if authorization.removeprefix("Bearer ") not in self.valid_tokens:
                raise HTTPException(401)

        @app.post("/auth/token", status_code=201)
        def token(body: dict[str, str]) -> dict[str, str]:
            if body != {"username": "admin", "password": "pw-123"}:
                raise HTTPException(401)
            self.tokens_issued += 1
            value = f"tok-{self.tokens_issued}"
            self.valid_tokens.add(value)
            return {"access_token": value}

        @app.get("/api/v2/assets")
        def assets(uri_pattern: str, authorization: str = Header()) -> dict[str, Any]:
            authorised(authorization)
            self.asset_lookups += 1
            known = [{"id": 7, "uri": CASES}, {"id": 8, "uri": CASES + "-archive"},
                     {"id": 9, "uri": REVENUES}]
            return {"assets": [a for a in known if uri_pattern in a["uri"]]}

        @app.post("/api/v2/assets/events")
        def event(body: dict[str, Any], authorization: str = Header()) -> dict[str, Any]:
            authorised(authorization)
            with self.lock:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            time.sleep(0.02)
            self.events.append(body)
            with self.lock:
                self.in_flight -= 1
            return {"id": len(self.events)}

        return app


def test_events_for_the_exact_asset_with_one_token(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    airflow = FakeAirflow()
    with serve_in_thread(airflow.app()) as url:
        password_file = tmp_path / "simple_auth_manager_passwords.json.generated"
        password_file.write_text(json.dumps({"admin": "pw-123"}))
        monkeypatch.setenv("HUB_AIRFLOW_API_URL", url)
        monkeypatch.setenv("HUB_AIRFLOW_PASSWORD_FILE", str(password_file))
        transport = rest_transport_from_env()
        assert transport is not None
        for _ in range(3):
            assert transport.send(CASES, {"marks": 1}) is True
        transport.send(REVENUES, {"marks": 2})
        transport.close()
    assert [e["asset_id"] for e in airflow.events] == [7, 7, 7, 9]
    assert airflow.events[-1]["extra"] == {"marks": 2}
    assert airflow.tokens_issued == 1 and airflow.asset_lookups == 2


def test_an_expired_token_is_renewed_once_and_the_call_repeated() -> None:
    airflow = FakeAirflow()
    with serve_in_thread(airflow.app()) as url:
        transport = AirflowRestTransport(url, "admin", "pw-123")
        transport.send(CASES, {})
        airflow.valid_tokens.clear()          # Airflow restarted, or the token expired
        transport.send(CASES, {})
        transport.close()
    assert len(airflow.events) == 2 and airflow.tokens_issued == 2


def test_wrong_credentials_raise_naming_the_call_not_the_password() -> None:
    with serve_in_thread(FakeAirflow().app()) as url:
        transport = AirflowRestTransport(url, "admin", "wrong-secret")
        with pytest.raises(AirflowError, match="401") as raised:
            transport.send(CASES, {})
        transport.close()
    assert "wrong-secret" not in str(raised.value)


def test_an_asset_airflow_does_not_know_is_a_clear_error() -> None:
    with serve_in_thread(FakeAirflow().app()) as url:
        transport = AirflowRestTransport(url, "admin", "pw-123")
        with pytest.raises(LookupError, match="hub://ledger/outbox"):
            transport.send("hub://ledger/outbox", {})
        transport.close()


def test_a_burst_through_the_publisher_makes_few_calls_one_at_a_time() -> None:
    airflow = FakeAirflow()
    with serve_in_thread(airflow.app()) as url:
        publisher = SignalPublisher(AirflowRestTransport(url, "admin", "pw-123"), interval=0.2)
        workers = [threading.Thread(target=lambda: [publisher.mark(REVENUES) or time.sleep(0.001)
                                                    for _ in range(100)]) for _ in range(10)]
        started = time.monotonic()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert publisher.flush(timeout=10)
        elapsed = time.monotonic() - started
        publisher.close()
    assert 1 <= len(airflow.events) <= 2 + elapsed / 0.2
    assert sum(e["extra"]["marks"] for e in airflow.events) == 1000
    assert airflow.tokens_issued == 1 and airflow.most_in_flight == 1


def test_no_transport_without_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_AIRFLOW_API_URL", raising=False)
    assert rest_transport_from_env() is None
