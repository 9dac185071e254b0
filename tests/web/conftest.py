"""A hub app on a throwaway ledger, for page tests."""
from __future__ import annotations

import pytest
from fastapi import FastAPI

from hub.web.app import create_app


@pytest.fixture
def app(sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setenv("HUB_API_TOKEN", "machine-token")
    return create_app(url=sqlite_ledger, secret=lambda: b"s", trigger=None)
