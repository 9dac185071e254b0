"""Server-rendered pages: the Jinja2 templates, the base context every page gets, and paths.

Templates live in ``hub/web/templates``; every page extends ``base.html`` (header, navigation for
the person's role, sign-out form, flash message). Other modules render with ``render(request,
"name.html", {...})`` and build links with ``path_for(request, "route_name", **params)`` so that
links stay right when the app is mounted under a prefix (``/hub`` in Airflow).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from hub.accounts import StaffUser

TEMPLATES_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")
SERVICE_NAME = "Integration hub"
COUNCIL_NAME = "Exampleton Borough Council"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

#: Messages shown after an action (the redirect carries the code, never the text).
FLASH: dict[str, str] = {
    "password_changed": "Your password has been changed.",
    "claimed": "You have claimed this item.",
    "unassigned": "The item is no longer assigned.",
    "commented": "Your comment has been added.",
    "resolved": "The item is resolved. The CRM will be told.",
    "cancelled": "The request is cancelled. The CRM will be told why.",
    "resent": "The corrected request has been queued to send again.",
    "replayed": "The failed commands are queued to send again.",
    "account_added": "The account has been added.",
    "account_disabled": "The account is disabled and its sessions have ended.",
    "account_enabled": "The account is enabled.",
    "password_reset": "A new one-time password has been set.",
}


def path_for(request: Request, name: str, query: Mapping[str, Any] | None = None,
             **path_params: Any) -> str:
    """The path of a named route (with the mount prefix) and an optional query string."""
    path = request.scope.get("root_path", "") + str(request.app.url_path_for(name, **path_params))
    pairs = [(k, v) for k, v in (query or {}).items() if v not in (None, "")]
    return f"{path}?{urlencode(pairs, doseq=True)}" if pairs else path


def redirect(request: Request, name: str, query: Mapping[str, Any] | None = None,
             **path_params: Any) -> RedirectResponse:
    """303 See Other to a named page (after a POST)."""
    return RedirectResponse(path_for(request, name, query, **path_params), status_code=303)


def _nav(request: Request, user: StaffUser | None) -> list[dict[str, Any]]:
    if user is None:
        return []
    items = []
    if user.has_desk:
        items.append(("Work desk", "desk"))
    if user.is_operations:
        items.append(("Operations", "operations"))
        items.append(("Reconciliation", "reconciliation"))
    if user.is_operations or user.is_admin:
        items.append(("Management information", "mi"))
    if user.is_admin:
        items.append(("Accounts", "admin_accounts"))
    here = request.url.path
    out = []
    for label, name in items:
        href = path_for(request, name)
        out.append({"label": label, "href": href, "current": here == href or here.startswith(href + "/")})
    return out


def when(value: datetime | None, fmt: str = "%d %b %Y %H:%M") -> str:
    """A UTC time for people (the hub's times are UTC)."""
    return value.astimezone(timezone.utc).strftime(fmt) if value else "–"


def age(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the largest sensible unit (``3 d 4 h``, ``25 min``)."""
    if value is None:
        return "–"
    seconds = int(((now or datetime.now(timezone.utc)) - value).total_seconds())
    if seconds < 0:
        return "in " + age(now or datetime.now(timezone.utc), value)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested case data as ``(dotted.name, text)`` rows for a summary list."""
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for key in value:
            rows += flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return [(prefix, ", ".join(str(v) for v in value))]
        rows = []
        for n, item in enumerate(value, 1):
            rows += flatten(item, f"{prefix}[{n}]")
        return rows
    return [(prefix, "–" if value in (None, "") else str(value))]


def label(value: str | None) -> str:
    """``in_progress`` -> ``In progress``."""
    return (value or "").replace("_", " ").capitalize()


def service(case_type: str | None) -> str:
    """A CRM case type for people: ``ctax_single_person_discount`` -> Council Tax single person discount."""
    from hub.mi import service_label

    return service_label(case_type or "")


def hours(value: float | None) -> str:
    """Hours for people: ``45 s``, ``12 min``, ``3.5 h``, ``2.1 days``."""
    if value is None:
        return "–"
    if value < 1 / 60:
        return f"{round(value * 3600)} s"
    if value < 1:
        return f"{round(value * 60)} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} days"


templates.env.filters["service"] = service
templates.env.globals["hours"] = hours
templates.env.filters["flatten"] = flatten
templates.env.filters["label"] = label
templates.env.filters["when"] = when
templates.env.filters["age"] = age
templates.env.globals["SERVICE_NAME"] = SERVICE_NAME
templates.env.globals["COUNCIL_NAME"] = COUNCIL_NAME


def render(request: Request, template: str, context: Mapping[str, Any] | None = None,
           status_code: int = 200) -> HTMLResponse:
    """Render a page with the base context: user, navigation, CSRF token, flash message."""
    user = getattr(request.state, "user", None)
    base = {"user": user, "nav": _nav(request, user),
            "csrf_token": getattr(request.state, "csrf_token", ""),
            "flash": FLASH.get(request.query_params.get("done", ""), ""),
            "static": lambda name: request.scope.get("root_path", "") + "/static/" + name,
            "path_for": lambda name, query=None, **params: path_for(request, name, query, **params),
            "now": datetime.now(timezone.utc)}
    return templates.TemplateResponse(request, template, {**base, **(context or {})},
                                      status_code=status_code)
