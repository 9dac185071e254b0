"""CSRF protection for every form: a per-session token (synchroniser pattern), checked on every
POST; the sign-in form, which has no session yet, uses a double-submit cookie.
"""
from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
LOGIN_COOKIE = "hub_login_csrf"


class CsrfRefused(HTTPException):
    """A form came without the token this session issued (or with another one)."""

    def __init__(self) -> None:
        super().__init__(403, "This form has expired or did not come from this site. "
                              "Go back, reload the page and try again.")


def same(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


async def submitted_token(request: Request) -> str | None:
    """The token sent with a request: the form field, or the header for scripts."""
    header = request.headers.get(HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(FIELD)
        return value if isinstance(value, str) else None
    return None


async def require_token(request: Request) -> None:
    """Dependency for state-changing routes: the session's token must come back with the form.
    Runs after the user dependency, which puts the session's token on ``request.state``."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    from hub.web.auth import NotSignedIn, signed_in

    if signed_in(request) is None:   # also puts the session's token on request.state
        raise NotSignedIn()
    if not same(await submitted_token(request), getattr(request.state, "csrf_token", None)):
        raise CsrfRefused()


def new_login_token() -> str:
    return secrets.token_urlsafe(24)
