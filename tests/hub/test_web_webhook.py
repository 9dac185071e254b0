"""The hub's webhook endpoint over a real socket: signed cases are recorded, anything else is not."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from crm_adapter.webhook import signed_headers
from hub.ledger import db
from hub.ledger.models import Case, InboundRejection, WebhookDelivery, WorkItem
from hub.web.app import create_app
from simulators.serving import serve_in_thread

SECRET = b"webhook-test-secret"
CASE = {"crm_id": "CRM-W1", "version": 1, "case_type": "ctax_single_person_discount",
        "updated_at": "2026-03-01T10:00:00+00:00",
        "data": {"customer": {"name": "A Person"}, "account_reference": "CT00000001",
                 "from_date": "2026-03-01", "adults_in_household": 1}}


class Triggers:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


@pytest.fixture
def hub(ledger_url: str) -> Iterator[tuple[str, str, Triggers]]:
    triggers = Triggers()
    app = create_app(url=ledger_url, secret=lambda: SECRET, trigger=triggers)
    with serve_in_thread(app) as base:
        yield base, ledger_url, triggers


def _count(url: str, model: type) -> int:
    with db.session_scope(url) as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model)))


def _post(base: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{base}/webhooks/crm", content=body, headers=headers, timeout=10)


def test_a_signed_case_is_recorded_once_and_triggers_intake(hub) -> None:
    base, url, triggers = hub
    body = json.dumps(CASE).encode()
    assert _post(base, body, signed_headers(SECRET, body, "d-1")).status_code == 202
    assert _count(url, Case) == 1 and triggers.calls == 1
    replay = _post(base, body, signed_headers(SECRET, body, "d-1"))
    assert replay.status_code == 401 and _count(url, Case) == 1


@pytest.mark.parametrize("how", ["unsigned", "wrong secret", "tampered body", "stale", "future"])
def test_anything_not_correctly_signed_gets_401_and_records_nothing(hub, how: str) -> None:
    base, url, triggers = hub
    body = json.dumps(CASE).encode()
    now = int(time.time())
    headers = {
        "unsigned": {"Content-Type": "application/json", "X-Hub-Delivery": "d-2"},
        "wrong secret": signed_headers(b"not-the-secret", body, "d-2"),
        "tampered body": signed_headers(SECRET, body.replace(b"CT00000001", b"CT00000002"), "d-2"),
        "stale": signed_headers(SECRET, body, "d-2", timestamp=now - 3600),
        "future": signed_headers(SECRET, body, "d-2", timestamp=now + 3600),
    }[how]
    assert _post(base, body, headers).status_code == 401
    assert (_count(url, Case), _count(url, WebhookDelivery), triggers.calls) == (0, 0, 0)


def test_a_signed_but_unreadable_body_is_kept_for_a_person(hub) -> None:
    base, url, _ = hub
    body = json.dumps({**CASE, "version": "first"}).encode()
    response = _post(base, body, signed_headers(SECRET, body, "d-3"))
    assert response.status_code == 422 and "version" in response.text
    assert _count(url, Case) == 0
    assert _count(url, InboundRejection) == 1
    with db.session_scope(url) as session:
        [item] = session.scalars(sa.select(WorkItem))
        assert item.team == "operations" and "version" in item.reason
