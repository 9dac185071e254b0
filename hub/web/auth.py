"""Who is asking: FastAPI dependencies that every hub page and API route uses.

- ``current_user``: the signed-in person (``StaffUser``); anyone else gets a redirect to the sign-in
  page (pages) or 401 (API paths).
- ``require_role("operations", "admin")``: the person must have one of these roles, else 403.
- ``require_desk``: the person has a work desk (a team member, or operations).
- ``api_caller``: for the machine API: a valid ``HUB_API_TOKEN`` bearer (the CRM, scripts) or a
  signed-in person (then scoped like the pages).

Use them on a router (``APIRouter(dependencies=[Depends(current_user)])``) or a route; see docs/web.md.
"""
from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request

from hub.accounts import StaffUser, as_user
from hub.ledger.db import session_scope
from hub.web import sessions
from hub.web.settings import WebSettings

#: Paths a person whose password must change may still use.
PASSWORD_PATHS = ("/account/password", "/logout", "/static/")


class NotSignedIn(Exception):
    """No live session came with the request."""


class PasswordChangeRequired(Exception):
    """The person signed in with a one-time password and must choose their own first."""


def ledger_url(request: Request) -> str | None:
    """The ledger URL the app was built with (None: HUB_DATABASE_URL)."""
    return getattr(request.app.state, "ledger_url", None)


def web_settings(request: Request) -> WebSettings:
    settings = getattr(request.app.state, "web_settings", None)
    return settings if settings is not None else WebSettings.from_env()


def signed_in(request: Request) -> StaffUser | None:
    """The person behind the session cookie, loaded once per request."""
    if hasattr(request.state, "user"):
        return request.state.user
    user = None
    token = request.cookies.get(sessions.COOKIE)
    if token:
        with session_scope(ledger_url(request)) as session:
            found = sessions.load(session, token, web_settings(request))
            if found is not None:
                user = as_user(found.account)
                request.state.csrf_token = found.csrf_token
    request.state.user = user
    return user


def local_path(request: Request) -> str:
    """The request's path inside the hub app (without the mount prefix)."""
    root = request.scope.get("root_path", "")
    path = request.url.path
    return path[len(root):] if root and path.startswith(root) else path


def current_user_any_password(request: Request) -> StaffUser:
    user = signed_in(request)
    if user is None:
        raise NotSignedIn()
    return user


def current_user(request: Request) -> StaffUser:
    """Dependency: the signed-in person; a one-time password must be changed first."""
    user = current_user_any_password(request)
    if user.must_change_password and not local_path(request).startswith(PASSWORD_PATHS):
        raise PasswordChangeRequired()
    return user


def require_role(*roles: str) -> Callable[..., StaffUser]:
    """Dependency factory: the signed-in person must hold one of ``roles`` (else 403)."""

    def dependency(user: StaffUser = Depends(current_user)) -> StaffUser:
        if user.role not in roles:
            raise HTTPException(403, "Your account cannot open this page.")
        return user

    return dependency


def require_desk(user: StaffUser = Depends(current_user)) -> StaffUser:
    """Dependency: the person has work items to see (team member or operations)."""
    if not user.has_desk:
        raise HTTPException(403, "Your account has no team, so it has no work desk.")
    return user


@dataclass(frozen=True)
class MachineCaller:
    """A program holding the hub API token (the CRM, a council script): sees every team."""

    name: str = "api"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def api_caller(request: Request) -> MachineCaller | StaffUser:
    """Dependency for API routes: the ``HUB_API_TOKEN`` bearer, or a signed-in person."""
    given = _bearer(request)
    if given is not None:
        expected = os.environ.get("HUB_API_TOKEN", "")
        if not expected:
            raise HTTPException(503, "the API is switched off: HUB_API_TOKEN is not set")
        if hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
            return MachineCaller()
        raise HTTPException(401, "a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    return current_user(request)


def require_api_token(request: Request) -> MachineCaller:
    """Dependency: only the ``HUB_API_TOKEN`` bearer (the CRM's read-through lookups)."""
    caller = _bearer(request)
    if caller is None:
        raise HTTPException(401, "a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    result = api_caller(request)
    assert isinstance(result, MachineCaller)
    return result


def operations_or_token(request: Request) -> MachineCaller | StaffUser:
    """Dependency: the API token, or a signed-in operations person (figures for all systems)."""
    caller = api_caller(request)
    if isinstance(caller, StaffUser) and not caller.is_operations:
        raise HTTPException(403, "Your account cannot read these figures.")
    return caller
