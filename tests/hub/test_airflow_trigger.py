"""The webhook's Airflow trigger speaks Airflow 3's REST API: token, asset lookup, asset event."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Header, HTTPException

from hub.airflow_trigger import AirflowAssetTrigger, trigger_from_env
from simulators.serving import serve_in_thread


def fake_airflow(events: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/auth/token", status_code=201)
    def token(body: dict[str, str]) -> dict[str, str]:
        if body != {"username": "admin", "password": "pw-123"}:
            raise HTTPException(401)
        return {"access_token": "tok"}

    @app.get("/api/v2/assets")
    def assets(uri_pattern: str, authorization: str = Header()) -> dict[str, Any]:
        assert authorization == "Bearer tok"
        known = [{"id": 7, "uri": "hub://crm/cases"}, {"id": 8, "uri": "hub://crm/cases-archive"}]
        return {"assets": [a for a in known if uri_pattern in a["uri"]]}

    @app.post("/api/v2/assets/events")
    def event(body: dict[str, Any], authorization: str = Header()) -> dict[str, Any]:
        assert authorization == "Bearer tok"
        events.append(body)
        return {"id": 1}

    return app


def test_posts_one_event_for_the_exact_asset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[dict[str, Any]] = []
    with serve_in_thread(fake_airflow(events)) as url:
        password_file = tmp_path / "simple_auth_manager_passwords.json.generated"
        password_file.write_text(json.dumps({"admin": "pw-123"}))
        monkeypatch.setenv("HUB_AIRFLOW_API_URL", url)
        monkeypatch.setenv("HUB_AIRFLOW_PASSWORD_FILE", str(password_file))
        trigger = trigger_from_env()
        assert trigger is not None
        trigger()
    assert events == [{"asset_id": 7}]


def test_wrong_credentials_raise_so_the_caller_can_log(tmp_path: Path) -> None:
    with serve_in_thread(fake_airflow([])) as url:
        with pytest.raises(Exception, match="401"):
            AirflowAssetTrigger(url, "admin", "wrong")()


def test_no_trigger_without_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_AIRFLOW_API_URL", raising=False)
    assert trigger_from_env() is None
