"""The housing repair mapping: what its sample cases become, cancellation, and bad input."""
from __future__ import annotations

import copy

import pytest

from mappings.errors import InvalidCase
from mappings.loader import load_mappings
from tests.mappings.cases import cases_of

REPAIR = {"property": {"uprn": " 200100000003 "},
          "repair": {"trade": "  Heating  and hot water", "priority": "Emergency",
                     "description": " No heating ", "room": " ", "location_detail": "boiler"},
          "access_notes": "Key with neighbour at no. 5",
          "contact": {"name": "A Person", "phone": "01632 960000"},
          "customer": {"name": "A Person", "email": "a@example.org"}}


@pytest.fixture(scope="module")
def mapping_set():
    return load_mappings()


def test_sample_cases_raise_one_repair_job_each(mapping_set):
    cases = cases_of("housing_repair_request")
    assert len(cases) >= 5
    for case in cases:
        [command] = mapping_set.apply(case["case_type"], case["id"], 1, case["data"])
        assert command.operation == "housing.repair_request"
        assert command.payload["uprn"] == case["data"]["property"]["uprn"]
        assert command.payload.get("appointment_slot_id") == case["data"].get("appointment", {}).get("slot_id")


def test_wording_becomes_codes_and_blanks_are_left_out(mapping_set):
    [command] = mapping_set.apply("housing_repair_request", "C-1", 1, REPAIR)
    assert command.payload == {"uprn": "200100000003", "trade": "HEATING", "priority": "EMERGENCY",
                               "description": "No heating", "location_detail": "boiler",
                               "access_notes": "Key with neighbour at no. 5",
                               "contact_name": "A Person", "contact_phone": "01632 960000"}


def test_priority_defaults_to_routine(mapping_set):
    data = copy.deepcopy(REPAIR)
    del data["repair"]["priority"]
    [command] = mapping_set.apply("housing_repair_request", "C-1", 1, data)
    assert command.payload["priority"] == "ROUTINE"


def test_a_cancelled_request_cancels_instead_of_creating(mapping_set):
    data = copy.deepcopy(REPAIR) | {"request_status": "cancelled",
                                    "cancellation_reason": "Fixed it myself"}
    [command] = mapping_set.apply("housing_repair_request", "C-1", 2, data)
    assert command.operation == "housing.cancel_repair"
    assert command.payload == {"reason": "Fixed it myself"}
    assert command.case_ref == "C-1", "the connector finds the job by the case"


@pytest.mark.parametrize("change, field", [
    (lambda d: d["repair"].update(trade="Gardening"), "repair.trade"),
    (lambda d: d["repair"].update(priority="whenever"), "repair.priority"),
    (lambda d: d["repair"].update(description="  "), "repair.description"),
    (lambda d: d["property"].update(uprn="12 Mill Lane"), "property.uprn"),
    (lambda d: d["contact"].update(phone="call me"), "contact.phone"),
    (lambda d: d["repair"].update(description="x" * 2001), "repair.description"),
    (lambda d: d.update(request_status="paused"), "request_status"),
])
def test_bad_input_names_the_field_not_the_value(mapping_set, change, field):
    data = copy.deepcopy(REPAIR)
    change(data)
    with pytest.raises(InvalidCase) as info:
        mapping_set.apply("housing_repair_request", "C-1", 1, data)
    assert info.value.field == field
    assert "Mill Lane" not in str(info.value) and "Gardening" not in str(info.value)
