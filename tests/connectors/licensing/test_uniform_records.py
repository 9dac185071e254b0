"""UniformConnector.records() against the licensing database on SQLite, PostgreSQL and MariaDB:
drift made straight in the tables (a data fix, LAST_UPDATED untouched) is what records then show,
and status sync cannot see it."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from connectors.base import OutcomeStatus
from tests.connectors.licensing.conftest import UniformHarness


def test_drift_shows_in_records_not_in_updates(harness: UniformHarness) -> None:
    commands = [harness.command(1), harness.command(2), harness.command(3)]
    outcomes = harness.connector().submit(commands)
    assert all(o.status is OutcomeStatus.CONFIRMED for o in outcomes), outcomes
    time.sleep(0.01)
    since = datetime.now(timezone.utc)   # after the creates: a later change would show
    office = harness.office
    office.drift_change(outcomes[0].reference, status="REFUSED",
                        fields={"APPLICANT_NAME": "Someone Else"})
    office.drift_delete(outcomes[1].reference)
    stranger = f"lic-{harness.token}-stranger"
    added = office.drift_add(stranger, like=outcomes[2].reference)
    with pytest.raises(LookupError):
        office.drift_delete("26/99999/NONE")
    with pytest.raises(ValueError):
        office.drift_change(outcomes[0].reference, fields={"FEE": 1})
    mine = {c.key for c in commands} | {stranger}
    listed = [r for r in harness.connector().records(page_size=2) if r.key in mine]
    by_key = {r.key: r for r in listed}
    assert set(by_key) == {commands[0].key, commands[2].key, stranger}
    assert [r.key for r in listed] == sorted(by_key), "key order across pages"
    changed = by_key[commands[0].key]
    assert (changed.status, changed.fields["applicant.name"], changed.crm_status) == \
        ("REFUSED", "Someone Else", "closed")
    assert by_key[stranger].reference == added
    assert [u for u in harness.connector().fetch_updates(since)
            if u.reference == outcomes[0].reference] == [], "LAST_UPDATED untouched: unseen"
