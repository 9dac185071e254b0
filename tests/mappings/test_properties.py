"""Properties of the engine over arbitrary CRM data (hypothesis)."""
from __future__ import annotations

import copy
import re
from datetime import date

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from connectors import catalog
from mappings.errors import InvalidCase
from mappings.loader import load_mappings
from simulators.world import demo_cases

MAPPINGS = load_mappings()
CASE_TYPES = MAPPINGS.case_types
DEMO = [c for c in demo_cases() if c["case_type"] in CASE_TYPES]
KEY = re.compile(r"[A-Za-z0-9._-]{1,64}")

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.dates().map(date.isoformat)
           | st.sampled_from(["CT00000001", "NR00000003", "P000123", "12-34-56", "15", "charity",
                              "EX5 5FQ", "2026-01-01", "", " "]))
# Keys the mappings read, so arbitrary data often reaches deep into the rules.
segments = sorted({part for ct in CASE_TYPES for rule in MAPPINGS.mapping(ct).inputs
                   for part in rule.path.split(".")})
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.sampled_from(segments) | st.text(max_size=5),
                                           inner, max_size=4), max_leaves=12)
arbitrary_data = st.dictionaries(st.sampled_from(segments) | st.text(max_size=6), json_like,
                                 max_size=8)


@st.composite
def mutated_demo_case(draw):
    """A demo case with one declared input replaced by an arbitrary JSON-like value."""
    case = copy.deepcopy(draw(st.sampled_from(DEMO)))
    rule = draw(st.sampled_from(MAPPINGS.mapping(case["case_type"]).inputs))
    node = case["data"]
    *parents, leaf = rule.path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            break
    else:
        if draw(st.booleans()):
            node.pop(leaf, None)
        else:
            node[leaf] = draw(json_like)
    return case


def _apply_or_invalid(case_type, crm_id, data):
    """The commands, or None when the engine refuses the case with InvalidCase."""
    try:
        return MAPPINGS.apply(case_type, crm_id, 1, data)
    except InvalidCase as exc:
        assert exc.case_type == case_type and exc.field
        return None


def _check_commands(commands):
    for command in commands:
        model = catalog.operations(command.system)[command.operation]
        model.model_validate(dict(command.payload))
        assert KEY.fullmatch(command.key)


@SETTINGS
@given(case_type=st.sampled_from(CASE_TYPES), data=arbitrary_data)
def test_arbitrary_data_only_ever_raises_invalid_case(case_type, data):
    commands = _apply_or_invalid(case_type, "CRM-1", data)
    if commands is not None:
        _check_commands(commands)
        assert commands == MAPPINGS.apply(case_type, "CRM-1", 1, copy.deepcopy(data))


@SETTINGS
@given(case=mutated_demo_case())
def test_mutated_demo_cases_map_deterministically_to_valid_payloads(case):
    first = _apply_or_invalid(case["case_type"], case["id"], case["data"])
    second = _apply_or_invalid(case["case_type"], case["id"], copy.deepcopy(case["data"]))
    assert first == second
    if first is not None:
        _check_commands(first)


@SETTINGS
@given(case=st.sampled_from(DEMO), phone=st.text(max_size=20), extra=json_like,
       name=st.text(max_size=20))
def test_keys_do_not_change_with_unmapped_fields(case, phone, extra, name):
    before = _apply_or_invalid(case["case_type"], case["id"], case["data"])
    assume(before is not None)
    data = copy.deepcopy(case["data"])
    data.setdefault("customer", {})["phone"] = phone
    data["unmapped_extra"] = extra
    if "business" in data:
        data["business"]["name"] = name
    after = MAPPINGS.apply(case["case_type"], case["id"], 2, data)
    assert [c.key for c in after] == [c.key for c in before]


ACCOUNT_FIELD = {"ctax_change_of_address": ("account_reference", "CT"),
                 "ctax_single_person_discount": ("account_reference", "CT"),
                 "ctax_direct_debit": ("account_reference", "CT"),
                 "nndr_relief_application": ("rates_account", "NR")}
DATE_FIELD = {"ctax_change_of_address": "moving_date",
              "ctax_single_person_discount": "from_date",
              "nndr_relief_application": "from_date"}


@SETTINGS
@given(case=st.sampled_from(DEMO), number=st.integers(0, 99_999_999),
       day=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
       which=st.sampled_from(["account", "date"]))
def test_keys_change_when_a_mapped_field_changes(case, number, day, which):
    before = _apply_or_invalid(case["case_type"], case["id"], case["data"])
    assume(before is not None)
    data = copy.deepcopy(case["data"])
    if which == "account" or case["case_type"] not in DATE_FIELD:
        field, prefix = ACCOUNT_FIELD[case["case_type"]]
        data[field] = f"{prefix}{number:08d}"
    else:
        field = DATE_FIELD[case["case_type"]]
        data[field] = day.isoformat()
    after = MAPPINGS.apply(case["case_type"], case["id"], 2, data)
    if data[field] == case["data"][field]:
        assert [c.key for c in after] == [c.key for c in before]
    else:
        assert all(a.key != b.key for a, b in zip(after, before, strict=True))


@SETTINGS
@given(crm_id=st.text(min_size=1, max_size=120).filter(str.strip),
       other=st.text(min_size=1, max_size=120).filter(str.strip),
       case=st.sampled_from(DEMO))
def test_keys_are_short_safe_and_tell_cases_apart(crm_id, other, case):
    mine = _apply_or_invalid(case["case_type"], crm_id, case["data"])
    assume(mine is not None)
    theirs = MAPPINGS.apply(case["case_type"], other, 1, case["data"])
    for a, b in zip(mine, theirs, strict=True):
        assert KEY.fullmatch(a.key) and KEY.fullmatch(b.key)
        assert a.case_ref == crm_id
        assert (a.key == b.key) == (crm_id == other)


@pytest.mark.parametrize("case_type", CASE_TYPES)
def test_demo_cases_exist_for_every_case_type(case_type):
    assert any(c["case_type"] == case_type for c in DEMO)
