"""The Airflow 3 plugin mounts the hub on Airflow's API server (fastapi_apps) and adds navigation
entries (external_views); the hub's own sign-in still guards every route under the mount."""
from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.web.support import add_user, client, csrf_of
from tests.web.support import PASSWORD


@pytest.fixture
def airflow_api(sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setenv("HUB_DATABASE_URL", sqlite_ledger)
    from airflow import plugins_manager
    from airflow.api_fastapi.app import init_plugins

    plugins_manager.get_fastapi_plugins.cache_clear()
    parent = FastAPI()
    init_plugins(parent)   # what Airflow's API server does at start-up
    return parent


def test_the_plugin_is_found_through_its_entry_point() -> None:
    from airflow import plugins_manager
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    apps, _ = plugins_manager.get_fastapi_plugins()
    assert [a["url_prefix"] for a in apps if a["name"] == "Council integration hub"] == ["/hub"]
    views, _ = plugins_manager._get_ui_plugins()
    hub_views = [ExternalViewResponse.model_validate(v) for v in views if v["href"].startswith("/hub/")]
    assert {v.href for v in hub_views} == {"/hub/desk", "/hub/operations", "/hub/mi"}


def test_mounted_pages_still_need_the_hubs_sign_in(airflow_api: FastAPI, sqlite_ledger: str) -> None:
    stranger = client(airflow_api)
    page = stranger.get("/hub/desk")
    assert page.status_code == 303 and page.headers["location"] == "/hub/login?next=%2Fhub%2Fdesk"
    assert stranger.get("/hub/api/work-items").status_code == 401
    assert stranger.get("/hub/metrics").status_code == 401
    assert stranger.get("/hub/operations").status_code == 303

    add_user(sqlite_ledger, "ops.analyst", role="operations")
    browser = client(airflow_api)
    form = browser.get("/hub/login")
    assert 'href="/hub/static/hub.css"' in form.text and 'action="/hub/login"' in form.text
    signed = browser.post("/hub/login", data={"username": "ops.analyst", "password": PASSWORD,
                                              "csrf_token": csrf_of(form.text)})
    assert signed.status_code == 303 and signed.headers["location"] == "/hub/desk"
    assert "Path=/hub" in signed.headers["set-cookie"]
    ops = browser.get("/hub/operations")
    assert ops.status_code == 200 and 'href="/hub/desk"' in ops.text
    assert browser.get("/hub/static/hub.css").status_code == 200
