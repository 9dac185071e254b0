"""The waste, benefits and licensing mappings: what their sample cases become, and bad input."""
from __future__ import annotations

import copy

import pytest

from mappings.errors import InvalidCase
from mappings.loader import load_mappings

from tests.mappings.cases import cases_of


@pytest.fixture(scope="module")
def mapping_set():
    return load_mappings()


def _one(mapping_set, case_type, data, crm_id="C-1"):
    [command] = mapping_set.apply(case_type, crm_id, 1, data)
    return command


def _refused(mapping_set, case_type, data) -> InvalidCase:
    with pytest.raises(InvalidCase) as info:
        mapping_set.apply(case_type, "C-1", 1, data)
    return info.value


# --- waste ---------------------------------------------------------------------------------

BULKY = {"uprn": " 100090000001 ", "slot_date": "2026-06-02T00:00:00",
         "items": [{"name": " Sofa ", "quantity": 2}, {"name": "Mattress"},
                   {"name": "Fridge", "quantity": "3", "colour": "white"}],
         "contact": {"name": " A Person ", "phone": "01632 960000"},
         "location_notes": "  "}


def test_bulky_sample_cases_map_every_item_in_order(mapping_set):
    cases = cases_of("waste_bulky_collection")
    assert cases
    for case in cases:
        command = _one(mapping_set, case["case_type"], case["data"], case["id"])
        data, payload = case["data"], command.payload
        assert command.operation == "waste.bulky_collection"
        assert payload["uprn"] == data["uprn"] and payload["slot_date"] == data["slot_date"]
        assert payload["items"] == [{"name": i["name"], "quantity": i["quantity"]}
                                    for i in data["items"]]
        assert payload["contact_name"] == data["contact"]["name"]
        assert payload["contact_phone"] == data["contact"]["phone"]
        assert payload.get("note") == (data["location_notes"] or None)


def test_bulky_normalises_items_and_leaves_a_blank_note_out(mapping_set):
    payload = _one(mapping_set, "waste_bulky_collection", BULKY).payload
    assert payload == {"uprn": "100090000001", "slot_date": "2026-06-02",
                       "items": [{"name": "Sofa", "quantity": 2}, {"name": "Mattress"},
                                 {"name": "Fridge", "quantity": 3}],
                       "contact_name": "A Person", "contact_phone": "01632 960000"}


@pytest.mark.parametrize("change,field,reason", [
    (lambda d: d["items"][2].update(quantity="three"), "items[2].quantity", "whole number"),
    (lambda d: d["items"][1].update(quantity=11), "items[1].quantity", "less than or equal"),
    (lambda d: d["items"][0].update(name=" "), "items[0].name", "required"),
    (lambda d: d["items"].__setitem__(1, "Mattress"), "items[1]", "expected an object"),
    (lambda d: d.update(items=[]), "items", "required"),
    (lambda d: d.update(items={"name": "Sofa"}), "items", "expected a list"),
    (lambda d: d.update(items=[{"name": "Chair"}] * 11), "items", "at most 10"),
    (lambda d: d["contact"].update(phone="call me"), "contact.phone", "pattern"),
])
def test_bad_bulky_input_names_the_item(mapping_set, change, field, reason):
    data = copy.deepcopy(BULKY)
    change(data)
    error = _refused(mapping_set, "waste_bulky_collection", data)
    assert error.field == field
    assert reason in error.reason


def test_missed_bin_sample_cases(mapping_set):
    cases = cases_of("waste_missed_bin")
    assert cases
    for case in cases:
        payload = _one(mapping_set, case["case_type"], case["data"], case["id"]).payload
        assert payload["bin_type"] == case["data"]["bin_type"]
        assert payload["collection_date"] == case["data"]["collection_date"]
        assert payload.get("note") == (case["data"]["notes"] or None)


@pytest.mark.parametrize("wording,code", [("refuse", "refuse"), ("General  Waste", "refuse"),
                                          ("garden waste", "garden"), (" FOOD ", "food")])
def test_missed_bin_wording(mapping_set, wording, code):
    data = {"uprn": "100090000003", "bin_type": wording, "collection_date": "2026-05-04",
            "notes": " Left at the kerb "}
    payload = _one(mapping_set, "waste_missed_bin", data).payload
    assert payload == {"uprn": "100090000003", "bin_type": code, "collection_date": "2026-05-04",
                       "note": "Left at the kerb"}


def test_missed_bin_unknown_bin_type(mapping_set):
    data = {"uprn": "100090000003", "bin_type": "glass", "collection_date": "2026-05-04"}
    assert _refused(mapping_set, "waste_missed_bin", data).field == "bin_type"


# --- benefits ------------------------------------------------------------------------------

OPERATION_OF_CHANGE = {"new_address": "hb.new_address", "household": "hb.household_change",
                       "income": "hb.income_change", "started_work": "hb.started_work",
                       "stopped_work": "hb.stopped_work"}


def test_each_change_of_circumstances_becomes_its_one_command(mapping_set):
    cases = cases_of("hb_change_of_circumstances")
    assert {c["data"]["change"] for c in cases} == set(OPERATION_OF_CHANGE)
    for case in cases:
        command = _one(mapping_set, case["case_type"], case["data"], case["id"])
        assert command.operation == OPERATION_OF_CHANGE[case["data"]["change"]]
        assert command.payload["claim_ref"] == case["data"]["claim_reference"]
        assert case["data"]["effective_date"] in command.payload.values()


def test_new_address_change(mapping_set):
    data = {"claim_reference": "hb0000001", "change": "new_address",
            "effective_date": "2026-02-02", "weekly_rent": 95.5,
            "new_address": {"line1": "8 Mill Lane", "line2": " ", "town": "Exampleton",
                            "postcode": "ex11hq"}}
    payload = _one(mapping_set, "hb_change_of_circumstances", data).payload
    assert payload == {"claim_ref": "HB0000001", "moved_on": "2026-02-02", "weekly_rent": "95.5",
                       "new_address": {"line1": "8 Mill Lane", "town": "EXAMPLETON",
                                       "postcode": "EX1 1HQ"}}


@pytest.mark.parametrize("change,field", [
    ({"change": "moved_house"}, "change"),                     # not a kind the mapping knows
    ({"claim_reference": "HB12"}, "claim_reference"),
    ({"income": {"type": "wages", "amount": "1", "frequency": "weekly"}}, "income.type"),
    ({"income": {"type": "pension", "amount": "1.234", "frequency": "weekly"}}, "income.amount"),
])
def test_bad_change_of_circumstances(mapping_set, change, field):
    data = {"claim_reference": "HB0000003", "change": "income", "effective_date": "2026-02-16",
            "income": {"type": "pension", "amount": "12.50", "frequency": "weekly"}, **change}
    assert _refused(mapping_set, "hb_change_of_circumstances", data).field == field


# --- licensing -----------------------------------------------------------------------------

def test_each_licence_kind_becomes_its_operation(mapping_set):
    cases = cases_of("licence_application")
    assert cases
    for case in cases:
        command = _one(mapping_set, case["case_type"], case["data"], case["id"])
        assert command.operation == f"licence.{case['data']['licence_kind']}"
        assert command.payload["applicant"]["name"] == case["data"]["applicant"]["name"]
        assert "line2" not in command.payload["applicant"]["address"]   # blank in the CRM


PREMISES = {"licence_kind": "premises", "applicant": {"name": "A Person"},
            "premises": {"reference": "pr00001"},
            "activities": [" Sale_of_Alcohol ", "", "late_night_refreshment"]}


def test_premises_activities_are_a_list_of_values(mapping_set):
    payload = _one(mapping_set, "licence_application", PREMISES).payload
    assert payload == {"applicant": {"name": "A Person"}, "premises_ref": "PR00001",
                       "activities": ["sale_of_alcohol", "late_night_refreshment"]}


@pytest.mark.parametrize("change,field", [
    ({"activities": ["sale_of_alcohol", " ", "karaoke"]}, "activities[2]"),  # index in the CRM
    ({"activities": ["sale_of_alcohol", 7]}, "activities[1]"),
    ({"activities": []}, "activities"),
    ({"licence_kind": "dog_walking"}, "licence_kind"),
    ({"licence_kind": "taxi_driver", "driving_licence_number": "OKAFO801218K99AB"},
     "applicant.date_of_birth"),
    ({"applicant": {"name": "A Person", "address": {"line1": "1 Road"}}}, "applicant.address.town"),
])
def test_bad_licence_application(mapping_set, change, field):
    data = {**copy.deepcopy(PREMISES), **change}
    assert _refused(mapping_set, "licence_application", data).field == field
