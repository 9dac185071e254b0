"""List inputs: a CRM list of objects or values mapped element by element onto a list field."""
from __future__ import annotations

import copy
import re

import pytest

from mappings.errors import InvalidCase, MappingLoadError
from mappings.loader import load_mappings

from tests.mappings.helpers import write_mapping


def bulky_mapping(case_type: str = "test_bulky") -> dict:
    """A list-of-objects mapping onto ``waste.bulky_collection``; tests change one thing."""
    return {
        "case_type": case_type,
        "description": "test list mapping",
        "inputs": {
            "uprn": {"type": "string", "required": True},
            "day": {"type": "date", "required": True},
            "things": {"type": "list", "required": True, "fields": {
                "what.name": {"type": "string", "required": True},
                "count": {"type": ["integer", "string"]},
                "kind": {"type": "string", "default": "household"},
            }},
        },
        "commands": [{
            "step": "bulky", "system": "waste_bartec", "operation": "waste.bulky_collection",
            "fields": {
                "uprn": "uprn",
                "slot_date": {"from": "day", "transforms": ["date"]},
                "items": {"from": "things", "each": {
                    "name": {"from": "what.name", "transforms": ["strip", "upper"]},
                    "quantity": {"from": "count", "transforms": ["int"], "default": 1,
                                 "when": {"input": "kind", "not_equals": "garden"}},
                }},
            },
        }],
    }


def activities_mapping() -> dict:
    """A list-of-values mapping onto ``licence.premises``."""
    return {
        "case_type": "test_premises", "description": "test list of values",
        "inputs": {"name": {"type": "string", "required": True},
                   "ref": {"type": "string", "required": True},
                   "acts": {"type": "list", "of": "string"}},
        "commands": [{
            "step": "premises", "system": "licensing_uniform", "operation": "licence.premises",
            "fields": {"applicant.name": "name", "premises_ref": "ref",
                       "activities": {"from": "acts",
                                      "transforms": ["strip", "null_if_blank", "lower"]}},
        }],
    }


DATA = {"uprn": "100090000001", "day": "2026-06-01",
        "things": [{"what": {"name": " sofa "}, "count": "2"},
                   {"what": {"name": "rake"}, "count": 3, "kind": "garden"},
                   {"what": {"name": "bed"}}]}


@pytest.fixture()
def bulky(tmp_path):
    write_mapping(tmp_path, bulky_mapping())
    return load_mappings(tmp_path)


def _apply(mapping_set, data, case_type="test_bulky"):
    [command] = mapping_set.apply(case_type, "CRM-1", 1, data)
    return command


def test_each_element_is_mapped_in_order_with_transforms_defaults_and_conditions(bulky):
    payload = _apply(bulky, DATA).payload
    assert payload["items"] == [{"name": "SOFA", "quantity": 2}, {"name": "RAKE"},
                                {"name": "BED", "quantity": 1}]


@pytest.mark.parametrize("change,field,reason", [
    (lambda d: d["things"][2].update(count="two"), "things[2].count", "int: expected a whole"),
    (lambda d: d["things"][1].update(count=1.5), "things[1].count", "expected integer or string"),
    (lambda d: d["things"][0].update(what={"name": None}), "things[0].what.name", "required"),
    (lambda d: d["things"][0].update(what="sofa"), "things[0].what", "expected an object"),
    (lambda d: d["things"][2].update(count=0), "things[2].count", "greater than or equal to 1"),
    (lambda d: d["things"][0]["what"].update(name=" " * 3 + "x" * 61), "things[0].what.name",
     "at most 60"),
    (lambda d: d["things"].insert(1, None), "things[1]", "expected an object"),
    (lambda d: d.update(things="sofa"), "things", "expected a list"),
    (lambda d: d.update(things=[]), "things", "required"),
    (lambda d: d.pop("things"), "things", "required"),
])
def test_bad_element_input_names_the_path_with_its_index(bulky, change, field, reason):
    data = copy.deepcopy(DATA)
    change(data)
    with pytest.raises(InvalidCase) as info:
        bulky.apply("test_bulky", "CRM-1", 1, data)
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(info.value).startswith(f"test_bulky: field {field}:")


def test_element_errors_never_echo_the_value(bulky):
    data = copy.deepcopy(DATA)
    data["things"][0]["count"] = "secret-count"
    with pytest.raises(InvalidCase) as info:
        bulky.apply("test_bulky", "CRM-1", 1, data)
    assert "secret" not in str(info.value)


def test_keys_follow_the_mapped_element_fields_only(bulky):
    key = _apply(bulky, DATA).key
    assert re.fullmatch(r"CRM-1\.bulky\.[0-9a-f]{10}", key)
    unmapped = copy.deepcopy(DATA)
    unmapped["things"][0]["colour"] = "red"          # element field no mapping declares
    unmapped["things"][1]["count"] = 7               # left out: its condition does not hold
    assert _apply(bulky, unmapped).key == key
    changed = copy.deepcopy(DATA)
    changed["things"][2]["count"] = 2
    assert _apply(bulky, changed).key != key
    reordered = copy.deepcopy(DATA)
    reordered["things"].reverse()                   # the order of the list is part of the request
    assert _apply(bulky, reordered).key != key


@pytest.fixture()
def premises(tmp_path):
    write_mapping(tmp_path, activities_mapping())
    return load_mappings(tmp_path)


def test_list_of_values_drops_null_elements_and_keeps_crm_indexes(premises):
    data = {"name": "A", "ref": "PR00001", "acts": ["Sale_of_alcohol", "  ", None,
                                                    "late_night_refreshment"]}
    assert _apply(premises, data, "test_premises").payload["activities"] == [
        "sale_of_alcohol", "late_night_refreshment"]
    data["acts"].append("karaoke")
    with pytest.raises(InvalidCase) as info:
        premises.apply("test_premises", "C", 1, data)
    assert info.value.field == "acts[4]"             # the CRM's index, not the payload's
    data["acts"][0] = 5
    with pytest.raises(InvalidCase) as info:
        premises.apply("test_premises", "C", 1, data)
    assert (info.value.field, info.value.reason) == ("acts[0]", "expected string")


def test_an_optional_list_left_empty_is_left_out(premises):
    for acts in ([], ["", " "], None):
        with pytest.raises(InvalidCase) as info:      # the model requires activities
            premises.apply("test_premises", "C", 1, {"name": "A", "ref": "PR00001", "acts": acts})
        assert info.value.field == "acts"


def test_a_list_can_be_tested_for_presence(tmp_path):
    m = activities_mapping()
    m["commands"][0]["when"] = {"input": "acts", "present": True}
    write_mapping(tmp_path, m)
    mapping_set = load_mappings(tmp_path)
    assert mapping_set.apply("test_premises", "C", 1, {"name": "A", "ref": "PR00001"}) == []


def _load_fails(tmp_path, mapping, field_part, reason_part):
    write_mapping(tmp_path, mapping)
    with pytest.raises(MappingLoadError) as info:
        load_mappings(tmp_path)
    assert info.value.field is not None and field_part in info.value.field, str(info.value)
    assert reason_part in info.value.reason, str(info.value)


def _items(m):
    return m["commands"][0]["fields"]["items"]


def _things(m):
    return m["inputs"]["things"]


@pytest.mark.parametrize("change,field,reason", [
    (lambda m: _items(m)["each"].update(nmae=_items(m)["each"].pop("name")),
     "items.each.nmae", "nmae is not a field of BulkyItem"),
    (lambda m: _items(m)["each"].pop("name"), "items.each.name", "required field of"),
    (lambda m: _items(m)["each"]["name"].update({"from": "what.nam"}),
     "items.each.name.from", "not declared in the fields of things"),
    (lambda m: _items(m)["each"]["name"].update({"from": "uprn"}),
     "items.each.name.from", "not declared in the fields of things"),
    (lambda m: _items(m)["each"]["quantity"].update(when="uprn"),
     "items.each.quantity.when[0].input", "not declared"),
    (lambda m: _items(m)["each"]["name"].update(transforms=["capitalise"]),
     "items.each.name.transforms[0]", "unknown transform"),
    (lambda m: _items(m).pop("each"), "items.each", "map its element fields under each"),
    (lambda m: _items(m).update(transforms=["strip"]), "items", "no default or transforms"),
    (lambda m: m["commands"][0]["fields"].update(items="uprn"), "items.from",
     "map it from a list input with each"),
    (lambda m: m["commands"][0]["fields"].update(uprn="things"), "uprn.from",
     "not a list field"),
    (lambda m: m["commands"][0]["fields"].update({"items.name": "uprn"}), "items.name",
     "is a list: map its element fields under each"),
    (lambda m: m["commands"][0]["fields"].update(uprn={"from": "uprn", "each": {"x": "uprn"}}),
     "uprn.each", "names a list input"),
    (lambda m: _things(m).update(type=["list", "string"]), "inputs.things", "no other type"),
    (lambda m: _things(m).update(of="string"), "inputs.things", "exactly one of fields"),
    (lambda m: _things(m).pop("fields"), "inputs.things", "exactly one of fields"),
    (lambda m: _things(m).update(default=[]), "inputs.things", "no default"),
    (lambda m: _things(m)["fields"].update(sub={"type": "list", "of": "string"}),
     "inputs.things.fields.sub.type", "list inside a list"),
    (lambda m: _things(m)["fields"].update({"what": {"type": "string"}}),
     "inputs.things.fields.what.name", "as a value and as an object"),
    (lambda m: _things(m)["fields"]["count"].update(colour=True), "count.colour", "unknown key"),
    (lambda m: m["inputs"].update(uprn={"type": "string", "of": "string"}), "inputs.uprn",
     "only for inputs of type list"),
    (lambda m: m["commands"][0].update(when={"input": "things", "equals": "sofa"}),
     "commands[0].when[0]", "only present can test it"),
])
def test_list_mistakes_fail_at_load_time(tmp_path, change, field, reason):
    m = bulky_mapping()
    change(m)
    _load_fails(tmp_path, m, field, reason)


def test_a_list_of_values_cannot_feed_a_list_of_objects(tmp_path):
    m = bulky_mapping()
    m["inputs"]["things"] = {"type": "list", "of": "string"}
    _items(m).pop("each")
    _load_fails(tmp_path, m, "items.from", "must be a list of objects")


def test_a_list_of_values_takes_no_each(tmp_path):
    m = activities_mapping()
    m["commands"][0]["fields"]["activities"] = {"from": "acts", "each": {"x": "name"}}
    _load_fails(tmp_path, m, "activities.each", "list of values")


def test_a_list_of_objects_cannot_feed_a_list_of_values(tmp_path):
    m = activities_mapping()
    m["inputs"]["acts"] = {"type": "list", "fields": {"code": {"type": "string"}}}
    m["commands"][0]["fields"]["activities"] = {"from": "acts", "each": {"code": "code"}}
    _load_fails(tmp_path, m, "activities.from", "is a list of values")


# --- one_of: the only values an input may take --------------------------------------------

def _with_one_of(tmp_path, **condition):
    m = activities_mapping()
    m["inputs"]["kind"] = {"type": "string", "required": True, "one_of": ["pub", "club"]}
    m["commands"][0]["when"] = {"input": "kind", **condition}
    write_mapping(tmp_path, m)
    return m


def test_one_of_refuses_other_values(tmp_path):
    _with_one_of(tmp_path, equals="pub")
    mapping_set = load_mappings(tmp_path)
    data = {"name": "A", "ref": "PR00001", "acts": ["sale_of_alcohol"]}
    assert len(mapping_set.apply("test_premises", "C", 1, {**data, "kind": "pub"})) == 1
    assert mapping_set.apply("test_premises", "C", 1, {**data, "kind": "club"}) == []
    with pytest.raises(InvalidCase) as info:
        mapping_set.apply("test_premises", "C", 1, {**data, "kind": "cafe"})
    assert (info.value.field, info.value.reason) == (
        "kind", "not one of the values this mapping accepts")


@pytest.mark.parametrize("condition", [{"equals": "pubb"}, {"in": ["pub", "clubb"]}])
def test_a_condition_on_a_value_one_of_excludes_fails_to_load(tmp_path, condition):
    m = _with_one_of(tmp_path, **condition)
    _load_fails(tmp_path, m, "commands[0].when[0]", "not in its one_of")


@pytest.mark.parametrize("decl,field", [
    ({"type": "string", "one_of": ["a", 1]}, "inputs.kind.one_of[1]"),
    ({"type": "string", "one_of": ["a"], "default": "b"}, "inputs.kind.default"),
])
def test_one_of_must_fit_the_input(tmp_path, decl, field):
    m = activities_mapping()
    m["inputs"]["kind"] = decl
    _load_fails(tmp_path, m, field, "")
