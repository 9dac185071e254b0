"""The housing repairs connector's own promises, against its simulator over a real socket: unknown
outcomes, duplicates, refusals naming the field, cancellation, token renewal, Retry-After, slots."""
from __future__ import annotations

import ast
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from connectors.base import OutcomeStatus
from connectors.errors import PermanentError, Rejected
from simulators.housing import sample
from simulators.world import demo_today
from tests.connectors.housing.test_contract import RepairsHarness, housing_url  # noqa: F401

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def harness(housing_url: str) -> RepairsHarness:  # noqa: F811
    return RepairsHarness(housing_url)


def _job(harness: RepairsHarness, reference: str) -> dict:
    return harness.admin("GET", f"/admin/records/{reference}")


def test_create_carries_the_key_the_case_and_every_field(harness: RepairsHarness) -> None:
    command = harness.command(1, location_detail="under the sink")
    [outcome] = harness.connector().submit([command])
    assert outcome.status is OutcomeStatus.CONFIRMED
    job = _job(harness, outcome.reference)
    assert (job["client_reference"], job["source_reference"]) == (command.key, command.case_ref)
    assert job["location"] == {"property_reference": command.payload["uprn"], "room": "kitchen",
                               "detail": "under the sink"}
    assert (job["priority"], job["trade"], job["status"]) == ("URGENT", "PLUMBING", "LOGGED")
    assert job["contact"] == {"name": harness.personal_values[0], "phone": harness.personal_values[1]}
    assert outcome.details == {"job": outcome.reference, "target_date": job["target_date"]}


def test_a_timeout_after_sending_is_looked_up_not_created_twice(harness: RepairsHarness) -> None:
    connector = harness.connector(timeout_seconds=0.5)
    connector.check()   # holds a token: the fault hits the create itself
    before = harness.effects()
    harness.fail_next(1, mode="timeout", delay_seconds=2)
    [outcome] = connector.submit([harness.command(2)])
    assert outcome.status is OutcomeStatus.CONFIRMED, outcome
    assert harness.effects() - before == 1, "applied once, confirmed by the look-up"
    assert len(_job(harness, outcome.reference)["events"]) == 1


def test_a_duplicate_refusal_confirms_the_job_already_held(harness: RepairsHarness) -> None:
    command = harness.command(3)
    [first] = harness.connector().submit([command])
    before = harness.effects()
    [again] = harness.connector().submit([command])   # a new process: it knows nothing
    assert again.status is OutcomeStatus.CONFIRMED and again.reference == first.reference
    assert harness.effects() == before


@pytest.mark.parametrize("payload, code, field", [
    ({"uprn": sample.PRIVATE_UPRN}, "unknown_property", "uprn"),
    ({"appointment_slot_id": "PLUM-20000101-AM"}, "slot_unavailable", "appointment_slot_id"),
])
def test_refusals_name_the_payload_field(harness: RepairsHarness, payload: dict, code: str,
                                         field: str) -> None:
    [outcome] = harness.connector().submit([harness.command(4, **payload)])
    assert (outcome.status, outcome.code, outcome.field) == (OutcomeStatus.REJECTED, code, field)
    assert outcome.error_class == "Rejected" and field in (outcome.message or "")


def test_a_full_slot_is_refused_and_a_free_one_booked(harness: RepairsHarness) -> None:
    days = sample.working_days(demo_today())
    full = sample.slot_id("ELECTRICAL", days[3], "AM")
    free = sample.slot_id("ELECTRICAL", days[3], "PM")
    connector = harness.connector()
    [refused, booked] = connector.submit([
        harness.command(5, trade="ELECTRICAL", appointment_slot_id=full),
        harness.command(6, trade="ELECTRICAL", appointment_slot_id=free)])
    assert refused.code == "slot_unavailable"
    assert booked.status is OutcomeStatus.CONFIRMED
    assert booked.details["appointment_date"] == days[3].isoformat()
    assert _job(harness, booked.reference)["status"] == "APPOINTED"


def test_cancellation_is_idempotent_and_not_an_update(harness: RepairsHarness) -> None:
    connector = harness.connector()
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    create = harness.command(7)
    [created] = connector.submit([create])
    cancel = replace(create, key=f"{create.key}.cancel", operation="housing.cancel_repair",
                     payload={"reason": "Tenant fixed it"})
    before = harness.effects()
    [first] = connector.submit([cancel])
    [again] = connector.submit([replace(cancel, maybe_sent=True)])
    assert first.status is again.status is OutcomeStatus.CONFIRMED
    assert first.reference == again.reference == created.reference
    assert harness.effects() - before == 1
    assert _job(harness, created.reference)["status"] == "CANCELLED"
    mine = [u for u in connector.fetch_updates(since) if u.reference == created.reference]
    assert mine == [], "the hub's own cancellation is not a back-office change"


def test_cancelling_what_cannot_be_cancelled_is_refused(harness: RepairsHarness) -> None:
    connector = harness.connector()
    create = harness.command(8)
    [created] = connector.submit([create])
    harness.change_in_backoffice(created, status="COMPLETED")
    cancel = replace(create, key=f"{create.key}.cancel", operation="housing.cancel_repair",
                     payload={})
    nothing = replace(cancel, key="no-job.cancel", case_ref=f"CRM-{harness.prefix}-none")
    closed, missing = connector.submit([cancel, nothing])
    assert (closed.status, closed.code) == (OutcomeStatus.REJECTED, "job_closed")
    assert (missing.status, missing.code) == (OutcomeStatus.REJECTED, "no_job")


def test_staff_changes_come_back_with_the_crm_status(harness: RepairsHarness) -> None:
    connector = harness.connector()
    since = harness.now() - timedelta(microseconds=1)
    [created] = connector.submit([harness.command(9)])
    harness.change_in_backoffice(created, status="IN_PROGRESS", note="Operative on site")
    harness.change_in_backoffice(created, status="CANCELLED", note="Duplicate of another job")
    updates = [u for u in connector.fetch_updates(since) if u.reference == created.reference]
    assert [(u.status, u.crm_status, u.note) for u in updates] == [
        ("IN_PROGRESS", "open", "Operative on site"),
        ("CANCELLED", "closed", "Duplicate of another job")]
    assert updates[0].key == created.key and updates[0].changed_at < updates[1].changed_at
    assert updates[0].changed_at.tzinfo is not None and updates[0].changed_at.microsecond
    assert connector.fetch_updates(updates[0].changed_at)[-1].update_id == updates[1].update_id


def test_an_expired_token_is_renewed_once(harness: RepairsHarness) -> None:
    connector = harness.connector()
    connector.check()
    harness.admin("POST", "/admin/tokens/expire")
    [outcome] = connector.submit([harness.command(10)])
    assert outcome.status is OutcomeStatus.CONFIRMED


def test_rate_limit_is_waited_out_as_asked(harness: RepairsHarness) -> None:
    connector = harness.connector(retry_max_wait_seconds=3)
    connector.check()
    harness.fail_next(1, mode="http_429", retry_after=1)
    started = time.monotonic()
    [outcome] = connector.submit([harness.command(11)])
    assert outcome.status is OutcomeStatus.CONFIRMED
    assert time.monotonic() - started >= 1.0


def test_slot_lookup_offers_only_free_slots(harness: RepairsHarness) -> None:
    connector = harness.connector()
    days = sample.working_days(demo_today())
    slots = connector.lookup("housing.appointment_slots", {
        "uprn": sample.uprn(1), "trade": "electrical", "from": days[0].isoformat()})
    ids = {s["slot_id"] for s in slots}
    assert sample.slot_id("ELECTRICAL", days[1], "AM") in ids
    assert sample.slot_id("ELECTRICAL", days[3], "AM") not in ids, "fully booked"
    assert set(slots[0]) == {"slot_id", "date", "start", "end"}


@pytest.mark.parametrize("params, field", [
    ({"uprn": sample.PRIVATE_UPRN, "trade": "PLUMBING"}, "uprn"),
    ({"uprn": sample.uprn(1)}, "trade"),
    ({"uprn": sample.uprn(1), "trade": "PLUMBING", "from": "next week"}, "from"),
])
def test_slot_lookup_refusals_name_the_field(harness: RepairsHarness, params: dict,
                                             field: str) -> None:
    with pytest.raises(Rejected) as err:
        harness.connector().lookup("housing.appointment_slots", params)
    assert err.value.field == field


def test_an_answer_over_the_limit_fails_classified(harness: RepairsHarness) -> None:
    connector = harness.connector(max_answer_bytes=1024)
    with pytest.raises(PermanentError) as err:
        connector.lookup("housing.appointment_slots", {"uprn": sample.uprn(1), "trade": "PLUMBING"})
    assert err.value.code == "answer-too-large"


def test_settings_come_from_the_connection_with_an_allowlist() -> None:
    from connectors.housing.repairs import RepairsConfig

    config = RepairsConfig.from_connection(
        host="https://repairs.example", login="hub", password="pw",
        extra={"scope": "jobs", "slot_window_days": 14, "proxies": "http://evil"})
    assert (config.base_url, config.client_id, config.scope) == ("https://repairs.example", "hub", "jobs")
    assert "pw" not in repr(config)
    with pytest.raises(PermanentError):
        RepairsConfig.from_connection(host="repairs.example", login="hub", password="pw")


@pytest.mark.parametrize("package, forbidden", [
    ("connectors/housing", ("hub", "crm_adapter", "dags", "airflow", "simulators")),
    ("connectors/transports/rest.py", ("hub", "crm_adapter", "dags", "airflow", "simulators")),
    ("simulators/housing", ("connectors", "hub", "crm_adapter", "dags", "mappings")),
    ("simulators/kit.py", ("connectors", "hub", "crm_adapter", "dags", "mappings")),
])
def test_import_rules(package: str, forbidden: tuple[str, ...]) -> None:
    path = REPO / package
    for file in ([path] if path.is_file() else sorted(path.glob("*.py"))):
        for node in ast.walk(ast.parse(file.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad = [n for n in names if n.split(".")[0] in forbidden]
            assert not bad, f"{file.relative_to(REPO)} imports {bad}"


def test_snapshot_gives_the_back_office_view_by_key(harness: RepairsHarness) -> None:
    connector = harness.connector()
    [created] = connector.submit([harness.command(12)])
    harness.change_in_backoffice(created, status="COMPLETED")
    view = connector.snapshot([created.key, "never-sent"])
    assert view == {created.key: {"reference": created.reference, "status": "COMPLETED",
                                  "crm_status": "closed"}}
