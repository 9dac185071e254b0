"""The signed webhook receiver, on a real socket, and the simulator's push into it."""
from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from crm_adapter.models import CrmCase
from crm_adapter.webhook import (DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign,
                                 signed_headers, webhook_router)
from simulators.crm import create_app
from simulators.serving import free_port, serve_in_thread

SECRET = b"shared-webhook-secret"
PERSON = "Siobhan Okafor"
CASE: dict[str, Any] = {"crm_id": "CRM-000123", "version": 2, "case_type": "ctax_direct_debit",
                        "updated_at": "2026-03-01T09:30:00+00:00",
                        "data": {"customer": {"name": PERSON}, "account_reference": "CT00000003"}}


class Inbox:
    """What the hub would do with deliveries: an in-memory ledger."""

    def __init__(self) -> None:
        self.cases: list[CrmCase] = []
        self.claimed: set[str] = set()
        self.invalid: list[tuple[str, str, bytes]] = []
        self.released: list[str] = []
        self.triggers = 0
        self.trigger_fails = False
        self.record_fails = False

    def record_case(self, case: CrmCase) -> None:
        if self.record_fails:
            raise RuntimeError(f"could not store {case.data}")
        self.cases.append(case)

    def claim(self, delivery_id: str) -> bool:
        if delivery_id in self.claimed:
            return False
        self.claimed.add(delivery_id)
        return True

    def release(self, delivery_id: str) -> None:
        self.released.append(delivery_id)
        self.claimed.discard(delivery_id)

    def trigger(self) -> None:
        self.triggers += 1
        if self.trigger_fails:
            raise ConnectionError(f"airflow down while handling {PERSON}")


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[Inbox]]]:
    current = [Inbox()]
    app = FastAPI()
    app.include_router(webhook_router(
        secret=lambda: SECRET, record_case=lambda c: current[0].record_case(c),
        claim_delivery=lambda d: current[0].claim(d), trigger=lambda: current[0].trigger(),
        record_invalid=lambda *a: current[0].invalid.append(a),
        release_delivery=lambda d: current[0].release(d), max_body_bytes=10_000))
    with serve_in_thread(app) as url:
        yield url, current


@pytest.fixture
def hook(receiver: tuple[str, list[Inbox]]) -> Iterator[tuple[httpx.Client, Inbox]]:
    url, current = receiver
    current[0] = Inbox()
    with httpx.Client(base_url=url, timeout=5) as http:
        yield http, current[0]


def _post(http: httpx.Client, body: bytes, *, delivery: str | None = None,
          ts: int | None = None, secret: bytes = SECRET,
          headers: dict[str, str] | None = None) -> httpx.Response:
    sent = signed_headers(secret, body, delivery or uuid.uuid4().hex, ts)
    sent.update(headers or {})
    return http.post("/webhooks/crm", content=body, headers=sent)


def _body(**changes: Any) -> bytes:
    return json.dumps(CASE | changes).encode()


def test_valid_delivery_is_recorded_and_triggers_intake(hook: tuple[httpx.Client, Inbox]) -> None:
    http, inbox = hook
    response = _post(http, _body())
    assert response.status_code == 202
    assert [(c.crm_id, c.version) for c in inbox.cases] == [("CRM-000123", 2)]
    assert inbox.cases[0].data == CASE["data"]
    assert inbox.triggers == 1


def test_replayed_delivery_is_refused_and_not_recorded_twice(
        hook: tuple[httpx.Client, Inbox]) -> None:
    http, inbox = hook
    assert _post(http, _body(), delivery="d-1").status_code == 202
    assert _post(http, _body(), delivery="d-1").status_code == 401
    assert len(inbox.cases) == 1 and inbox.triggers == 1


@pytest.mark.parametrize("forgery", ["unsigned", "wrong secret", "tampered body", "garbage",
                                     "no timestamp", "stale", "future", "not seconds"])
def test_forged_calls_are_refused_without_burning_the_delivery(
        hook: tuple[httpx.Client, Inbox], forgery: str) -> None:
    http, inbox = hook
    body, now = _body(), int(time.time())
    signed = signed_headers(SECRET, body, "d-42")
    headers = dict(signed)
    if forgery == "unsigned":
        del headers[SIGNATURE_HEADER]
    elif forgery == "wrong secret":
        headers = signed_headers(b"another-secret", body, "d-42")
    elif forgery == "tampered body":
        body = _body(version=3)
    elif forgery == "garbage":
        headers[SIGNATURE_HEADER] = "sha256=" + "0" * 64
    elif forgery == "no timestamp":
        del headers[TIMESTAMP_HEADER]
    elif forgery in ("stale", "future"):
        ts = now - 301 if forgery == "stale" else now + 301
        headers = signed_headers(SECRET, body, "d-42", ts)   # correctly signed, wrong time
    elif forgery == "not seconds":
        headers[TIMESTAMP_HEADER] = "2026-03-01T09:30:00Z"
    response = http.post("/webhooks/crm", content=body, headers=headers)
    assert response.status_code == 401
    assert inbox.cases == [] and inbox.invalid == [] and inbox.triggers == 0
    assert inbox.claimed == set()
    # the genuine delivery with that id still goes through
    assert http.post("/webhooks/crm", content=_body(), headers=signed).status_code == 202


def test_missing_delivery_id_is_refused(hook: tuple[httpx.Client, Inbox]) -> None:
    http, inbox = hook
    headers = signed_headers(SECRET, _body(), "x")
    del headers[DELIVERY_HEADER]
    assert http.post("/webhooks/crm", content=_body(), headers=headers).status_code == 401
    assert inbox.cases == []


def test_timestamp_within_tolerance_is_accepted(hook: tuple[httpx.Client, Inbox]) -> None:
    http, inbox = hook
    assert _post(http, _body(), ts=int(time.time()) - 290).status_code == 202


@pytest.mark.parametrize("body, field", [
    (_body(version=0), "version"),
    (_body(updated_at="2026-03-01T09:30:00"), "updated_at"),   # no time zone
    (json.dumps({k: v for k, v in CASE.items() if k != "case_type"}).encode(), "case_type"),
    (b"not json {", "body"),
])
def test_signed_but_invalid_body_is_kept_for_a_person(hook: tuple[httpx.Client, Inbox],
                                                      body: bytes, field: str) -> None:
    http, inbox = hook
    response = _post(http, body, delivery="d-bad")
    assert response.status_code == 422
    assert field in response.json()["fields"] or field == "body"
    assert inbox.cases == [] and inbox.triggers == 0
    [(delivery_id, error, raw)] = inbox.invalid
    assert (delivery_id, raw) == ("d-bad", body)
    assert (field in error) if field != "body" else ("JSON" in error)
    assert PERSON not in error and PERSON not in response.text
    assert _post(http, body, delivery="d-bad").status_code == 401, "kept once"
    assert len(inbox.invalid) == 1


def test_trigger_failure_still_accepts(hook: tuple[httpx.Client, Inbox],
                                       caplog: pytest.LogCaptureFixture) -> None:
    http, inbox = hook
    inbox.trigger_fails = True
    with caplog.at_level(logging.DEBUG):
        assert _post(http, _body()).status_code == 202
    assert len(inbox.cases) == 1
    assert "ConnectionError" in caplog.text
    assert PERSON not in caplog.text


def test_record_failure_frees_the_delivery_for_the_retry(
        hook: tuple[httpx.Client, Inbox], caplog: pytest.LogCaptureFixture) -> None:
    http, inbox = hook
    inbox.record_fails = True
    with caplog.at_level(logging.DEBUG):
        assert _post(http, _body(), delivery="d-9").status_code == 503
    assert PERSON not in caplog.text
    assert inbox.released == ["d-9"]
    inbox.record_fails = False
    assert _post(http, _body(), delivery="d-9").status_code == 202
    assert len(inbox.cases) == 1


def test_oversized_body_is_refused(hook: tuple[httpx.Client, Inbox]) -> None:
    http, inbox = hook
    body = _body(data={"blob": "x" * 20_000})
    assert _post(http, body).status_code == 413
    assert inbox.cases == [] and inbox.claimed == set()


def test_signature_format() -> None:
    assert sign(b"k", "1700000000", b"{}") == \
        "sha256=" + __import__("hmac").new(b"k", b"1700000000.{}", "sha256").hexdigest()


# -- the simulator pushing into the receiver -------------------------------------------------

def test_simulator_pushes_each_new_version_once(hook: tuple[httpx.Client, Inbox],
                                                receiver: tuple[str, list[Inbox]],
                                                tmp_path: Path) -> None:
    http, inbox = hook
    app = create_app(tmp_path / "crm.sqlite", token="t", webhook_secret=SECRET,
                     webhook_url=f"{receiver[0]}/webhooks/crm")
    with serve_in_thread(app) as url, httpx.Client(
            base_url=url, headers={"Authorization": "Bearer t"}, timeout=10) as sim:
        case = {"case_type": "ctax_direct_debit", "data": CASE["data"]}
        assert sim.put("/api/v1/cases/CRM-9", json=case).status_code == 201
        assert sim.put("/api/v1/cases/CRM-9", json=case).status_code == 200    # unchanged
        sim.put("/api/v1/cases/CRM-9", json=case | {"data": {"account_reference": "CT00000004"}})
    app.state.store.close()
    assert [(c.crm_id, c.version) for c in inbox.cases] == [("CRM-9", 1), ("CRM-9", 2)]
    assert inbox.triggers == 2


def test_simulator_push_failure_does_not_fail_the_put(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(tmp_path / "crm.sqlite", token="t", webhook_secret=SECRET,
                     webhook_url=f"http://127.0.0.1:{free_port()}/webhooks/crm")
    with serve_in_thread(app) as url, httpx.Client(
            base_url=url, headers={"Authorization": "Bearer t"}, timeout=10) as sim, \
            caplog.at_level(logging.WARNING):
        response = sim.put("/api/v1/cases/CRM-1", json={"case_type": "t",
                                                        "data": {"name": PERSON}})
        assert response.status_code == 201
        assert sim.get("/api/v1/cases/CRM-1").json()["version"] == 1
    app.state.store.close()
    assert "push of case CRM-1" in caplog.text and PERSON not in caplog.text
