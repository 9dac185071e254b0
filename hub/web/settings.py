"""Settings of the hub's pages, from the environment (read when the app is built, not at import)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class WebSettings:
    cookie_secure: bool = True
    """``Secure`` on the session cookie (HUB_WEB_COOKIE_SECURE). Browsers keep Secure cookies on
    http://localhost and 127.0.0.1 too; switch off only behind a proxy that is itself on https."""
    session_idle: timedelta = timedelta(minutes=30)
    """A session ends after this long without a request (HUB_WEB_SESSION_IDLE_MINUTES)."""
    session_max: timedelta = timedelta(hours=8)
    """And this long after sign-in whatever happens (HUB_WEB_SESSION_HOURS)."""
    airflow_ui_url: str = ""
    """Base of links into Airflow's UI (HUB_AIRFLOW_UI_URL, else HUB_AIRFLOW_API_URL; empty: same
    origin, which is right when the hub is mounted in Airflow's API server by the plugin)."""
    max_body_bytes: int = 256_000
    """Largest form or API body the pages accept (the CRM webhook has its own limit)."""

    @classmethod
    def from_env(cls) -> "WebSettings":
        return cls(
            cookie_secure=_flag("HUB_WEB_COOKIE_SECURE", True),
            session_idle=timedelta(minutes=int(os.environ.get("HUB_WEB_SESSION_IDLE_MINUTES", "30"))),
            session_max=timedelta(hours=float(os.environ.get("HUB_WEB_SESSION_HOURS", "8"))),
            airflow_ui_url=(os.environ.get("HUB_AIRFLOW_UI_URL")
                            or os.environ.get("HUB_AIRFLOW_API_URL") or "").rstrip("/"))
