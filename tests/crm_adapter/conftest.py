"""Fixtures: the CRM simulator on a real socket, and a client for it."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from crm_adapter.rest import CrmClient
from simulators.crm import create_app
from simulators.serving import serve_in_thread

TOKEN = "test-token"


@dataclass
class RunningCrm:
    url: str
    app: FastAPI
    admin: httpx.Client
    """Authenticated client for driving the simulator directly (seeding, inspection)."""

    def put(self, crm_id: str, case_type: str, data: dict) -> dict:
        response = self.admin.put(f"/api/v1/cases/{crm_id}",
                                  json={"case_type": case_type, "data": data})
        response.raise_for_status()
        return response.json()

    def updates(self, crm_id: str) -> list[dict]:
        response = self.admin.get(f"/api/v1/cases/{crm_id}/updates")
        response.raise_for_status()
        return response.json()["updates"]


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[RunningCrm]:
    app = create_app(tmp_path / "crm.sqlite", token=TOKEN)
    with serve_in_thread(app) as url, httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as admin:
        yield RunningCrm(url, app, admin)
    app.state.store.close()


@pytest.fixture
def client(crm: RunningCrm) -> Iterator[CrmClient]:
    with CrmClient(crm.url, TOKEN, timeout=5) as crm_client:
        yield crm_client
