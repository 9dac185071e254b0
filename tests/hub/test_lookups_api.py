"""The CRM reads back-office data live through the hub: bulky-waste slots from the waste system."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.waste.bartec import BartecConfig, BartecConnector
from hub.lookups import Lookups
from hub.web.app import create_app
from simulators.serving import serve_in_thread
from simulators.waste.app import create_app as waste_app
from simulators.waste.sample import uprn

TOKEN = "crm-api-token"


@pytest.fixture
def hub(tmp_path: Path, sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list]]:
    monkeypatch.setenv("HUB_API_TOKEN", TOKEN)
    built: list[str] = []

    with serve_in_thread(waste_app(tmp_path / "waste.db", username="hub", password="pw",
                                   seed_demo=True)) as waste:
        def factory(system: str) -> BartecConnector:
            built.append(system)
            return BartecConnector(BartecConfig(endpoint=f"{waste}/soap", username="hub", password="pw"))

        app = create_app(url=sqlite_ledger, secret=lambda: b"s", signals=None, lookups=Lookups(factory))
        with serve_in_thread(app) as base:
            yield base, built


def _get(base: str, path: str, token: str | None = TOKEN, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{base}{path}", params=params, headers=headers, timeout=20)


def test_free_bulky_slots_are_read_live_with_one_connector_per_process(hub) -> None:
    base, built = hub
    first = _get(base, "/api/lookups/waste_bartec/waste.collection_slots", uprn=uprn(1), service="bulky")
    assert first.status_code == 200, first.text
    slots = first.json()["result"]
    assert slots and all(s["available"] for s in slots) and all("date" in s for s in slots)
    again = _get(base, "/api/lookups/waste_bartec/waste.premises", uprn=uprn(1))
    assert again.status_code == 200 and again.json()["result"][0]["uprn"] == uprn(1)
    assert built == ["waste_bartec"], "the connector (and its SOAP client) is reused"


def test_the_lookup_api_needs_the_crm_token(hub) -> None:
    base, _ = hub
    path = "/api/lookups/waste_bartec/waste.collection_slots"
    assert _get(base, path, token=None, uprn=uprn(1)).status_code == 401
    assert _get(base, path, token="wrong", uprn=uprn(1)).status_code == 401


def test_unknown_things_get_clear_answers(hub) -> None:
    base, _ = hub
    assert _get(base, "/api/lookups/parking_acme/anything").status_code == 404
    assert _get(base, "/api/lookups/waste_bartec/waste.no_such_lookup").status_code == 404
    missing = _get(base, "/api/lookups/waste_bartec/waste.collection_slots", service="bulky")
    assert missing.status_code == 422 and missing.json()["detail"]["field"] == "uprn"


def test_work_items_are_listed_and_closed_only_with_the_token(hub, sqlite_ledger: str) -> None:
    from hub import workitems
    from hub.ledger import db

    base, _ = hub
    with db.session_scope(sqlite_ledger) as session:
        item = workitems.open_work_item(session, dedupe_key="t:1", kind="backoffice_rejected",
                                        reason="Revenues refused it", system="revenues_northgate")
        item_id = item.id
    assert _get(base, "/api/work-items", token=None).status_code == 401
    listed = _get(base, "/api/work-items", team="revenues")
    assert [i["id"] for i in listed.json()] == [item_id]
    close = {"resolution": "account corrected and resubmitted", "closed_by": "rev.officer"}
    denied = httpx.post(f"{base}/api/work-items/{item_id}/close", json=close, timeout=10)
    assert denied.status_code == 401
    done = httpx.post(f"{base}/api/work-items/{item_id}/close", json=close, timeout=10,
                      headers={"Authorization": f"Bearer {TOKEN}"})
    assert done.status_code == 200 and done.json()["state"] == "done"
    assert _get(base, "/api/work-items", team="revenues").json() == []


def test_closing_a_work_item_checks_its_fields_at_the_edge(hub, sqlite_ledger: str) -> None:
    from hub import workitems
    from hub.ledger import db

    base, _ = hub
    with db.session_scope(sqlite_ledger) as session:
        item_id = workitems.open_work_item(session, dedupe_key="t:2", kind="invalid_case",
                                           reason="bad", system="waste_bartec").id
    for body, field in [({"resolution": "done", "closed_by": "x" * 81}, "closed_by"),
                        ({"resolution": "done\x00", "closed_by": "officer"}, "resolution"),
                        ({"resolution": "", "closed_by": "officer"}, "resolution")]:
        answer = httpx.post(f"{base}/api/work-items/{item_id}/close", json=body, timeout=10,
                            headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 422, body
        assert answer.json()["detail"][0]["loc"][-1] == field
