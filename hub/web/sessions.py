"""Signed-in sessions, kept in the ledger so that every web worker (and Airflow's API server, when
the hub is mounted there) sees the same ones, and sign-out or disabling an account ends them at once.

The browser holds a random token; the table holds only its SHA-256. A session ends after an idle
period or a maximum age (``WebSettings``), whichever comes first.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from hub.ledger.models import Account, WebSession, utcnow
from hub.web.settings import WebSettings

COOKIE = "hub_session"
#: last_seen_at is written at most this often (not on every request).
TOUCH_EVERY = timedelta(seconds=60)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Signed:
    account: Account
    csrf_token: str


def start(session: Session, account_id: int, settings: WebSettings) -> str:
    """A new session for the account; returns the cookie value (shown to nobody else)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(WebSession(id=_digest(token), account_id=account_id,
                           csrf_token=secrets.token_urlsafe(32), created_at=now, last_seen_at=now,
                           expires_at=now + settings.session_max))
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    return token


def load(session: Session, token: str | None, settings: WebSettings,
         now: datetime | None = None) -> Signed | None:
    """The live session behind a cookie value, or None (unknown, expired, idle, or disabled)."""
    if not token or len(token) > 200:
        return None
    now = now or utcnow()
    row = session.get(WebSession, _digest(token))
    if row is None:
        return None
    if row.expires_at <= now or row.last_seen_at + settings.session_idle <= now:
        session.delete(row)
        return None
    account = session.get(Account, row.account_id)
    if account is None or account.disabled:
        session.delete(row)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return Signed(account=account, csrf_token=row.csrf_token)


def end(session: Session, token: str | None) -> None:
    if token and len(token) <= 200:
        session.execute(delete(WebSession).where(WebSession.id == _digest(token)))


def end_all(session: Session, account_id: int) -> int:
    """End every session of an account (disabled, password reset or changed)."""
    return session.execute(delete(WebSession).where(WebSession.account_id == account_id)).rowcount or 0
