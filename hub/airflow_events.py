"""Asset events through Airflow's REST API: the signal transport when Redis is not configured.

One ``httpx.Client`` (keep-alive), one cached token (``POST /auth/token``), renewed once on a 401;
asset ids looked up once per URI (``GET /api/v2/assets``) and remembered. Calls come only from the
one signal thread of ``hub.signals.SignalPublisher``, so at most one call is in flight and signals
are already coalesced per asset. Configured by environment variables: HUB_AIRFLOW_API_URL (e.g.
http://127.0.0.1:8080), HUB_AIRFLOW_USERNAME, and HUB_AIRFLOW_PASSWORD or HUB_AIRFLOW_PASSWORD_FILE
(read when a token is needed: plain text, or the JSON {user: password} file that Airflow's simple
auth manager generates).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


class AirflowError(RuntimeError):
    """Airflow's API refused or failed a call (status code and path only)."""


class AirflowRestTransport:
    """``POST /api/v2/assets/events`` for an asset URI; True when Airflow stored the event."""

    name = "airflow-rest"

    def __init__(self, base_url: str, username: str, password: str | Callable[[], str], *,
                 timeout: float = 5.0, transport: httpx.BaseTransport | None = None) -> None:
        self.username = username
        self.password = password if callable(password) else (lambda: password)
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout,
                                   transport=transport, trust_env=False)
        self._token: str | None = None
        self._asset_ids: dict[str, int] = {}
        self.token_requests = 0

    def send(self, uri: str, payload: dict[str, Any]) -> bool:
        asset_id = self._asset_id(uri)
        response = self._call("POST", "/api/v2/assets/events",
                              json={"asset_id": asset_id, "extra": payload})
        if response.status_code == 404:   # the asset was removed and created again: look it up anew
            self._asset_ids.pop(uri, None)
        self._check(response)
        return True

    def _asset_id(self, uri: str) -> int:
        if uri not in self._asset_ids:
            response = self._call("GET", "/api/v2/assets", params={"uri_pattern": uri})
            self._check(response)
            found = [a for a in response.json().get("assets", []) if a.get("uri") == uri]
            if not found:
                raise LookupError(f"Airflow does not know asset {uri}")
            self._asset_ids[uri] = int(found[0]["id"])
        return self._asset_ids[uri]

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, headers=self._auth(), **kwargs)
        if response.status_code == 401:   # expired or revoked: one new token, one retry
            self._token = None
            response = self.client.request(method, path, headers=self._auth(), **kwargs)
        return response

    def _auth(self) -> dict[str, str]:
        if self._token is None:
            self.token_requests += 1
            response = self.client.post("/auth/token", json={"username": self.username,
                                                             "password": self.password()})
            self._check(response)
            self._token = str(response.json()["access_token"])
        return {"Authorization": f"Bearer {self._token}"}

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.status_code >= 400:
            raise AirflowError(f"Airflow answered {response.status_code} to "
                               f"{response.request.method} {response.request.url.path}")

    def close(self) -> None:
        self.client.close()


def _password_from_file(path: Path, username: str) -> str:
    text = path.read_text(encoding="utf-8").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text
    return str(data[username]) if isinstance(data, dict) else text


def rest_transport_from_env() -> AirflowRestTransport | None:
    url = os.environ.get("HUB_AIRFLOW_API_URL")
    if not url:
        return None
    username = os.environ.get("HUB_AIRFLOW_USERNAME", "admin")
    password_file = os.environ.get("HUB_AIRFLOW_PASSWORD_FILE")
    if password_file:
        return AirflowRestTransport(url, username,
                                    lambda: _password_from_file(Path(password_file), username))
    return AirflowRestTransport(url, username, os.environ.get("HUB_AIRFLOW_PASSWORD", ""))
