"""Tell Airflow that new CRM cases were recorded: an Asset event through Airflow's REST API.

The webhook receiver records the case first; this only makes intake run now instead of at its next
scheduled time, so a failure here loses nothing. Configured by environment variables:
HUB_AIRFLOW_API_URL (e.g. http://127.0.0.1:8080), HUB_AIRFLOW_USERNAME, and HUB_AIRFLOW_PASSWORD or
HUB_AIRFLOW_PASSWORD_FILE (read at each call: plain text, or the JSON {user: password} file that
Airflow's simple auth manager generates).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx

from hub.orchestration_assets import CRM_CASES_URI


class AirflowAssetTrigger:
    """POST /api/v2/assets/events for one asset URI, authenticating with a short-lived token."""

    def __init__(self, base_url: str, username: str, password: str | Callable[[], str], *,
                 asset_uri: str = CRM_CASES_URI, timeout: float = 20.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password if callable(password) else (lambda: password)
        self.asset_uri = asset_uri
        self.timeout = timeout

    def __call__(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as client:
            token = client.post("/auth/token", json={"username": self.username,
                                                     "password": self.password()})
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            found = client.get("/api/v2/assets", params={"uri_pattern": self.asset_uri},
                               headers=headers)
            found.raise_for_status()
            assets = [a for a in found.json().get("assets", []) if a.get("uri") == self.asset_uri]
            if not assets:
                raise LookupError(f"Airflow does not know asset {self.asset_uri}")
            client.post("/api/v2/assets/events", json={"asset_id": assets[0]["id"]},
                        headers=headers).raise_for_status()


def _password_from_file(path: Path, username: str) -> str:
    text = path.read_text(encoding="utf-8").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text
    return str(data[username]) if isinstance(data, dict) else text


def trigger_from_env() -> AirflowAssetTrigger | None:
    url = os.environ.get("HUB_AIRFLOW_API_URL")
    if not url:
        return None
    username = os.environ.get("HUB_AIRFLOW_USERNAME", "admin")
    password_file = os.environ.get("HUB_AIRFLOW_PASSWORD_FILE")
    if password_file:
        return AirflowAssetTrigger(url, username,
                                   lambda: _password_from_file(Path(password_file), username))
    return AirflowAssetTrigger(url, username, os.environ.get("HUB_AIRFLOW_PASSWORD", ""))
