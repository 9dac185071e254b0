"""The CRM simulator's HTTP API on a real socket."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulators.crm import create_app
from simulators.serving import serve_in_thread
from simulators.world import demo_cases

TOKEN = "sim-token"
UPDATE = {"status": "completed", "note": "Done", "backoffice_reference": "CT00000001",
          "backoffice_system": "revenues_northgate"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    app = create_app(tmp_path / "crm.sqlite", token=TOKEN)
    with serve_in_thread(app) as url, httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as http:
        yield http
    app.state.store.close()


def test_api_needs_the_bearer_token(api: httpx.Client) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"},
                    {"Authorization": TOKEN}):
        assert api.get("/api/v1/cases", headers=headers).status_code == 401
        assert api.put("/api/v1/cases/C1", json={"case_type": "t", "data": {}},
                       headers=headers).status_code == 401
    assert api.get("/admin/stats").json()["cases"] == 0


def test_put_creates_then_versions_only_on_change(api: httpx.Client) -> None:
    body = {"case_type": "t", "data": {"x": 1}}
    created = api.put("/api/v1/cases/C1", json=body)
    assert created.status_code == 201 and created.json()["version"] == 1
    again = api.put("/api/v1/cases/C1", json=body)
    assert again.status_code == 200 and again.json() == created.json()
    assert api.put("/api/v1/cases/C1", json=body | {"data": {"x": 2}}).json()["version"] == 2
    assert api.put("/api/v1/cases/C1", json={"data": {}}).status_code == 422
    assert api.get("/api/v1/cases/C1").json()["data"] == {"x": 2}
    assert api.get("/api/v1/cases/nope").status_code == 404


def test_feed_pages_with_an_opaque_cursor(api: httpx.Client) -> None:
    for i in range(5):
        api.put(f"/api/v1/cases/C{i}", json={"case_type": "t", "data": {"i": i}})
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.get("/api/v1/cases", params=params).json()
        if not page["cases"]:
            break
        seen += [c["crm_id"] for c in page["cases"]]
        cursor = page["next_cursor"]
    assert seen == [f"C{i}" for i in range(5)]
    assert api.get("/api/v1/cases", params={"cursor": "bogus"}).status_code == 422
    assert api.get("/api/v1/cases", params={"limit": 0}).status_code == 422


def test_updates_apply_once_per_key(api: httpx.Client) -> None:
    api.put("/api/v1/cases/C1", json={"case_type": "t", "data": {}})
    first = api.post("/api/v1/cases/C1/updates", json=UPDATE, headers={"Idempotency-Key": "k1"})
    repeat = api.post("/api/v1/cases/C1/updates", json=UPDATE | {"note": "different"},
                      headers={"Idempotency-Key": "k1"})
    assert (first.status_code, first.json()["applied"]) == (201, True)
    assert (repeat.status_code, repeat.json()["applied"]) == (200, False)
    updates = api.get("/api/v1/cases/C1/updates").json()["updates"]
    assert [(u["idempotency_key"], u["note"]) for u in updates] == [("k1", "Done")]
    case = api.get("/api/v1/cases/C1").json()
    assert (case["status"], case["backoffice_reference"], case["version"]) == \
        ("completed", "CT00000001", 1)
    stats = api.get("/admin/stats").json()
    assert stats["writebacks_applied"] == 1 and stats["writebacks_by_status"] == {"completed": 1}
    assert stats["by_case_type"] == {"t": 1}


def test_update_errors(api: httpx.Client) -> None:
    api.put("/api/v1/cases/C1", json={"case_type": "t", "data": {}})
    key = {"Idempotency-Key": "k"}
    assert api.post("/api/v1/cases/C9/updates", json=UPDATE, headers=key).status_code == 404
    assert api.get("/api/v1/cases/C9/updates").status_code == 404
    bad = api.post("/api/v1/cases/C1/updates", json=UPDATE | {"status": "done"}, headers=key)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "status"]
    assert api.post("/api/v1/cases/C1/updates", json=UPDATE).status_code == 422   # no key
    assert api.get("/api/v1/cases/C1/updates").json()["updates"] == []


def test_seed_demo_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "crm.sqlite"
    first = create_app(db, token=TOKEN, seed_demo=True)
    stats = first.state.store.stats()
    _, cursor = first.state.store.changes(None, 1000)
    first.state.store.close()
    again = create_app(db, token=TOKEN, seed_demo=True)
    assert again.state.store.stats() == stats
    assert stats["cases"] == len(demo_cases())
    assert again.state.store.changes(cursor, 1000)[0] == [], "re-seeding changed nothing"
    again.state.store.close()


def test_create_app_checks_its_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        create_app(tmp_path / "a.sqlite", token="")
    with pytest.raises(ValueError):
        create_app(tmp_path / "b.sqlite", token="t", webhook_url="http://127.0.0.1:1/x")


def test_cases_carry_their_channel_and_history_keeps_its_created_time(tmp_path: Path) -> None:
    from datetime import date, datetime

    from crm_adapter.models import CrmCase
    from simulators.world import SPIKING_SERVICE, history_cases

    app = create_app(tmp_path / "crm.sqlite", token=TOKEN, seed_demo=True)
    with serve_in_thread(app) as url, httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as http:
        feed = http.get("/api/v1/cases", params={"limit": 1000}).json()["cases"]
        made = http.put("/api/v1/cases/NEW1", json={"case_type": "t", "data": {}, "channel": "web"})
        assert made.json()["channel"] == "web"
    app.state.store.close()
    cases = [CrmCase.model_validate(c) for c in feed]   # the hub reads every one
    assert {c.channel for c in cases} <= {"telephone", "web", "face_to_face", "email"}
    history = [c for c in cases if c.crm_id.startswith("CRM-H")]
    assert history and all(c.created_at == c.updated_at and c.created_at.date() < date.today()
                           for c in history)
    days = {c.created_at.date() for c in history}
    assert (max(days) - min(days)).days >= 42, "several weeks of history"
    spike = max(days)
    on_spike = sum(1 for c in history if c.created_at.date() == spike and c.case_type == SPIKING_SERVICE)
    assert on_spike >= 20, "the day before today has the missed-bin spike"
    assert history_cases(date(2026, 3, 18), 0) == []
    assert isinstance(datetime.fromisoformat(feed[0]["updated_at"]), datetime)


def test_the_store_adds_the_new_columns_to_an_older_file(tmp_path: Path) -> None:
    import sqlite3

    old = sqlite3.connect(tmp_path / "old.sqlite")
    old.executescript("CREATE TABLE cases (crm_id TEXT PRIMARY KEY, case_type TEXT NOT NULL, data TEXT NOT NULL,"
                      " version INTEGER NOT NULL, updated_at TEXT NOT NULL, change_seq INTEGER NOT NULL UNIQUE,"
                      " status TEXT NOT NULL DEFAULT 'new', backoffice_reference TEXT, backoffice_system TEXT,"
                      " notes TEXT NOT NULL DEFAULT '[]');")
    old.close()
    from simulators.crm.store import CrmStore

    store = CrmStore(tmp_path / "old.sqlite")
    assert store.put_case("A", "t", {}, channel="email").case["channel"] == "email"
    store.close()


def test_push_signature_follows_the_documented_recipe() -> None:
    # docs/crm.md: "sha256=" + hex(HMAC_SHA256(secret, timestamp + "." + body)); vector computed
    # independently of both the simulator and the hub (RFC 2104 HMAC with SHA-256).
    from simulators.crm.app import webhook_headers
    headers = webhook_headers(b"key", b'{"a":1}', "d-1", timestamp=1700000000)
    assert headers["X-Hub-Timestamp"] == "1700000000" and headers["X-Hub-Delivery"] == "d-1"
    assert headers["X-Hub-Signature-256"] == (
        "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03")


def test_the_hubs_receiver_accepts_what_the_simulator_pushes(tmp_path: Path,
                                                              sqlite_ledger: str) -> None:
    # The simulator signs on its own (docs/crm.md); the hub's real endpoint must agree with it.
    from hub.web.app import create_app as create_hub
    secret = b"push-agreement-secret"
    hub = create_hub(url=sqlite_ledger, secret=lambda: secret, signals=None)
    with serve_in_thread(hub) as hub_url:
        app = create_app(tmp_path / "crm.sqlite", token=TOKEN,
                         webhook_url=f"{hub_url}/webhooks/crm", webhook_secret=secret)
        with serve_in_thread(app) as url, httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as http:
            case = demo_cases()[0]
            assert http.put(f"/api/v1/cases/{case['id']}",
                            json={"case_type": case["case_type"], "data": case["data"]}
                            ).status_code == 201
        app.state.store.close()
    from sqlalchemy import select

    from hub.ledger.db import session_scope
    from hub.ledger.models import Case
    with session_scope(sqlite_ledger) as session:
        assert list(session.scalars(select(Case.crm_id))) == [case["id"]]
