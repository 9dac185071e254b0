"""Sign in, sign out, change password, and the home page that sends each role to its own page."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from hub import accounts
from hub.accounts import StaffUser
from hub.ledger.db import session_scope
from hub.web import csrf, sessions
from hub.web.auth import current_user, current_user_any_password, ledger_url, web_settings
from hub.web.pages import path_for, redirect, render

router = APIRouter()


def home_for(request: Request, user: StaffUser) -> str:
    if user.has_desk:
        return path_for(request, "desk")
    if user.is_admin:
        return path_for(request, "admin_accounts")
    return path_for(request, "mi")


def _safe_next(request: Request, target: str | None) -> str | None:
    """Only a path inside this app (no scheme, no host, no ``//``) may be returned to."""
    root = request.scope.get("root_path", "")
    if not target or not target.startswith((root or "") + "/") or target.startswith("//") \
            or "\\" in target or len(target) > 500:
        return None
    return target


def _login_page(request: Request, *, error: str = "", status_code: int = 200,
                username: str = "", next_path: str = "", retry_after: int | None = None) -> Response:
    existing = request.cookies.get(csrf.LOGIN_COOKIE, "")
    token = existing if 20 <= len(existing) <= 64 else csrf.new_login_token()
    response = render(request, "login.html", {"error": error, "username": username,
                                              "next": next_path, "login_csrf": token},
                      status_code=status_code)
    response.set_cookie(csrf.LOGIN_COOKIE, token, max_age=1800, httponly=True, samesite="strict",
                        secure=web_settings(request).cookie_secure,
                        path=request.scope.get("root_path", "") or "/")
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@router.get("/login", name="login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next_path=_safe_next(request, next) or "")


@router.post("/login", name="login_submit")
def login(request: Request, username: str = Form("", max_length=200),
          password: str = Form("", max_length=1000), csrf_token: str = Form("", max_length=200),
          next: str = Form("", max_length=500)) -> Response:
    if not csrf.same(csrf_token, request.cookies.get(csrf.LOGIN_COOKIE)):
        return _login_page(request, error="The sign-in form expired. Please try again.",
                           status_code=403, username=username, next_path=next)
    client = accounts.client_digest(request.client.host if request.client else None)
    settings = web_settings(request)
    try:
        with session_scope(ledger_url(request)) as session:
            user = accounts.authenticate(session, username, password, client=client)
            token = sessions.start(session, user.id, settings) if user else ""
    except accounts.LoginThrottled as exc:
        minutes = max(1, round(exc.retry_after / 60))
        return _login_page(request, status_code=429, username=username, next_path=next,
                           retry_after=exc.retry_after,
                           error=f"Too many failed sign-ins. Try again in {minutes} minute"
                                 f"{'s' if minutes != 1 else ''}.")
    if user is None:
        return _login_page(request, status_code=401, username=username, next_path=next,
                           error="The user name or password is not right.")
    request.state.user = user
    target = path_for(request, "change_password") if user.must_change_password \
        else _safe_next(request, next) or home_for(request, user)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(sessions.COOKIE, token, httponly=True, samesite="lax",
                        secure=settings.cookie_secure, path=request.scope.get("root_path", "") or "/",
                        max_age=int(settings.session_max.total_seconds()))
    response.delete_cookie(csrf.LOGIN_COOKIE, path=request.scope.get("root_path", "") or "/")
    return response


@router.post("/logout", name="logout",
             dependencies=[Depends(current_user_any_password), Depends(csrf.require_token)])
def logout(request: Request) -> Response:
    with session_scope(ledger_url(request)) as session:
        sessions.end(session, request.cookies.get(sessions.COOKIE))
    response = redirect(request, "login")
    response.delete_cookie(sessions.COOKIE, path=request.scope.get("root_path", "") or "/")
    return response


@router.get("/", name="home")
def home(request: Request, user: StaffUser = Depends(current_user)) -> Response:
    return RedirectResponse(home_for(request, user), status_code=303)


@router.get("/account/password", name="change_password")
def password_form(request: Request, user: StaffUser = Depends(current_user_any_password)) -> Response:
    return render(request, "password.html", {"error": ""})


@router.post("/account/password", name="change_password_submit",
             dependencies=[Depends(csrf.require_token)])
def change_password(request: Request, user: StaffUser = Depends(current_user_any_password),
                    current: str = Form("", max_length=1000), new: str = Form("", max_length=1000),
                    confirm: str = Form("", max_length=1000)) -> Response:
    if new != confirm:
        return render(request, "password.html", {"error": "The new passwords do not match."},
                      status_code=422)
    settings = web_settings(request)
    try:
        with session_scope(ledger_url(request)) as session:
            accounts.change_password(session, user.id, current=current, new=new)
            sessions.end_all(session, user.id)
            token = sessions.start(session, user.id, settings)
    except accounts.AccountError as exc:
        return render(request, "password.html", {"error": str(exc).capitalize() + "."},
                      status_code=422)
    response = RedirectResponse(home_for(request, user) + "?done=password_changed", status_code=303)
    response.set_cookie(sessions.COOKIE, token, httponly=True, samesite="lax",
                        secure=settings.cookie_secure, path=request.scope.get("root_path", "") or "/",
                        max_age=int(settings.session_max.total_seconds()))
    return response
