"""Hostile webhook bodies: the same 4xx answer, naming the field, on SQLite, PostgreSQL and MariaDB,
each kept as an inbound rejection with a work item; never a 500 nor an endless 503. Bodies are
refused past the limit while being read, and an unsigned request is refused before any is read."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from crm_adapter.webhook import signed_headers
from hub.ledger import db
from hub.ledger.models import Case, InboundRejection, WorkItem
from hub.web.app import create_app
from simulators.serving import serve_in_thread

SECRET = b"hostile-webhook-secret"
LIMIT = 1_000_000


def case(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"crm_id": "CRM-H1", "version": 1,
                            "case_type": "ctax_single_person_discount",
                            "updated_at": "2026-03-01T10:00:00+00:00",
                            "data": {"customer": {"name": "Ada Quillfeather"}}}
    body.update(changes)
    return body


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"x": value}
    return value


HOSTILE: dict[str, tuple[bytes, list[str]]] = {
    "crm id longer than its column": (json.dumps(case(crm_id="C" * 65)).encode(), ["crm_id"]),
    "NUL in the crm id": (json.dumps(case(crm_id="CRM\u0000H1")).encode(), ["crm_id"]),
    "case type longer than its column": (json.dumps(case(case_type="t" * 81)).encode(),
                                         ["case_type"]),
    "version past a 32-bit integer": (json.dumps(case(version=2**31)).encode(), ["version"]),
    "NUL deep in the data": (json.dumps(case(data={"customer": {"name": "A\u0000B"}})).encode(),
                             ["data.customer.name"]),
    "huge integer in the data": (json.dumps(case(data={"rent": 10**30})).encode(), ["data.rent"]),
    "unpaired surrogate": (b'{"crm_id": "CRM-H1", "version": 1, "case_type": "t", '
                           b'"updated_at": "2026-03-01T10:00:00+00:00", '
                           b'"data": {"note": "\\ud800"}}', ["data.note"]),
    "NaN": (json.dumps(case(data={"amount": float("nan")})).encode(), ["body"]),
    "nested 200 deep": (json.dumps(case(data=deep(200))).encode(), ["body"]),
    "raw NUL byte": (json.dumps(case()).encode().replace(b"CRM-H1", b"CRM\x00H1"), ["body"]),
    "not JSON": (b"\xff\xfe<xml/>", ["body"]),
}


@pytest.fixture
def hub(any_ledger: str) -> Iterator[tuple[str, str]]:
    app = create_app(url=any_ledger, secret=lambda: SECRET, signals=None)
    with serve_in_thread(app) as base:
        yield base, any_ledger


def _post(base: str, body: bytes, delivery: str) -> httpx.Response:
    return httpx.post(f"{base}/webhooks/crm", content=body, timeout=20,
                      headers=signed_headers(SECRET, body, delivery))


def test_hostile_bodies_get_the_same_422_everywhere_and_are_kept(hub) -> None:  # noqa: ANN001
    base, url = hub
    answers = {}
    for number, (name, (body, fields)) in enumerate(HOSTILE.items()):
        response = _post(base, body, f"hostile-{number}")
        answers[name] = (response.status_code, response.json().get("fields"))
        again = _post(base, body, f"hostile-{number}")
        assert again.status_code == 401, "a delivery id is used once, also for a refused body"
    assert answers == {name: (422, fields) for name, (_, fields) in HOSTILE.items()}
    with db.session_scope(url) as session:
        kept = {r.delivery_id: r for r in session.scalars(sa.select(InboundRejection))}
        items = list(session.scalars(sa.select(WorkItem)))
        cases = session.scalar(sa.select(sa.func.count()).select_from(Case))
    assert sorted(kept) == sorted(f"hostile-{n}" for n in range(len(HOSTILE)))
    assert all("\x00" not in (r.body or "") for r in kept.values())
    assert "data.customer.name" in kept["hostile-4"].error
    assert len(items) == len(HOSTILE) and {i.team for i in items} == {"operations"}
    assert cases == 0


def test_a_good_case_still_goes_through(hub) -> None:  # noqa: ANN001
    base, url = hub
    body = json.dumps(case(crm_id="C" * 64, case_type="t" * 80, version=2**31 - 1,
                           data={"big": 2**53 - 1, "deep": deep(20)})).encode()
    assert _post(base, body, "fits-exactly").status_code == 202


def test_an_over_long_delivery_id_is_refused_without_work(hub) -> None:  # noqa: ANN001
    base, url = hub
    body = json.dumps(case()).encode()
    assert _post(base, body, "d" * 121).status_code == 401
    assert _post(base, body, "d\tx").status_code == 401
    with db.session_scope(url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(InboundRejection)) == 0


# -- reading the body: at the ASGI level, counting what the receiver pulls ----------------------
class CountingBody:
    """An ASGI ``receive`` that hands out ``total`` bytes in chunks and counts what was taken."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.left, self.chunk, self.taken = total, chunk, 0

    async def __call__(self) -> dict[str, Any]:
        size = min(self.chunk, self.left)
        self.left -= size
        self.taken += size
        return {"type": "http.request", "body": b"x" * size, "more_body": self.left > 0}


def _asgi_post(headers: dict[str, str], receive: CountingBody) -> int:
    app = create_app(url="sqlite:///:memory:", secret=lambda: SECRET, signals=None)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/webhooks/crm", "raw_path": b"/webhooks/crm",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_an_unsigned_request_is_refused_before_its_body_is_read() -> None:
    receive = CountingBody(5 * LIMIT)
    assert _asgi_post({"transfer-encoding": "chunked"}, receive) == 401
    assert receive.taken == 0


def test_a_chunked_body_past_the_limit_is_cut_off_while_read() -> None:
    headers = signed_headers(SECRET, b"", "big-1") | {"transfer-encoding": "chunked"}
    receive = CountingBody(50 * LIMIT)
    assert _asgi_post(headers, receive) == 413
    assert receive.taken <= LIMIT + 64 * 1024, "reading stopped at the limit"


def test_a_declared_length_past_the_limit_is_refused_unread() -> None:
    headers = signed_headers(SECRET, b"", "big-2") | {"content-length": str(LIMIT + 1)}
    receive = CountingBody(LIMIT + 1)
    assert _asgi_post(headers, receive) == 413
    assert receive.taken == 0


def test_a_stale_signed_request_is_refused_before_its_body_is_read() -> None:
    headers = signed_headers(SECRET, b"", "stale-1", int(time.time()) - 3600)
    receive = CountingBody(LIMIT)
    assert _asgi_post(headers, receive) == 401 and receive.taken == 0
