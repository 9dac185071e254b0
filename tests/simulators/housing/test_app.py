"""The housing repairs simulator speaks the API documented in docs/connectors/housing.md."""
from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from simulators.housing import sample
from simulators.housing.app import create_app
from simulators.kit import serve_in_thread
from simulators.world import demo_today

CLIENT, SECRET = "hub", "s3cret"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[httpx.Client]:
    app = create_app(tmp_path / "housing.db", client_id=CLIENT, client_secret=SECRET, seed_demo=True)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        token = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                            auth=(CLIENT, SECRET)).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client
    app.state.store.close()


def _job(n: int, **overrides: object) -> dict:
    return {"client_reference": f"key-{n}", "source_reference": f"CRM-{n}", "priority": "URGENT",
            "trade": "PLUMBING", "location": {"property_reference": sample.uprn(1), "room": "kitchen"},
            "description": "Leak", "contact": {"name": "Alex Smith", "phone": "01632 960000"},
            **overrides}


def test_tokens_by_basic_or_form_and_refusals(sim: httpx.Client) -> None:
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET}
    answer = httpx.post(f"{sim.base_url}/oauth/token", data=form).json()
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600
    bad = httpx.post(f"{sim.base_url}/oauth/token", data=form | {"client_secret": "no"})
    assert (bad.status_code, bad.json()) == (401, {"error": "invalid_client"})
    grant = httpx.post(f"{sim.base_url}/oauth/token", data={"grant_type": "password"},
                       headers={"Authorization": "Basic " + base64.b64encode(b"hub:s3cret").decode()})
    assert (grant.status_code, grant.json()) == (400, {"error": "unsupported_grant_type"})
    anonymous = httpx.get(f"{sim.base_url}/api/v2/trades")
    assert anonymous.status_code == 401 and anonymous.json() == {"error": "invalid_token"}
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    sim.post("/admin/tokens/expire")
    assert sim.get("/api/v2/trades").status_code == 401


def test_create_duplicate_and_refusals_in_the_documented_shapes(sim: httpx.Client) -> None:
    created = sim.post("/api/v2/jobs", json=_job(1) | {"x_unknown": 1})
    assert created.status_code == 201
    job = created.json()
    assert job["id"].startswith("JOB-") and job["status"] == "LOGGED"
    assert job["target_date"] == (datetime.fromisoformat(job["created_at"]) + timedelta(days=7)).date().isoformat()
    assert "contact" not in job and "Alex" not in created.text
    duplicate = sim.post("/api/v2/jobs", json=_job(1))
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == {"code": "duplicate_client_reference", "target": "client_reference",
                                         "existing_job_id": job["id"],
                                         "message": "a job with this client reference exists"}
    for body, field, code in [
        (_job(2, location={"property_reference": sample.PRIVATE_UPRN}), "location.property_reference", "unknown_property"),
        (_job(3, trade="GARDENING"), "trade", "unknown_trade"),
        (_job(4, appointment={"slot_id": "NOPE"}), "appointment.slot_id", "slot_unavailable"),
        (_job(5, description=""), "description", "invalid"),
        (_job(6, client_reference="has space"), "client_reference", "invalid"),
    ]:
        refused = sim.post("/api/v2/jobs", json=body)
        assert refused.status_code == 422, body
        [error] = refused.json()["errors"]
        assert (error["field"], error["code"]) == (field, code)
        assert "GARDENING" not in refused.text and sample.PRIVATE_UPRN not in refused.text
    assert sim.get("/admin/stats").json()["effects"] == 1


def test_listing_pages_with_next_links(sim: httpx.Client) -> None:
    for n in range(5):
        sim.post("/api/v2/jobs", json=_job(n, source_reference="CRM-same" if n % 2 else None)).raise_for_status()
    seen, url = [], "/api/v2/jobs?page_size=2"
    while url:
        page = sim.get(url).json()
        seen += [j["client_reference"] for j in page["items"]]
        url = page["links"]["next"]
    assert seen == [f"key-{n}" for n in range(5)]
    same = sim.get("/api/v2/jobs", params={"source_reference": "CRM-same"}).json()["items"]
    assert [j["client_reference"] for j in same] == ["key-1", "key-3"]
    assert sim.get("/api/v2/jobs", params={"client_reference": "key-4"}).json()["items"][0]["id"]


def test_events_are_strictly_after_in_order_with_cursors(sim: httpx.Client) -> None:
    start = sim.get("/admin/clock").json()["now"]
    job = sim.post("/api/v2/jobs", json=_job(1)).json()
    sim.post(f"/admin/records/{job['id']}/status", json={"status": "IN_PROGRESS"}).raise_for_status()
    sim.post(f"/admin/records/{job['id']}/status", json={"status": "COMPLETED", "note": "Fixed"})
    events, cursor = [], None
    while True:
        page = sim.get("/api/v2/job-events", params={"changed_after": start, "limit": 1,
                                                      **({"cursor": cursor} if cursor else {})}).json()
        events += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    assert [(e["type"], e["status"], e["actor"]["kind"]) for e in events] == [
        ("created", "LOGGED", "api_client"), ("status_changed", "IN_PROGRESS", "staff"),
        ("status_changed", "COMPLETED", "staff")]
    assert events[2]["previous_status"] == "IN_PROGRESS" and events[2]["note"] == "Fixed"
    assert events[0]["client_reference"] == "key-1"
    stamps = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3 and stamps[0].tzinfo is not None
    after_first = sim.get("/api/v2/job-events", params={"changed_after": events[0]["occurred_at"]}).json()
    assert [e["id"] for e in after_first["items"]] == [events[1]["id"], events[2]["id"]], "strict"
    naive = sim.get("/api/v2/job-events", params={"changed_after": "2026-01-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "changed_after"


def test_cancel_is_idempotent_frees_the_slot_and_refuses_completed_jobs(sim: httpx.Client) -> None:
    day = sample.working_days(demo_today())[0]
    slot = sample.slot_id("PLUMBING", day, "AM")
    job = sim.post("/api/v2/jobs", json=_job(1, appointment={"slot_id": slot})).json()
    assert job["status"] == "APPOINTED" and job["appointment"]["date"] == day.isoformat()
    for _ in range(2):
        cancelled = sim.post(f"/api/v2/jobs/{job['id']}/cancel", json={"reason": "No longer needed"})
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert sim.get("/admin/stats").json()["effects"] == 2, "one create, one cancellation"
    other = sim.post("/api/v2/jobs", json=_job(2)).json()
    sim.post(f"/admin/records/{other['id']}/status", json={"status": "COMPLETED"})
    closed = sim.post(f"/api/v2/jobs/{other['id']}/cancel")
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "job_closed"
    assert sim.post("/api/v2/jobs/JOB-999999/cancel").status_code == 404
    assert sim.get("/api/v2/jobs/JOB-999999").json() == {"error": {"code": "not_found",
                                                                    "message": "job not found"}}


def test_slots_page_and_show_full_ones_as_unavailable(sim: httpx.Client) -> None:
    days = sample.working_days(demo_today())
    query = {"property_reference": sample.uprn(1), "trade": "ELECTRICAL", "page_size": 7}
    first = sim.get("/api/v2/appointment-slots", params=query).json()
    items, page = list(first["items"]), 1
    while page < first["total_pages"]:
        page += 1
        items += sim.get("/api/v2/appointment-slots", params=query | {"page": page}).json()["items"]
    by_id = {s["slot_id"]: s for s in items}
    assert len(by_id) == len(items) == 2 * len(days)
    assert by_id[sample.slot_id("ELECTRICAL", days[3], "AM")]["available"] is False
    assert by_id[sample.slot_id("ELECTRICAL", days[3], "PM")]["available"] is True
    refused = sim.get("/api/v2/appointment-slots", params=query | {"property_reference": sample.PRIVATE_UPRN})
    assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "unknown_property"


def test_staff_change_via_the_kit_admin(sim: httpx.Client) -> None:
    job = sim.post("/api/v2/jobs", json=_job(1)).json()
    assert sim.post(f"/admin/records/{job['id']}/status", json={"status": "NOT_A_STATUS"}).status_code == 422
    assert sim.post("/admin/records/JOB-424242/status", json={"status": "COMPLETED"}).status_code == 404
    detail = sim.get(f"/admin/records/{job['id']}").json()
    assert detail["contact"] == {"name": "Alex Smith", "phone": "01632 960000"}
    assert [e["type"] for e in detail["events"]] == ["created"]


def test_state_survives_a_restart(tmp_path: Path) -> None:
    for round_ in range(2):
        app = create_app(tmp_path / "h.db", client_id=CLIENT, client_secret=SECRET, seed_demo=True)
        with serve_in_thread(app) as url:
            token = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"},
                               auth=(CLIENT, SECRET)).json()["access_token"]
            answer = httpx.post(f"{url}/api/v2/jobs", json=_job(1),
                                headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == (201 if round_ == 0 else 409)
            assert httpx.get(f"{url}/admin/stats").json()["effects"] == 1
        app.state.store.close()


def test_status_changed_at_moves_only_when_the_status_changes(sim: httpx.Client) -> None:
    job = sim.post("/api/v2/jobs", json=_job(1)).json()
    assert job["status_changed_at"] == job["created_at"] == job["updated_at"]

    def listed() -> dict:
        [item] = sim.get("/api/v2/jobs", params={"client_reference": "key-1"}).json()["items"]
        return item

    drift = f"/admin/drift/records/{job['id']}"
    sim.post(drift, json={"fields": {"room": "loft", "priority": "EMERGENCY"}}).raise_for_status()
    fields_changed = listed()
    assert fields_changed["location"]["room"] == "loft"
    assert fields_changed["updated_at"] > job["updated_at"], "a field change is an update"
    assert fields_changed["status_changed_at"] == job["status_changed_at"], "but not of status"
    sim.post(f"/admin/records/{job['id']}/status", json={"status": "LOGGED"}).raise_for_status()
    assert listed()["status_changed_at"] == job["status_changed_at"], "same status: no change"
    sim.post(drift, json={"status": "ON_HOLD"}).raise_for_status()
    on_hold = listed()
    assert on_hold["status"] == "ON_HOLD"
    assert on_hold["status_changed_at"] == on_hold["updated_at"] > fields_changed["updated_at"]
    sim.post(f"/admin/records/{job['id']}/status", json={"status": "IN_PROGRESS"})
    in_progress = listed()
    assert in_progress["status_changed_at"] == in_progress["updated_at"] > on_hold["updated_at"]
    cancelled = sim.post(f"/api/v2/jobs/{job['id']}/cancel").json()
    assert cancelled["status_changed_at"] == cancelled["updated_at"] > in_progress["updated_at"]
    again = sim.post(f"/api/v2/jobs/{job['id']}/cancel").json()
    assert again["status_changed_at"] == cancelled["status_changed_at"], "already cancelled"
    added = sim.post("/admin/drift/records", json={"key": "key-by-hand", "like": job["id"]}).json()
    assert added["status_changed_at"] == added["created_at"]


def test_a_file_from_before_status_changed_at_opens_and_lists_it_null(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "old.db"
    app = create_app(db, client_id=CLIENT, client_secret=SECRET, seed_demo=True)
    with serve_in_thread(app) as url:
        token = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(CLIENT, SECRET)).json()["access_token"]
        httpx.post(f"{url}/api/v2/jobs", json=_job(1),
                   headers={"Authorization": f"Bearer {token}"}).raise_for_status()
    app.state.store.close()
    with sqlite3.connect(db) as old:   # the column as an older simulator's file lacks it
        old.execute("ALTER TABLE jobs DROP COLUMN status_changed_at")
    app = create_app(db, client_id=CLIENT, client_secret=SECRET)
    with serve_in_thread(app) as url:
        auth = {"Authorization": "Bearer " + httpx.post(
            f"{url}/oauth/token", data={"grant_type": "client_credentials"},
            auth=(CLIENT, SECRET)).json()["access_token"]}
        [old_job] = httpx.get(f"{url}/api/v2/jobs", headers=auth).json()["items"]
        assert old_job["status_changed_at"] is None
        new_job = httpx.post(f"{url}/api/v2/jobs", json=_job(2), headers=auth).json()
        assert new_job["status_changed_at"] == new_job["created_at"]
    app.state.store.close()
