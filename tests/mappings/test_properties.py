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

from tests.mappings.cases import all_cases

MAPPINGS = load_mappings()
CASE_TYPES = MAPPINGS.case_types
DEMO = [c for c in all_cases() if c["case_type"] in CASE_TYPES]
KEY = re.compile(r"[A-Za-z0-9._-]{1,64}")

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.dates().map(date.isoformat)
           | st.sampled_from(["CT00000001", "NR00000003", "P000123", "12-34-56", "15", "charity",
                              "EX5 5FQ", "2026-01-01", "", " "]))

def _input_rules(case_type):
    """Every declared input of a case type, with the element fields of list inputs."""
    for rule in MAPPINGS.mapping(case_type).inputs:
        yield rule
        yield from rule.element_fields or ()


# Keys the mappings read, so arbitrary data often reaches deep into the rules.
segments = sorted({part for ct in CASE_TYPES for rule in _input_rules(ct)
                   for part in rule.path.split(".")})
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.sampled_from(segments) | st.text(max_size=5),
                                           inner, max_size=4), max_leaves=12)
arbitrary_data = st.dictionaries(st.sampled_from(segments) | st.text(max_size=6), json_like,
                                 max_size=8)


def _mutate(draw, node, path):
    """Replace (or drop) the value at dotted ``path`` under ``node`` with arbitrary data."""
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return
    if draw(st.booleans()):
        node.pop(leaf, None)
    else:
        node[leaf] = draw(json_like)


@st.composite
def mutated_demo_case(draw):
    """A demo case with one declared input (or one field of one list element) made arbitrary."""
    case = copy.deepcopy(draw(st.sampled_from(DEMO)))
    rule = draw(st.sampled_from(MAPPINGS.mapping(case["case_type"]).inputs))
    elements = case["data"].get(rule.path) if rule.element_fields else None
    if isinstance(elements, list) and elements and draw(st.booleans()):
        element = draw(st.sampled_from(elements))
        inner = draw(st.sampled_from(rule.element_fields))
        if isinstance(element, dict):
            _mutate(draw, element, inner.path)
    else:
        _mutate(draw, case["data"], rule.path)
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


def _get(data, path):
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _mapped_field(case):
    """A reference-like input of the case (a value ending in at least four digits that
    reaches a payload) and how to make another valid value of it from a number: derived from
    the mapping and the case, never listed by hand."""
    commands = _apply_or_invalid(case["case_type"], case["id"], case["data"]) or []
    sent = " ".join(str(v).upper() for c in commands for v in c.payload.values())
    for rule in MAPPINGS.mapping(case["case_type"]).inputs:
        value = _get(case["data"], rule.path)
        digits = re.search(r"\d{4,}$", value.strip()) if isinstance(value, str) else None
        if digits and value.strip().upper() in sent:
            width = min(8, len(digits.group()))
            prefix = value.strip()[:len(value.strip()) - width]
            return rule.path, (lambda number, p=prefix, w=width: f"{p}{number % 10 ** w:0{w}d}")
    return None


def _date_field(case):
    """The first date input the case carries, or None."""
    for rule in MAPPINGS.mapping(case["case_type"]).inputs:
        if "date" in rule.types and isinstance(_get(case["data"], rule.path), str):
            return rule.path
    return None


def _set(data, path, value):
    *parents, leaf = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    old = data.get(leaf)
    data[leaf] = value
    return old


def test_every_case_type_has_a_field_whose_change_is_tested():
    tested = {c["case_type"] for c in DEMO if _mapped_field(c) is not None}
    assert tested == set(CASE_TYPES)


@SETTINGS
@given(case=st.sampled_from(DEMO), number=st.integers(0, 99_999_999),
       day=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
       which=st.sampled_from(["account", "date"]))
def test_keys_change_when_a_mapped_field_changes(case, number, day, which):
    before = _apply_or_invalid(case["case_type"], case["id"], case["data"])
    assume(before is not None)
    data = copy.deepcopy(case["data"])
    mapped, date_field = _mapped_field(case), _date_field(case)
    assume(mapped is not None)
    if which == "account" or date_field is None:
        field, make = mapped
        new = make(number)
    else:
        field, new = date_field, day.isoformat()
    old = _set(data, field, new)
    after = MAPPINGS.apply(case["case_type"], case["id"], 2, data)
    if new == old:
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
    """Every shipped case type has a demo case or a domain sample case to be tested on."""
    assert any(c["case_type"] == case_type for c in DEMO)
