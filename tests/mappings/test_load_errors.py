"""A broken mapping file fails at load time, naming the file, the case type and the field."""
from __future__ import annotations

import copy

import pytest

from connectors import catalog
from mappings.errors import MappingLoadError
from mappings.loader import load_case_type, load_mappings

from tests.mappings.helpers import valid_mapping, write_mapping


def _fails(tmp_path, mapping, field_part: str, reason_part: str = "") -> MappingLoadError:
    path = write_mapping(tmp_path, mapping)
    with pytest.raises(MappingLoadError) as info:
        load_mappings(tmp_path)
    error = info.value
    message = str(error)
    assert error.file == str(path)
    assert str(path) in message
    if isinstance(mapping, dict):
        assert error.case_type == mapping["case_type"]
        assert mapping["case_type"] in message
    assert error.field is not None and field_part in error.field
    assert field_part in message
    assert reason_part in message
    return error


def _fields(mapping):
    return mapping["commands"][0]["fields"]


def test_the_valid_mapping_loads(tmp_path):
    write_mapping(tmp_path, valid_mapping())
    mapping_set = load_mappings(tmp_path)
    assert mapping_set.case_types == ["test_relief"]
    payload = mapping_set.apply("test_relief", "X", 1, {"rates_account": "NR00000001",
                                                         "relief": "charity",
                                                         "from_date": "2026-01-02"})[0].payload
    assert payload["relief_type"] == "CHARITABLE"


def test_misspelt_source_path(tmp_path):
    m = valid_mapping()
    _fields(m)["account_ref"]["from"] = "rates_acount"
    error = _fails(tmp_path, m, "commands[0].fields.account_ref.from", "rates_acount")
    assert "not declared in inputs" in error.reason


def test_misspelt_target_field(tmp_path):
    m = valid_mapping()
    _fields(m)["acount_ref"] = _fields(m).pop("account_ref")
    _fails(tmp_path, m, "commands[0].fields.acount_ref", "not a field of BusinessRatesRelief")


def test_misspelt_nested_target_field(tmp_path):
    m = valid_mapping("test_move")
    m["inputs"] = {"acc": {"type": "string", "required": True},
                   "day": {"type": "date", "required": True},
                   "l1": {"type": "string"}, "town": {"type": "string"},
                   "pc": {"type": "string"}}
    m["code_tables"] = {}
    m["commands"][0].update(operation="ctax.change_of_address", fields={
        "account_ref": "acc", "moved_on": "day", "forwarding_address.line1": "l1",
        "forwarding_address.twn": "town", "forwarding_address.postcode": "pc"})
    _fails(tmp_path, m, "forwarding_address.twn", "Address has no field 'twn'")


def test_target_under_a_field_that_is_not_an_object(tmp_path):
    m = valid_mapping()
    _fields(m)["account_ref.line1"] = _fields(m).pop("account_ref")
    _fails(tmp_path, m, "account_ref.line1", "not an object field")


def test_nested_object_mapped_whole(tmp_path):
    m = valid_mapping("test_move")
    m["inputs"] = {"acc": {"type": "string", "required": True},
                   "day": {"type": "date", "required": True}}
    m["code_tables"] = {}
    m["commands"][0].update(operation="ctax.change_of_address", fields={
        "account_ref": "acc", "moved_on": "day", "forwarding_address": "acc"})
    _fails(tmp_path, m, "forwarding_address", "map its fields one by one")


def test_partial_nested_object_needs_its_required_fields(tmp_path):
    m = valid_mapping("test_move")
    m["inputs"] = {"acc": {"type": "string", "required": True},
                   "day": {"type": "date", "required": True}, "l1": {"type": "string"}}
    m["code_tables"] = {}
    m["commands"][0].update(operation="ctax.change_of_address", fields={
        "account_ref": "acc", "moved_on": "day", "forwarding_address.line1": "l1"})
    _fails(tmp_path, m, "forwarding_address.town", "not mapped")


def test_unknown_operation(tmp_path):
    m = valid_mapping()
    m["commands"][0]["operation"] = "nndr.relief_aplication"
    _fails(tmp_path, m, "commands[0].operation", "nndr.relief_aplication")


def test_unknown_system(tmp_path):
    m = valid_mapping()
    m["commands"][0]["system"] = "revenues_nowhere"
    _fails(tmp_path, m, "commands[0].system", "unknown back-office system")


def test_system_whose_operations_are_not_written_yet(tmp_path, monkeypatch):
    monkeypatch.setitem(catalog.SYSTEMS, "waste_future", catalog.SystemEntry(
        "waste_future", "waste", "connectors.waste.future:FutureConnector",
        "connectors.waste.no_such_operations_module:OPERATIONS", "waste"))
    m = valid_mapping()
    m["commands"][0]["system"] = "waste_future"
    _fails(tmp_path, m, "commands[0].system", "cannot be imported")


def test_unknown_code_table(tmp_path):
    m = valid_mapping()
    _fields(m)["relief_type"]["transforms"] = [{"lookup": "relief_typs"}]
    _fails(tmp_path, m, "commands[0].fields.relief_type.transforms[0]", "relief_typs")


def test_unknown_transform(tmp_path):
    m = valid_mapping()
    _fields(m)["account_ref"]["transforms"] = ["strip", "uppercase"]
    _fails(tmp_path, m, "commands[0].fields.account_ref.transforms[1]", "uppercase")


@pytest.mark.parametrize("where,key", [
    ("top", "descripton"),
    ("command", "systm"),
    ("field", "transfroms"),
    ("input", "requried"),
])
def test_unknown_yaml_key(tmp_path, where, key):
    m = valid_mapping()
    target = {"top": m, "command": m["commands"][0], "field": _fields(m)["account_ref"],
              "input": m["inputs"]["relief"]}[where]
    target[key] = True
    _fails(tmp_path, m, key, "unknown key")


def test_required_target_field_left_unmapped(tmp_path):
    m = valid_mapping()
    del _fields(m)["effective_from"]
    _fails(tmp_path, m, "commands[0].fields.effective_from", "not mapped")


def test_condition_on_an_undeclared_input(tmp_path):
    m = valid_mapping()
    _fields(m)["account_ref"]["when"] = "leaving_area"
    _fails(tmp_path, m, "commands[0].fields.account_ref.when[0].input", "leaving_area")


def test_condition_with_two_tests(tmp_path):
    m = valid_mapping()
    m["commands"][0]["when"] = {"input": "relief", "equals": "a", "present": True}
    _fails(tmp_path, m, "commands[0].when", "exactly one of")


def test_field_with_source_and_constant(tmp_path):
    m = valid_mapping()
    _fields(m)["account_ref"]["constant"] = "NR00000001"
    _fails(tmp_path, m, "commands[0].fields.account_ref", "exactly one of from, constant")


def test_duplicate_step(tmp_path):
    m = valid_mapping()
    m["commands"].append(copy.deepcopy(m["commands"][0]))
    _fails(tmp_path, m, "commands[1].step", "used twice")


def test_input_declared_as_value_and_object(tmp_path):
    m = valid_mapping()
    m["inputs"]["relief.kind"] = {"type": "string"}
    _fails(tmp_path, m, "inputs.relief.kind", "as a value and as an object")


def test_input_default_of_the_wrong_type(tmp_path):
    m = valid_mapping()
    m["inputs"]["extra"] = {"type": "boolean", "default": "no"}
    _fails(tmp_path, m, "inputs.extra.default", "boolean")


def test_case_type_must_match_the_file_name(tmp_path):
    m = valid_mapping()
    path = write_mapping(tmp_path, m, name="other_name")
    with pytest.raises(MappingLoadError) as info:
        load_case_type(path)
    assert info.value.field == "case_type"
    assert "other_name" in str(info.value)


def test_duplicate_yaml_key_is_refused(tmp_path):
    text = ("case_type: dup\ndescription: x\ninputs: {}\ninputs: {}\ncommands: []\n")
    path = write_mapping(tmp_path, text, name="dup")
    with pytest.raises(MappingLoadError) as info:
        load_mappings(tmp_path)
    assert str(path) in str(info.value)
    assert "duplicate key 'inputs'" in str(info.value)


def test_not_yaml(tmp_path):
    path = write_mapping(tmp_path, "case_type: [unclosed\n", name="bad")
    with pytest.raises(MappingLoadError) as info:
        load_mappings(tmp_path)
    assert info.value.file == str(path)


def test_missing_directory(tmp_path):
    with pytest.raises(MappingLoadError):
        load_mappings(tmp_path / "absent")
