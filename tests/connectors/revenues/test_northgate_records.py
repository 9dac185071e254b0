"""NorthgateConnector.records() against the Revenues simulator: RequestList read page by page,
one record per command, and drift made in the simulator shows in what it lists."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from connectors.base import OutcomeStatus
from connectors.errors import PermanentError
from tests.connectors.revenues.harness import RevenuesSim, command, direct_debit, move, new_key


def _drift(sim: RevenuesSim, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, f"{sim.url}/admin/drift/records{path}", timeout=5, **kwargs)


def _mine(sim: RevenuesSim, keys: set[str], **kwargs: object) -> dict[str, list]:
    found: dict[str, list] = {}
    for record in sim.connector().records(**kwargs):
        if record.key in keys:
            found.setdefault(record.key, []).append(record)
    return found


def test_a_change_of_address_is_one_record_with_the_move_out_values(revenues_sim: RevenuesSim) -> None:
    cmd = move("CT00000031", new_property_ref="P000152")
    [outcome] = revenues_sim.connector().submit([cmd])
    assert outcome.status is OutcomeStatus.CONFIRMED
    [record] = _mine(revenues_sim, {cmd.key}, page_size=1)[cmd.key]
    assert record.reference == outcome.reference and record.operation == "ctax.change_of_address"
    assert record.fields == {"account_ref": "CT00000031", "moved_on": "2026-06-01"}
    assert record.crm_status in ("open", "closed")


def test_discount_values_and_a_since_window(revenues_sim: RevenuesSim) -> None:
    before = datetime.now(timezone.utc) - timedelta(seconds=2)
    cmd = command("ctax.single_person_discount",
                  {"account_ref": "CT00000032", "effective_from": "2026-04-01", "adults_resident": 1})
    [outcome] = revenues_sim.connector().submit([cmd])
    assert outcome.status is OutcomeStatus.CONFIRMED, outcome
    [record] = _mine(revenues_sim, {cmd.key}, since=before)[cmd.key]
    assert record.fields == {"account_ref": "CT00000032", "effective_from": "2026-04-01",
                             "adults_resident": 1}
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    assert _mine(revenues_sim, {cmd.key}, since=later) == {}, "changed before the window"


def test_drift_made_in_the_simulator_is_what_records_then_show(revenues_sim: RevenuesSim) -> None:
    first, _ = direct_debit("CT00000033", 33)
    second, _ = direct_debit("CT00000034", 34)
    outcomes = revenues_sim.connector().submit([first, second])
    assert all(o.status is OutcomeStatus.CONFIRMED for o in outcomes)
    changes_before = revenues_sim.stats()["staff_changes"]
    changed = _drift(revenues_sim, "POST", f"/{outcomes[0].reference}",
                     json={"status": "CANCELLED", "fields": {"PaymentDay": 22}})
    assert changed.status_code == 200
    assert _drift(revenues_sim, "DELETE", f"/{outcomes[1].reference}").status_code == 200
    stranger = new_key("unknown")
    added = _drift(revenues_sim, "POST", "", json={"key": stranger, "like": outcomes[0].reference})
    assert added.status_code == 200
    found = _mine(revenues_sim, {first.key, second.key, stranger}, page_size=2)
    [record] = found[first.key]
    assert (record.status, record.fields["payment_day"]) == ("CANCELLED", 22)
    assert second.key not in found, "the deleted request is gone"
    [extra] = found[stranger]
    assert extra.reference == added.json()["reference"] != record.reference
    assert revenues_sim.stats()["staff_changes"] == changes_before, \
        "drift is behind the hub's back: no ChangesGet entry"
    assert _drift(revenues_sim, "DELETE", "/RQ99999999").status_code == 404
    assert _drift(revenues_sim, "POST", f"/{outcomes[0].reference}",
                  json={"fields": {"Nope": 1}}).status_code == 422
    assert _drift(revenues_sim, "POST", "", json={"key": stranger,
                                                  "like": outcomes[0].reference}).status_code == 422


def test_a_page_is_at_most_what_the_service_allows(revenues_sim: RevenuesSim) -> None:
    assert list(revenues_sim.connector().records(page_size=10**6)), "capped at MaxResults 1000"
    with pytest.raises(PermanentError) as info:
        list(revenues_sim.connector().records(page_size=0))
    assert info.value.code == "config"
