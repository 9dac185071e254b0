"""Applying a mapping: input checks, conditions, constants, defaults and command keys."""
from __future__ import annotations

import re

import pytest

from mappings.errors import InvalidCase
from mappings.keys import command_key
from mappings.loader import load_mappings

from tests.mappings.helpers import valid_mapping, write_mapping

GOOD = {"rates_account": "NR00000001", "relief": "charity", "from_date": "2026-01-02"}


@pytest.fixture()
def relief(tmp_path):
    write_mapping(tmp_path, valid_mapping())
    return load_mappings(tmp_path)


@pytest.mark.parametrize("data,field,reason", [
    ({**GOOD, "rates_account": None}, "rates_account", "required"),
    ({k: v for k, v in GOOD.items() if k != "relief"}, "relief", "required"),
    ({**GOOD, "relief": "   "}, "relief", "required"),
    ({**GOOD, "relief": 5}, "relief", "expected string"),
    ({**GOOD, "from_date": "02/01/2026"}, "from_date", "expected date"),
    ({**GOOD, "from_date": True}, "from_date", "expected date"),
    ({**GOOD, "relief": "unheard of"}, "relief", "code table relief_types"),
    ({**GOOD, "rates_account": "CT00000001"}, "rates_account", "pattern"),
])
def test_invalid_input_names_the_crm_field(relief, data, field, reason):
    with pytest.raises(InvalidCase) as info:
        relief.apply("test_relief", "C-1", 1, data)
    assert info.value.field == field
    assert info.value.case_type == "test_relief"
    assert reason in info.value.reason
    assert str(info.value).startswith(f"test_relief: field {field}:")


def test_data_that_is_not_an_object(relief):
    with pytest.raises(InvalidCase) as info:
        relief.apply("test_relief", "C-1", 1, ["not", "a", "mapping"])  # type: ignore[arg-type]
    assert info.value.field == "data"


def test_a_parent_that_is_not_an_object(tmp_path):
    m = valid_mapping()
    m["inputs"]["relief.kind"] = m["inputs"].pop("relief")
    m["commands"][0]["fields"]["relief_type"]["from"] = "relief.kind"
    write_mapping(tmp_path, m)
    with pytest.raises(InvalidCase) as info:
        load_mappings(tmp_path).apply("test_relief", "C-1", 1, {**GOOD, "relief": "charity"})
    assert info.value.field == "relief"
    assert info.value.reason == "expected an object"


@pytest.mark.parametrize("crm_id,version", [("", 1), ("  ", 1), ("C-1", -1), ("C-1", True)])
def test_bad_crm_id_or_version(relief, crm_id, version):
    with pytest.raises(InvalidCase):
        relief.apply("test_relief", crm_id, version, GOOD)


def _conditional(tmp_path):
    m = valid_mapping("test_conditional")
    m["inputs"]["urgent"] = {"type": "boolean", "default": False}
    m["inputs"]["channel"] = {"type": "string"}
    m["inputs"]["note_date"] = {"type": "date"}
    m["commands"][0]["fields"]["relief_type"] = {"from": "relief",
                                                 "transforms": [{"lookup": "relief_types"}],
                                                 "default": "HARDSHIP"}
    m["commands"][0]["fields"]["effective_from"] = {"from": "note_date", "default": "2026-01-01"}
    m["commands"].append({
        "step": "urgent_relief", "system": "revenues_northgate",
        "operation": "nndr.relief_application",
        "when": ["urgent", {"input": "channel", "in": ["phone", "web"]}],
        "fields": {"account_ref": "rates_account", "relief_type": {"constant": "HARDSHIP"},
                   "effective_from": {"from": "from_date", "transforms": ["date"]}},
    })
    m["commands"].append({
        "step": "walk_in", "system": "revenues_northgate", "operation": "nndr.relief_application",
        "when": [{"input": "channel", "present": False}],
        "fields": {"account_ref": "rates_account", "relief_type": {"constant": "RURAL"},
                   "effective_from": {"from": "from_date", "transforms": ["date"]}},
    })
    m["inputs"]["relief"]["required"] = False
    write_mapping(tmp_path, m)
    return load_mappings(tmp_path)


def test_command_conditions(tmp_path):
    mapping_set = _conditional(tmp_path)
    base = {"rates_account": "NR00000001", "from_date": "2026-05-06"}
    steps = lambda data: [c.key.split(".")[1]  # noqa: E731
                          for c in mapping_set.apply("test_conditional", "C", 1, data)]
    assert steps(base) == ["relief", "walk_in"]
    assert steps({**base, "channel": "post"}) == ["relief"]
    assert steps({**base, "channel": "web"}) == ["relief"]
    assert steps({**base, "channel": "web", "urgent": True}) == ["relief", "urgent_relief"]
    assert steps({**base, "channel": "letter", "urgent": True}) == ["relief"]
    assert mapping_set.systems_for("test_conditional") == ["revenues_northgate"]


def test_constants_and_defaults(tmp_path):
    mapping_set = _conditional(tmp_path)
    data = {"rates_account": "NR00000001", "from_date": "2026-05-06", "urgent": True,
            "channel": "phone"}
    first, urgent = mapping_set.apply("test_conditional", "C", 1, data)
    assert first.payload == {"account_ref": "NR00000001", "relief_type": "HARDSHIP",
                             "effective_from": "2026-01-01"}
    assert urgent.payload["relief_type"] == "HARDSHIP"
    assert urgent.payload["effective_from"] == "2026-05-06"


def test_key_shape_and_dependence(relief):
    [command] = relief.apply("test_relief", "CRM-000001", 1, GOOD)
    assert re.fullmatch(r"CRM-000001\.relief\.[0-9a-f]{10}", command.key)
    assert command.case_ref == "CRM-000001"
    [again] = relief.apply("test_relief", "CRM-000001", 7, {**GOOD, "phone": "01632 960000"})
    assert again.key == command.key                     # version and unmapped fields: same key
    [changed] = relief.apply("test_relief", "CRM-000001", 2, {**GOOD, "relief": "small business"})
    assert changed.key != command.key
    [other_case] = relief.apply("test_relief", "CRM-000002", 1, GOOD)
    assert other_case.key != command.key


@pytest.mark.parametrize("crm_id", ["case/1 2", "x" * 200, "ünïcode-id", "a.b.c"])
def test_keys_are_safe_for_any_crm_id(crm_id):
    key = command_key(crm_id, "a_step_name_of_24_chars_", {"a": 1})
    assert len(key) <= 64
    assert re.fullmatch(r"[A-Za-z0-9._-]+", key)


def test_sanitised_ids_stay_distinct():
    payload = {"a": 1}
    assert command_key("case/1", "s", payload) != command_key("case:1", "s", payload)
    long_a, long_b = "x" * 100 + "a", "x" * 100 + "b"
    assert command_key(long_a, "s", payload) != command_key(long_b, "s", payload)
    assert command_key("CRM-1", "s", payload).startswith("CRM-1.s.")
