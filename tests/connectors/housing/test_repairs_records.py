"""RepairsConnector.records() against the housing simulator: drift made through the kit's admin
endpoints (behind the hub's back: no job event) is what the job list then shows."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx

from connectors.base import OutcomeStatus
from tests.connectors.housing.test_contract import RepairsHarness, housing_url  # noqa: F401


def _mine(harness: RepairsHarness, keys: set[str], **kwargs: object) -> dict[str, list]:
    found: dict[str, list] = {}
    for record in harness.connector().records(**kwargs):
        if record.key in keys:
            found.setdefault(record.key, []).append(record)
    return found


def test_drift_shows_in_records_and_not_in_updates(housing_url: str) -> None:  # noqa: F811
    harness = RepairsHarness(housing_url)
    commands = [harness.command(1), harness.command(2)]
    outcomes = harness.connector().submit(commands)
    assert all(o.status is OutcomeStatus.CONFIRMED for o in outcomes), outcomes
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    drift = f"{housing_url}/admin/drift/records"
    changed = httpx.post(f"{drift}/{outcomes[0].reference}", timeout=5,
                         json={"status": "ON_HOLD", "fields": {"room": "loft"}})
    assert changed.status_code == 200, changed.text
    assert httpx.delete(f"{drift}/{outcomes[1].reference}", timeout=5).status_code == 200
    stranger = harness.key(3)
    added = httpx.post(drift, timeout=5, json={"key": stranger, "like": outcomes[0].reference})
    assert added.status_code == 200, added.text
    found = _mine(harness, {commands[0].key, commands[1].key, stranger}, page_size=2)
    [record] = found[commands[0].key]
    assert (record.status, record.fields["room"]) == ("ON_HOLD", "loft")
    assert commands[1].key not in found
    assert [r.reference for r in found[stranger]] == [added.json()["reference"]]
    assert [u for u in harness.connector().fetch_updates(since)
            if u.reference == outcomes[0].reference] == [], "no event: status sync cannot see it"
    assert stranger in _mine(harness, {stranger}, since=since), "updated_since includes the add"
    assert stranger in _mine(harness, {stranger}, page_size=500), "capped at the API's 100"
    assert httpx.post(f"{drift}/{outcomes[0].reference}", timeout=5,
                      json={"fields": {"contact": "x"}}).status_code == 422
    assert httpx.post(f"{drift}/{outcomes[0].reference}", timeout=5, json={}).status_code == 422
    assert httpx.delete(f"{drift}/JOB-999999", timeout=5).status_code == 404
