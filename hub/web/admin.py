"""Accounts page for administrators: add, disable, enable, reset a password (``hub.accounts``)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from hub import accounts, audit
from hub.accounts import ADMIN, StaffUser
from hub.ledger.db import session_scope
from hub.web import csrf
from hub.web.auth import ledger_url, require_role
from hub.web.pages import redirect, render

router = APIRouter(prefix="/admin", dependencies=[Depends(require_role(ADMIN))])
admin_only = require_role(ADMIN)
post_guard = [Depends(admin_only), Depends(csrf.require_token)]


def _page(request: Request, *, error: str = "", issued: tuple[str, str] | None = None,
          status_code: int = 200) -> Response:
    with session_scope(ledger_url(request)) as session:
        rows = accounts.list_accounts(session)
        trail = audit.recent(session, target_prefix="account:", limit=20)
        return render(request, "accounts.html", {
            "accounts": rows, "roles": accounts.ROLES, "teams": accounts.known_teams(),
            "error": error, "issued": issued, "trail": trail}, status_code=status_code)


@router.get("/accounts", name="admin_accounts")
def accounts_page(request: Request, user: StaffUser = Depends(admin_only)) -> Response:
    return _page(request)


@router.post("/accounts", name="admin_add_account", dependencies=post_guard)
async def add_account(request: Request, user: StaffUser = Depends(admin_only)) -> Response:
    form = await request.form(max_fields=40)
    username = str(form.get("username") or "")[:100]
    role = str(form.get("role") or "")[:20]
    name = str(form.get("display_name") or "")[:200]
    teams = [str(t)[:40] for t in form.getlist("teams")][:10]
    try:
        with session_scope(ledger_url(request)) as session:
            account, password = accounts.add_account(session, username=username, role=role,
                                                     teams=teams, display_name=name,
                                                     actor=user.username)
            issued = (account.username, password)
    except accounts.AccountError as exc:
        return _page(request, error=str(exc).capitalize() + ".", status_code=422)
    return _page(request, issued=issued)


@router.post("/accounts/{username}/disable", name="admin_disable", dependencies=post_guard)
def disable(request: Request, username: str, user: StaffUser = Depends(admin_only)) -> Response:
    if username == user.username:
        return _page(request, error="You cannot disable your own account.", status_code=409)
    try:
        with session_scope(ledger_url(request)) as session:
            accounts.disable(session, username, actor=user.username)
    except accounts.AccountError as exc:
        return _page(request, error=str(exc).capitalize() + ".", status_code=404)
    return redirect(request, "admin_accounts", {"done": "account_disabled"})


@router.post("/accounts/{username}/enable", name="admin_enable", dependencies=post_guard)
def enable(request: Request, username: str, user: StaffUser = Depends(admin_only)) -> Response:
    try:
        with session_scope(ledger_url(request)) as session:
            accounts.enable(session, username, actor=user.username)
    except accounts.AccountError as exc:
        return _page(request, error=str(exc).capitalize() + ".", status_code=404)
    return redirect(request, "admin_accounts", {"done": "account_enabled"})


@router.post("/accounts/{username}/reset-password", name="admin_reset", dependencies=post_guard)
def reset(request: Request, username: str, user: StaffUser = Depends(admin_only)) -> Response:
    try:
        with session_scope(ledger_url(request)) as session:
            password = accounts.reset_password(session, username, actor=user.username)
    except accounts.AccountError as exc:
        return _page(request, error=str(exc).capitalize() + ".", status_code=404)
    return _page(request, issued=(username, password))
