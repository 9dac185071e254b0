"""The hub's webhook endpoint over a real socket: a signed case is recorded and mapped at once, and
only the assets with new work are signalled; anything else is recorded nowhere and signals nothing."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from crm_adapter.webhook import signed_headers
from hub.ledger import db
from hub.ledger.models import (Case, Command, InboundRejection, OutboxMessage, WebhookDelivery,
                               WorkItem)
from hub.web.app import create_app
from simulators.serving import serve_in_thread
from tests.hub.factories import rows

SECRET = b"webhook-test-secret"
API_TOKEN = "webhook-test-api-token"
CASE = {"crm_id": "CRM-W1", "version": 1, "case_type": "ctax_single_person_discount",
        "updated_at": "2026-03-01T10:00:00+00:00",
        "data": {"customer": {"name": "A Person"}, "account_reference": "CT00000001",
                 "from_date": "2026-03-01", "adults_in_household": 1}}
MISSED_BIN = {"crm_id": "CRM-W2", "version": 1, "case_type": "waste_missed_bin",
              "updated_at": "2026-03-01T10:00:00+00:00",
              "data": {"uprn": "100090000001", "bin_type": "recycling",
                       "collection_date": "2026-02-27"}}


class Signals:
    """Stands in for the SignalPublisher: records what the request path marked."""

    def __init__(self) -> None:
        self.marked: list[str] = []
        self.calls = 0

    def mark(self, *uris: str) -> None:
        self.calls += 1
        self.marked.extend(uris)

    def snapshot(self) -> dict:
        return {"transport": "test", "marked": len(self.marked)}

    def close(self) -> None:
        pass


@pytest.fixture
def hub(ledger_url: str) -> Iterator[tuple[str, str, Signals]]:
    signals = Signals()
    app = create_app(url=ledger_url, secret=lambda: SECRET, signals=signals)
    with serve_in_thread(app) as base:
        yield base, ledger_url, signals


def _count(url: str, model: type) -> int:
    with db.session_scope(url) as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model)))


def _post(base: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{base}/webhooks/crm", content=body, headers=headers, timeout=10)


def test_a_signed_case_is_recorded_mapped_and_signals_only_its_system(hub) -> None:
    base, url, signals = hub
    body = json.dumps(CASE).encode()
    assert _post(base, body, signed_headers(SECRET, body, "d-1")).status_code == 202
    [case] = rows(url, Case)
    [command] = rows(url, Command)
    assert case.state == "mapped" and command.system == "revenues_northgate"
    assert signals.marked == ["hub://ledger/commands/revenues_northgate"]
    replay = _post(base, body, signed_headers(SECRET, body, "d-1"))
    assert replay.status_code == 401 and _count(url, Case) == 1 and signals.calls == 1


def test_each_case_signals_the_dispatch_of_its_own_system(hub) -> None:
    base, url, signals = hub
    for n, case in enumerate([MISSED_BIN, CASE]):
        body = json.dumps(case).encode()
        assert _post(base, body, signed_headers(SECRET, body, f"d-s{n}")).status_code == 202
    assert signals.marked == ["hub://ledger/commands/waste_bartec",
                              "hub://ledger/commands/revenues_northgate"]
    assert {c.system for c in rows(url, Command)} == {"waste_bartec", "revenues_northgate"}


def test_the_same_version_under_a_new_delivery_id_signals_nothing_more(hub) -> None:
    base, url, signals = hub
    body = json.dumps(CASE).encode()
    for delivery in ("d-a", "d-b"):
        assert _post(base, body, signed_headers(SECRET, body, delivery)).status_code == 202
    assert _count(url, Command) == 1 and signals.calls == 1


def test_a_case_the_mapping_refuses_signals_the_write_back_of_its_notice(hub) -> None:
    base, url, signals = hub
    bad = {**MISSED_BIN, "data": {"uprn": "100090000001", "bin_type": "recycling"}}
    body = json.dumps(bad).encode()
    assert _post(base, body, signed_headers(SECRET, body, "d-i")).status_code == 202
    [case] = rows(url, Case)
    assert case.state == "invalid" and "collection_date" in (case.error or "")
    assert [m.status for m in rows(url, OutboxMessage)] == ["needs_review"]
    assert signals.marked == ["hub://ledger/outbox"] and _count(url, Command) == 0


def _signal_figures(base: str) -> httpx.Response:
    return httpx.get(f"{base}/api/signals", timeout=10,
                     headers={"Authorization": f"Bearer {API_TOKEN}"})


def test_signal_figures_are_served(hub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_API_TOKEN", API_TOKEN)
    base, _, _ = hub
    body = json.dumps(CASE).encode()
    _post(base, body, signed_headers(SECRET, body, "d-f"))
    assert httpx.get(f"{base}/api/signals", timeout=10).status_code == 401, "figures need a caller"
    assert _signal_figures(base).json() == {"transport": "test", "marked": 1}


@pytest.mark.parametrize("how", ["unsigned", "wrong secret", "tampered body", "stale", "future"])
def test_anything_not_correctly_signed_gets_401_and_records_nothing(hub, how: str) -> None:
    base, url, signals = hub
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
    assert (_count(url, Case), _count(url, WebhookDelivery), signals.calls) == (0, 0, 0)


def test_a_signed_but_unreadable_body_is_kept_for_a_person(hub) -> None:
    base, url, signals = hub
    body = json.dumps({**CASE, "version": "first"}).encode()
    response = _post(base, body, signed_headers(SECRET, body, "d-3"))
    assert response.status_code == 422 and "version" in response.text
    assert _count(url, Case) == 0 and signals.calls == 0
    assert _count(url, InboundRejection) == 1
    with db.session_scope(url) as session:
        [item] = session.scalars(sa.select(WorkItem))
        assert item.team == "operations" and "version" in item.reason


def test_the_former_trigger_none_still_means_no_signals(sqlite_ledger: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_API_TOKEN", API_TOKEN)
    app = create_app(url=sqlite_ledger, secret=lambda: SECRET, trigger=None)
    with serve_in_thread(app) as base:
        assert _signal_figures(base).json() == {"transport": None}
    with pytest.raises(TypeError, match="signals"):
        create_app(url=sqlite_ledger, secret=lambda: SECRET, trigger=lambda: None)
