"""Waste connector behaviour beyond the shared contract, against the simulator on a real socket."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from connectors.base import Command, OutcomeStatus
from connectors.errors import PermanentError, Rejected
from connectors.waste.bartec import BartecConfig, BartecConnector
from simulators.serving import serve_in_thread
from simulators.waste import sample
from simulators.waste.app import create_app
from tests.connectors.waste.conftest import (PASSWORD, USERNAME, WasteHarness, full_slot,
                                             open_slots, today)


def _one(connector: BartecConnector, command: Command):  # noqa: ANN202
    [outcome] = connector.submit([command])
    return outcome


def test_config_from_connection_reads_host_login_password() -> None:
    config = BartecConfig.from_connection(host="http://bartec.example/soap", login="api",
                                          password="pw", extra={"slot_window_days": 14,
                                                                "verify": False})
    assert (config.endpoint, config.username, config.slot_window_days) == (
        "http://bartec.example/soap", "api", 14)
    assert "pw" not in repr(config)
    with pytest.raises(PermanentError):
        BartecConfig.from_connection(host="bartec.example", login="api", password="pw")


def test_expired_token_is_renewed_once_and_the_call_retried(harness: WasteHarness) -> None:
    connector = harness.connector()
    connector.check()
    first_token = connector._token
    harness.sim.admin("POST", "/admin/tokens/expire")
    premises = connector.lookup("waste.premises", {"uprn": sample.uprn(4)})
    assert [p["uprn"] for p in premises] == [sample.uprn(4)]
    assert connector._token and connector._token != first_token


def test_a_token_refused_even_when_fresh_is_a_permanent_error(tmp_path: Path) -> None:
    app = create_app(tmp_path / "w.db", username=USERNAME, password=PASSWORD, seed_demo=True,
                     token_ttl_seconds=0)
    with serve_in_thread(app) as url:
        connector = BartecConnector(BartecConfig(endpoint=f"{url}/soap", username=USERNAME,
                                                 password=PASSWORD, timeout_seconds=5))
        with pytest.raises(PermanentError) as info:
            connector.lookup("waste.premises", {"uprn": sample.uprn(1)})
    assert info.value.code == "invalid-token"


def test_create_sends_key_items_slot_and_note(harness: WasteHarness) -> None:
    command = harness.bulky(40)
    outcome = _one(harness.connector(), command)
    assert outcome.status is OutcomeStatus.CONFIRMED and not outcome.warnings
    detail = harness.sim.admin("GET", f"/admin/requests/{outcome.reference}")
    assert detail["external_reference"] == command.key
    assert detail["slot_date"] == str(command.payload["slot_date"])
    assert ["ITEM", "Mattress x2"] in detail["extended"]
    assert [n["added_by"] for n in detail["notes"]] == [USERNAME]
    assert "CRM-000040" in detail["notes"][0]["note"]


def test_note_failure_does_not_fail_the_create(harness: WasteHarness) -> None:
    connector = harness.connector()
    connector.check()
    before = harness.effects()
    harness.sim.admin("POST", "/admin/notes/fail", json={"count": 10})
    try:
        outcome = _one(connector, harness.missed_bin(41))
    finally:
        harness.sim.admin("POST", "/admin/notes/fail", json={"count": 0})
    assert outcome.status is OutcomeStatus.CONFIRMED and outcome.reference
    assert outcome.warnings and "note" in outcome.warnings[0]
    assert harness.effects() - before == 1


def test_lost_answer_is_looked_up_not_created_twice(harness: WasteHarness) -> None:
    connector = harness.connector(timeout_seconds=1)
    connector.check()
    before = harness.effects()
    harness.sim.admin("POST", "/admin/faults",
                      json={"count": 1, "mode": "timeout", "delay_seconds": 1.5})
    outcome = _one(connector, harness.missed_bin(42))
    assert outcome.status is OutcomeStatus.CONFIRMED and outcome.reference
    assert harness.effects() - before == 1


@pytest.mark.parametrize(("make", "code", "field"), [
    (lambda h: h.bulky(43, slot_date=full_slot()), "slot-unavailable", "slot_date"),
    (lambda h: h.bulky(44, uprn=sample.UNKNOWN_UPRN), "unknown-premises", "uprn"),
    (lambda h: h.missed_bin(45, collection_date=today() + timedelta(days=1)),
     "collection-not-due", "collection_date"),
    (lambda h: h.missed_bin(46, bin_type="garden", uprn=sample.uprn(1)),
     "no-scheduled-collection", "collection_date"),
    (lambda h: h.bulky(47, items=[]), "invalid-field", "items"),
])
def test_refusals_are_rejected_with_code_and_field(harness: WasteHarness, make, code, field) -> None:  # noqa: ANN001
    before = harness.effects()
    outcome = _one(harness.connector(), make(harness))
    assert (outcome.status, outcome.code, outcome.field) == (OutcomeStatus.REJECTED, code, field)
    assert outcome.message and harness.effects() == before


def test_slots_lookup_lists_only_available_dates(harness: WasteHarness) -> None:
    connector = harness.connector()
    slots = connector.lookup("waste.collection_slots", {"uprn": sample.uprn(2), "service": "bulky"})
    dates = [s["date"] for s in slots]
    assert dates and all(s["available"] > 0 for s in slots)
    assert full_slot().isoformat() not in dates
    assert set(dates) <= {d.isoformat() for d in open_slots()}
    with pytest.raises(Rejected) as info:
        connector.lookup("waste.collection_slots", {"uprn": sample.UNKNOWN_UPRN})
    assert info.value.field == "uprn"


def test_premises_lookup_by_postcode(harness: WasteHarness) -> None:
    wanted = sample.premises()[6]
    found = harness.connector().lookup("waste.premises", {"postcode": wanted["postcode"].lower()})
    assert wanted["uprn"] in {p["uprn"] for p in found}
    assert all(p["address"]["postcode"] == wanted["postcode"] for p in found)


def test_fetch_updates_skips_the_hubs_own_changes_and_maps_staff_ones(harness: WasteHarness) -> None:
    connector = harness.connector()
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    command = harness.bulky(48)
    created = _one(connector, command)
    assert [u for u in connector.fetch_updates(since) if u.reference == created.reference] == []
    harness.change_in_backoffice(created)
    [update] = [u for u in connector.fetch_updates(since) if u.reference == created.reference]
    assert (update.system, update.key, update.status, update.crm_status) == (
        "waste_bartec", command.key, "COMPLETED", "closed")
    assert update.note == "Collected by crew 2"
    assert update.changed_at.tzinfo is not None and update.changed_at >= since
    assert connector.snapshot([command.key])[command.key]["crm_status"] == "closed"


def test_sample_cases_go_through_except_the_two_refused(harness: WasteHarness,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    commands = []
    for i, case in enumerate(sample.sample_cases(today())):
        data = case["data"]
        if case["case_type"] == "waste_bulky_collection":
            payload = {"uprn": data["uprn"], "slot_date": data["slot_date"], "items": data["items"],
                       "contact_name": data["contact"]["name"],
                       "contact_phone": data["contact"]["phone"],
                       "note": data["location_notes"] or None}
            operation = "waste.bulky_collection"
        else:
            payload = {"uprn": data["uprn"], "bin_type": data["bin_type"],
                       "collection_date": data["collection_date"], "note": data["notes"] or None}
            operation = "waste.missed_bin"
        commands.append(Command(key=f"{harness.prefix}-s{i}", system="waste_bartec",
                                operation=operation, payload=payload, case_ref=f"CRM-S{i}"))
    outcomes = harness.connector().submit(commands)
    rejected = [o.code for o in outcomes if o.status is OutcomeStatus.REJECTED]
    assert sorted(rejected) == ["collection-not-due", "slot-unavailable"]
    assert sum(o.status is OutcomeStatus.CONFIRMED for o in outcomes) == 10
    names = [c["data"]["contact"]["name"] for c in sample.sample_cases(today())
             if "contact" in c["data"]]
    assert not [n for n in names if n in caplog.text]


def test_slots_lookup_with_a_bad_from_date_names_the_field(harness: WasteHarness) -> None:
    with pytest.raises(Rejected) as info:
        harness.connector().lookup("waste.collection_slots",
                                   {"uprn": sample.uprn(2), "from": "next tuesday"})
    assert info.value.field == "from" and info.value.code == "invalid-field"


def test_notes_carry_the_configured_note_type(harness: WasteHarness) -> None:
    outcome = _one(harness.connector(), harness.bulky(60))
    detail = harness.sim.admin("GET", f"/admin/requests/{outcome.reference}")
    assert [n["note_type_id"] for n in detail["notes"]] == [2], "CRM NOTE, found by its name"
    with pytest.raises(PermanentError) as info:
        harness.connector(note_type="NO SUCH TYPE").check()
    assert info.value.field == "note_type"


def test_extended_data_names_come_from_configuration_checked_against_definitions(
        harness: WasteHarness) -> None:
    names = {"slot_date": "SLOT_DATE", "item": "ITEMS", "collection_date": "COLLECTION_DATE",
             "bin_type": "BIN_TYPE"}
    with pytest.raises(PermanentError) as info:
        harness.connector(extended_data_fields=names).check()
    assert info.value.field == "extended_data_fields.item"
    [outcome] = harness.connector(extended_data_fields=names).submit([harness.bulky(61)])
    assert outcome.status is OutcomeStatus.RETRY and outcome.code == "config"


def test_every_status_between_polls_is_an_update_with_its_closing_code(
        harness: WasteHarness) -> None:
    connector = harness.connector()
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    created = _one(connector, harness.bulky(62))
    harness.sim.admin("POST", f"/admin/requests/{created.reference}/status",
                      json={"status": "IN PROGRESS"})
    harness.sim.admin("POST", f"/admin/requests/{created.reference}/status",
                      json={"status": "COMPLETED", "closing_code": "COLLECTED",
                            "note": "Two items"})
    mine = [u for u in connector.fetch_updates(since) if u.reference == created.reference]
    assert [(u.status, u.crm_status) for u in mine] == [("IN PROGRESS", "open"),
                                                        ("COMPLETED", "closed")]
    assert mine[1].note == "closing code COLLECTED; Two items"
    assert len({u.update_id for u in mine}) == 2


def test_result_codes_are_read_from_the_message_when_the_number_is_generic() -> None:
    from connectors.waste.result_codes import classify_result
    assert classify_result(1, "The requested slot is no longer available") == (
        "slot-unavailable", "slot_date")
    assert classify_result(-1, "Premises with UPRN 1 not found") == ("unknown-premises", "uprn")
    assert classify_result(99, "External reference already exists") == ("duplicate", None)
    assert classify_result(1, "Invalid token supplied")[0] == "invalid-token"
    assert classify_result(4, "anything") == ("slot-unavailable", "slot_date")
    assert classify_result(1, "Something odd happened") == ("bartec-1", None)


def test_status_catalogue_from_the_simulator(harness: WasteHarness) -> None:
    statuses = harness.connector().lookup("waste.statuses", {"service": "bulky"})
    assert [s["status"] for s in statuses] == ["OPEN", "ASSIGNED", "IN PROGRESS", "COMPLETED",
                                               "CLOSED", "CANCELLED"]
    assert {s["service_type_id"] for s in statuses} == {sample.BULKY_TYPE_ID}
    assert [s["status"] for s in statuses if s["closes_case"]] == ["COMPLETED", "CLOSED",
                                                                    "CANCELLED"]
