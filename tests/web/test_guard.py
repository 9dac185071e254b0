"""Every page and API route of the hub app refuses a stranger (walks the app's routes, so a route
added later without a guard fails here)."""
from __future__ import annotations

import re

from fastapi.routing import APIRoute
from starlette.routing import Mount

from tests.web.support import client

#: Routes open by design: sign-in itself, health, static CSS, and the webhook (HMAC-signed).
OPEN = {("GET", "/login"), ("POST", "/login"), ("GET", "/healthz")}
SIGNED = {("POST", "/webhooks/crm")}
SAMPLE = {"item_id": "1", "username": "someone", "system": "revenues_northgate",
          "kind": "ctax.account", "dataset": "daily", "command_id": "1"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLE.get(m.group(1), "x"), path)


def test_no_route_answers_a_stranger(app) -> None:
    stranger = client(app)
    checked = 0
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path == "/static", f"unexpected mount {route.path}"
            continue
        assert isinstance(route, APIRoute), route
        for method in sorted(route.methods - {"HEAD"}):
            if (method, route.path) in OPEN:
                continue
            answer = stranger.request(method, concrete(route.path))
            checked += 1
            if (method, route.path) in SIGNED:
                assert answer.status_code == 401, route.path
            elif route.path.startswith(("/api/", "/metrics")):
                assert answer.status_code == 401, (method, route.path, answer.status_code)
            else:
                assert answer.status_code == 303, (method, route.path, answer.status_code)
                assert answer.headers["location"].startswith("/login"), route.path
    assert checked > 20


def test_static_files_are_served_without_personal_data(app) -> None:
    css = client(app).get("/static/hub.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
