"""Every recorded Bartec body in ../shared/reference/bartec, replayed through the connector itself
(not only the simulator), with the values it extracts asserted.

The recordings carry what real answers carry: placeholder ``RecordCount="int"`` attributes, a
create result in another operation's namespace and without an ``Errors`` block, empty and nil
optional elements, dates like ``0001-01-01T00:00:00``, a service-type name used twice, leaf
elements in the result's namespace instead of the leaf namespace.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from connectors.base import Command, OutcomeStatus
from connectors.errors import PermanentError
from tests.connectors.waste.replay import connector, history_entry, replay, result  # noqa: F401

RECORDED = Path(__file__).resolve().parents[3] / ".." / "shared" / "reference" / "bartec"
pytestmark = pytest.mark.skipif(not RECORDED.is_dir(),
                                reason="../shared/reference/bartec is not present: recorded "
                                       "Bartec answers cannot be replayed")

SERVICE_TYPES = {"bulky": "Bulky collection", "missed_food": "Missed food",
                 "missed_refuse": "4", "missed_recycling": "Leaf Removal",
                 "missed_garden": "Street Sweeping"}


def recorded(name: str) -> str:
    return (RECORDED / name).read_text(encoding="utf-8")


def test_every_recording_is_replayed_here() -> None:
    replayed = {"get_premises.xml", "servicerequest_create.xml", "servicerequests_get_SR1.xml",
                "servicerequests_status_get.xml", "servicerequests_types_get.xml",
                "servicerequests_updates_get_20200619.xml"}
    assert {p.name for p in RECORDED.glob("*.xml")} == replayed


def test_premises(replay) -> None:  # noqa: ANN001
    replay({"Premises_Get": recorded("get_premises.xml")})
    found = connector().lookup("waste.premises", {"postcode": "PE2 5TJ"})
    assert [(p["uprn"], p["usrn"], p["address"]["line1"]) for p in found] == [
        ("987654321", "123456789", "79 A STREET"),
        ("987654321", "123456789", "STREET RECORD A STREET"),
        ("987654323", "323456789", "OPEN SPACE A STREET"),
        ("100000101", "423456789", "82 A STREET"),
        ("987654325", "523456789", "83 A STREET")]
    assert {(p["address"]["town"], p["address"]["postcode"], p["address"]["locality"])
            for p in found} == {("PETERBOROUGH", "PE2 5TJ", None)}


def test_service_types_resolve_by_name_and_an_ambiguous_name_is_refused(replay) -> None:  # noqa: ANN001
    replay({"ServiceRequests_Types_Get": recorded("servicerequests_types_get.xml")})
    connector(service_types=SERVICE_TYPES).check()   # "4": the second "Rubbish", by its ID
    with pytest.raises(PermanentError) as info:
        connector(service_types={**SERVICE_TYPES, "missed_refuse": "Rubbish"}).check()
    assert info.value.field == "service_types.missed_refuse" and info.value.code == "config"


def test_create_confirms_the_recorded_service_code(replay) -> None:  # noqa: ANN001
    player = replay({"ServiceRequests_Types_Get": recorded("servicerequests_types_get.xml"),
                     "ServiceRequest_Create": recorded("servicerequest_create.xml")})
    command = Command(key="k-recorded-1", system="waste_bartec", operation="waste.missed_bin",
                      payload={"uprn": "100000101", "bin_type": "food",
                               "collection_date": date(2020, 6, 19)}, case_ref="CRM-1")
    [outcome] = connector(service_types=SERVICE_TYPES).submit([command])
    assert (outcome.status, outcome.reference, outcome.warnings) == (
        OutcomeStatus.CONFIRMED, "0001", ())
    [create] = player.asked("ServiceRequest_Create")
    assert (create["ServiceTypeID"], create["ExternalReference"]) == ("6", "k-recorded-1")
    [note] = player.asked("ServiceRequest_Note_Create")
    assert (note["ServiceCode"], note["NoteTypeID"]) == ("0001", "7")


def test_updates_read_each_changed_request_and_its_history(replay) -> None:  # noqa: ANN001
    def history(params: dict[str, str]) -> str:
        code = params["ServiceCode"]
        entries = (history_entry(code, "OPEN", "2020-06-18T09:00:00", by="hub-api", entry_id=1)
                   + history_entry(code, "IN PROGRESS", "2020-06-19T10:00:00.5", entry_id=2)
                   + history_entry(code, "CLOSED", "2020-06-19T15:04:56.007", entry_id=3,
                                   closing="NO ACCESS", comments="Gate locked"))
        return result("ServiceRequests_History_Get", entries, count="int")

    player = replay({"ServiceRequests_Updates_Get":
                     recorded("servicerequests_updates_get_20200619.xml"),
                     "ServiceRequests_History_Get": history,
                     "ServiceRequests_Get": recorded("servicerequests_get_SR1.xml")})
    since = datetime(2020, 6, 18, 23, 0, tzinfo=timezone.utc)
    updates = connector().fetch_updates(since)
    asked = [p["ServiceCode"] for p in player.asked("ServiceRequests_History_Get")]
    assert asked == ["SR00051688", "SR00051687", "SR00051689", "SR00051624"]
    assert {p["Date"][:4] for p in player.asked("ServiceRequests_History_Get")} == {"2000"}, \
        "the broken date filter is bypassed with a very early date"
    assert len(updates) == 8, "two changes after the cursor per request; the hub's own skipped"
    closed = [u for u in updates if u.status == "CLOSED"]
    assert sorted(u.reference for u in closed) == sorted(asked)
    assert {(u.crm_status, u.note, u.key) for u in closed} == {
        ("closed", "closing code NO ACCESS; Gate locked", None)}, \
        "the recorded request's empty ExternalReference is no key"
    assert {u.status for u in updates} == {"IN PROGRESS", "CLOSED"}
    assert all(u.changed_at > since for u in updates)
    # 15:04:56.007 in London summer time is 14:04:56.007 UTC
    assert min(u.changed_at for u in closed) == datetime(2020, 6, 19, 14, 4, 56, 7000,
                                                         tzinfo=timezone.utc)


def test_snapshot_reads_the_recorded_request(replay) -> None:  # noqa: ANN001
    replay({"ServiceRequests_Get": recorded("servicerequests_get_SR1.xml")})
    assert connector().snapshot(["k-any"]) == {
        "k-any": {"reference": "SR1", "status": "OPEN", "crm_status": "open"}}


def test_status_catalogue(replay) -> None:  # noqa: ANN001
    text = recorded("servicerequests_status_get.xml")
    replay({"ServiceRequests_Statuses_Get": text})
    statuses = connector().lookup("waste.statuses", {})
    assert len(statuses) == len(re.findall(r"<ServiceStatus>", text))
    assert statuses[:3] == [
        {"id": 2274, "status": "PENDING", "sequence": 0, "service_type_id": 1, "closes_case": False},
        {"id": 2275, "status": "INTERVENTION", "sequence": 1, "service_type_id": 1,
         "closes_case": False},
        {"id": 2276, "status": "OPEN", "sequence": 2, "service_type_id": 1, "closes_case": False}]
    assert {s["status"] for s in statuses if s["closes_case"]} == {"CLOSED", "CANCELLED"}
    assert statuses[-1] == {"id": 2388, "status": "OPEN", "sequence": 2, "service_type_id": 238,
                            "closes_case": False}


def test_records_read_the_recorded_service_request(replay) -> None:  # noqa: ANN001
    calls = []

    def once(params: dict) -> str:   # the recorded request falls in one window only
        calls.append(params)
        return recorded("servicerequests_get_SR1.xml") if len(calls) == 1 else \
            result("ServiceRequests_Get", "", count="0")

    replay({"ServiceRequests_Get": once})
    [record] = connector(records_horizon_days=3).records()
    assert (record.reference, record.key, record.status) == ("SR1", None, "OPEN"), \
        "an empty ExternalReference carries no hub key"
    assert record.fields == {"uprn": "10000000001"} and record.operation is None, \
        "DOG BIN is not a configured service type"
    assert record.changed_at == datetime(2020, 6, 23, 15, 17, 31, 397000, tzinfo=timezone.utc)
    assert len(calls) >= 2, "the horizon is read in DateRequested windows"
