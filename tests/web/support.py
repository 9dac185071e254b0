"""Helpers for the hub's page tests: accounts, signed-in clients, ledger rows."""
from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub import accounts
from hub.ledger import db
from hub.ledger.models import Account

PASSWORD = "correct horse battery staple"


def add_user(url: str, username: str, role: str = accounts.MEMBER, teams: Iterable[str] = (),
             password: str = PASSWORD, must_change: bool = False) -> None:
    with db.session_scope(url) as session:
        account, _ = accounts.add_account(session, username=username, role=role, teams=teams,
                                          display_name=username.replace(".", " ").title(),
                                          password=password)
        account.must_change_password = must_change


def client(app: FastAPI) -> TestClient:
    """A client on https (the session cookie is Secure), not following redirects."""
    return TestClient(app, base_url="https://hub.test", follow_redirects=False)


def sign_in(app: FastAPI, username: str, password: str = PASSWORD) -> TestClient:
    browser = client(app)
    page = browser.get("/login")
    token = csrf_of(page.text)
    answer = browser.post("/login", data={"username": username, "password": password,
                                          "csrf_token": token})
    assert answer.status_code == 303, answer.text[:500]
    return browser


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def account(url: str, username: str) -> Account:
    with db.session_scope(url) as session:
        return accounts.find(session, username)


def shift(url: str, model: type, *columns: str, by) -> None:  # type: ignore[no-untyped-def]
    """Move every row's ``columns`` by ``by`` (a timedelta): time passing, for expiry tests."""
    import sqlalchemy as sa

    with db.session_scope(url) as session:
        for row in session.scalars(sa.select(model)):
            for column in columns:
                value = getattr(row, column)
                if value is not None:
                    setattr(row, column, value + by)
