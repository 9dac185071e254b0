"""Properties of list inputs over generated CRM lists (hypothesis), on the shipped bulky mapping."""
from __future__ import annotations

import copy
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.waste.operations import BulkyCollection
from mappings.errors import InvalidCase
from mappings.loader import load_mappings

MAPPINGS = load_mappings()
CASE_TYPE = "waste_bulky_collection"
KEY = re.compile(r"[A-Za-z0-9._-]{1,64}")
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Z"]),
                min_size=1, max_size=20)
padded_names = st.tuples(st.sampled_from(["", " ", "  "]), names,
                         st.sampled_from(["", " "])).map("".join)
quantities = st.none() | st.integers(1, 10) | st.integers(1, 10).map(str)
items = st.fixed_dictionaries({"name": padded_names}, optional={"quantity": quantities})
item_lists = st.lists(items, min_size=1, max_size=10)


def _case(things):
    return {"uprn": "100090000001", "slot_date": "2026-06-01", "items": things}


def _expected(things):
    """What each CRM item should become: stripped name, whole-number quantity when given."""
    result = []
    for thing in things:
        item = {"name": thing["name"].strip()}
        if thing.get("quantity") is not None:
            item["quantity"] = int(thing["quantity"])
        result.append(item)
    return result


@SETTINGS
@given(things=item_lists)
def test_every_element_is_mapped_in_order(things):
    [command] = MAPPINGS.apply(CASE_TYPE, "CRM-1", 1, _case(things))
    assert command.payload["items"] == _expected(things)
    BulkyCollection.model_validate(dict(command.payload))
    assert KEY.fullmatch(command.key)
    [again] = MAPPINGS.apply(CASE_TYPE, "CRM-1", 9, copy.deepcopy(_case(things)))
    assert again.key == command.key


@SETTINGS
@given(first=item_lists, second=item_lists)
def test_keys_are_equal_exactly_when_the_mapped_elements_are(first, second):
    [a] = MAPPINGS.apply(CASE_TYPE, "CRM-1", 1, _case(first))
    [b] = MAPPINGS.apply(CASE_TYPE, "CRM-1", 1, _case(second))
    assert (a.key == b.key) == (_expected(first) == _expected(second))


@SETTINGS
@given(things=item_lists, extra=st.dictionaries(
    st.text(max_size=8).filter(lambda k: k not in ("name", "quantity")),
    st.none() | st.integers() | st.text(max_size=8), min_size=1, max_size=3),
       data=st.data())
def test_unmapped_element_fields_leave_the_key_alone(things, extra, data):
    [before] = MAPPINGS.apply(CASE_TYPE, "CRM-1", 1, _case(things))
    changed = copy.deepcopy(things)
    changed[data.draw(st.integers(0, len(things) - 1))].update(extra)
    [after] = MAPPINGS.apply(CASE_TYPE, "CRM-1", 2, _case(changed))
    assert after.key == before.key


BAD_ELEMENT = {
    "quantity": st.sampled_from(["two", "1.5", 0, 11, -1, True, 2.5, [], {}]),
    "name": st.sampled_from([None, "", "   ", 5, ["Sofa"], "x" * 61]),
}


@SETTINGS
@given(things=item_lists, data=st.data())
def test_a_bad_element_is_refused_naming_its_index(things, data):
    index = data.draw(st.integers(0, len(things) - 1))
    field = data.draw(st.sampled_from(sorted(BAD_ELEMENT)))
    bad = copy.deepcopy(things)
    bad[index][field] = data.draw(BAD_ELEMENT[field])
    # an earlier element must not fail first: make the others plainly valid
    for i, thing in enumerate(bad):
        if i != index:
            bad[i] = {"name": "Chair", "quantity": 1}
    try:
        MAPPINGS.apply(CASE_TYPE, "CRM-1", 1, _case(bad))
    except InvalidCase as exc:
        assert exc.field == f"items[{index}].{field}"
    else:
        raise AssertionError("a bad element was accepted")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6)
                           | st.floats(allow_nan=True),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(["name", "quantity", "x"]), inner,
                                             max_size=3), max_leaves=10)


@SETTINGS
@given(things=json_values | st.lists(json_values, max_size=12))
def test_arbitrary_lists_only_ever_raise_invalid_case_naming_the_list(things):
    try:
        [command] = MAPPINGS.apply(CASE_TYPE, "CRM-1", 1, _case(things))
    except InvalidCase as exc:
        assert exc.field == "items" or re.fullmatch(r"items\[\d+\](\.(name|quantity))?",
                                                    exc.field), exc.field
        return
    BulkyCollection.model_validate(dict(command.payload))
    assert isinstance(things, list) and len(command.payload["items"]) == len(things)
