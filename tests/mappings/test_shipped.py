"""The shipped case-type mappings against the demo CRM cases."""
from __future__ import annotations

import pytest

from connectors import catalog
from mappings.errors import InvalidCase
from mappings.loader import DEFAULT_DIRECTORY, load_mappings

from tests.mappings.cases import all_cases, cases_of

#: Every shipped case type (derived from the mapping files, never listed by hand).
CASE_TYPES = sorted(p.stem for p in DEFAULT_DIRECTORY.glob("*.yaml"))


@pytest.fixture(scope="module")
def mapping_set():
    return load_mappings()


def test_every_shipped_file_is_a_loaded_case_type(mapping_set):
    files = {p.stem for p in DEFAULT_DIRECTORY.glob("*.yaml")}
    assert set(mapping_set.case_types) == files
    for case_type in mapping_set.case_types:
        for system in mapping_set.systems_for(case_type):
            assert system in catalog.SYSTEMS, f"{case_type} targets {system}, not in the catalogue"


def test_loading_imports_only_the_systems_named(monkeypatch):
    asked: list[str] = []
    real = catalog.operations

    def spy(system_id):
        asked.append(system_id)
        return real(system_id)

    monkeypatch.setattr(catalog, "operations", spy)
    mapping_set = load_mappings()
    named = {s for ct in mapping_set.case_types for s in mapping_set.systems_for(ct)}
    assert set(asked) == named
    assert len(asked) == len(named)  # one import per system, not per file


_cases_of = cases_of


@pytest.mark.parametrize("case_type", CASE_TYPES)
def test_every_demo_case_maps_or_is_refused_naming_the_field(mapping_set, case_type):
    cases = _cases_of(case_type)
    assert cases
    for case in cases:
        if case_type == "ctax_direct_debit" and case["data"]["bank"]["sort_code"] == "12-34-5":
            with pytest.raises(InvalidCase) as info:
                mapping_set.apply(case_type, case["id"], 1, case["data"])
            assert info.value.field == "bank.sort_code"
            assert "12-34-5" not in str(info.value)
            continue
        commands = mapping_set.apply(case_type, case["id"], 1, case["data"])
        assert len(commands) == 1
        command = commands[0]
        assert command.case_ref == case["id"]
        assert command.key.startswith(f"{case['id']}.")
        assert command.system in mapping_set.systems_for(case_type)
        model = catalog.operations(command.system)[command.operation]
        model.model_validate(dict(command.payload))


def test_exactly_one_demo_case_is_refused(mapping_set):
    """Only the mistyped sort code is refused by the hub; the cases the back offices refuse
    (unknown references, slots, ages) must still map and be sent."""
    refused = []
    for case in all_cases():
        try:
            mapping_set.apply(case["case_type"], case["id"], 1, case["data"])
        except InvalidCase as exc:
            refused.append((case["id"], exc.field))
    assert [f for _, f in refused] == ["bank.sort_code"]


def test_change_of_address_in_area_moves_in_at_the_new_property(mapping_set):
    case = next(c for c in _cases_of("ctax_change_of_address") if not c["data"]["leaving_area"])
    payload = mapping_set.apply(case["case_type"], case["id"], 1, case["data"])[0].payload
    assert payload["account_ref"] == case["data"]["account_reference"]
    assert payload["moved_on"] == case["data"]["moving_date"]
    assert payload["new_property_ref"] == case["data"]["new_address"]["property_reference"]
    assert "forwarding_address" not in payload


def test_change_of_address_leaving_area_sends_a_forwarding_address(mapping_set):
    case = next(c for c in _cases_of("ctax_change_of_address") if c["data"]["leaving_area"])
    data = case["data"]
    payload = mapping_set.apply(case["case_type"], case["id"], 1, data)[0].payload
    assert "new_property_ref" not in payload
    forwarding = payload["forwarding_address"]
    assert forwarding["line1"] == data["new_address"]["line1"]
    assert forwarding["postcode"] == data["new_address"]["postcode"]
    assert "line2" not in forwarding  # blank in the CRM: left out


def test_leaving_area_ignores_a_property_reference_and_normalises_the_postcode(mapping_set):
    data = {"account_reference": " ct00000001 ", "moving_date": "2026-03-01T09:30:00",
            "leaving_area": True,
            "new_address": {"line1": "1 High St", "line2": "Flat 2", "town": "Leeds",
                            "postcode": "ls11aa", "property_reference": "P000001"}}
    payload = mapping_set.apply("ctax_change_of_address", "C-1", 1, data)[0].payload
    assert payload == {"account_ref": "CT00000001", "moved_on": "2026-03-01",
                       "forwarding_address": {"line1": "1 High St", "line2": "Flat 2",
                                              "town": "LEEDS", "postcode": "LS1 1AA"}}


def test_moving_within_the_area_without_a_property_is_invalid(mapping_set):
    data = {"account_reference": "CT00000001", "moving_date": "2026-03-01",
            "new_address": {"property_reference": "  "}}
    with pytest.raises(InvalidCase) as info:
        mapping_set.apply("ctax_change_of_address", "C-1", 1, data)
    assert "new_property_ref or forwarding_address" in info.value.reason


def test_direct_debit_converts_sort_code_and_instalment_day(mapping_set):
    data = {"account_reference": "CT00000003",
            "bank": {"account_name": "A Person", "sort_code": "12-34-56",
                     "account_number": "12345678"},
            "instalment_day": "22"}
    payload = mapping_set.apply("ctax_direct_debit", "C-2", 1, data)[0].payload
    assert payload["sort_code"] == "123456"
    assert payload["payment_day"] == 22


def test_direct_debit_instalment_day_the_back_office_cannot_take(mapping_set):
    data = {"account_reference": "CT00000003",
            "bank": {"account_name": "A Person", "sort_code": "12-34-56",
                     "account_number": "12345678"},
            "instalment_day": "30"}
    with pytest.raises(InvalidCase) as info:
        mapping_set.apply("ctax_direct_debit", "C-2", 1, data)
    assert info.value.field == "instalment_day"


@pytest.mark.parametrize("wording,code", [("small business", "SBRR"), ("Charity", "CHARITABLE"),
                                          ("  rural ", "RURAL"), ("HARDSHIP", "HARDSHIP"),
                                          ("small   Business", "SBRR")])
def test_relief_wording_becomes_the_back_office_code(mapping_set, wording, code):
    data = {"rates_account": "NR00000001", "relief": wording, "from_date": "2026-04-01"}
    payload = mapping_set.apply("nndr_relief_application", "C-3", 1, data)[0].payload
    assert payload["relief_type"] == code


def test_unknown_relief_wording_is_invalid_without_echoing_it(mapping_set):
    data = {"rates_account": "NR00000001", "relief": "secret wording", "from_date": "2026-04-01"}
    with pytest.raises(InvalidCase) as info:
        mapping_set.apply("nndr_relief_application", "C-3", 1, data)
    assert info.value.field == "relief"
    assert "relief_types" in info.value.reason
    assert "secret" not in str(info.value)


def test_unknown_case_type(mapping_set):
    with pytest.raises(InvalidCase) as info:
        mapping_set.systems_for("no_such_case")
    assert info.value.field == "case_type"
    with pytest.raises(InvalidCase):
        mapping_set.apply("no_such_case", "C-1", 1, {})


