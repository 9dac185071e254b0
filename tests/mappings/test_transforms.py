"""Value transforms: conversions, and errors that never repeat the value."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from mappings import transforms as t


@pytest.mark.parametrize("name,value,expected", [
    ("strip", "  a b  ", "a b"),
    ("upper", "ct0001", "CT0001"),
    ("lower", "ABC", "abc"),
    ("null_if_blank", "   ", None),
    ("null_if_blank", " x ", " x "),
    ("digits_only", "12-34-56", "123456"),
    ("digits_only", "١٢-34", "34"),      # only ASCII digits survive
    ("digits_only", 1234, "1234"),
    ("date", "2026-02-03", "2026-02-03"),
    ("date", "2026-02-03T23:59:00+01:00", "2026-02-03"),
    ("date", date(2026, 2, 3), "2026-02-03"),
    ("date", datetime(2026, 2, 3, 10, 0), "2026-02-03"),
    ("postcode", " sw1a1aa ", "SW1A 1AA"),
    ("postcode", "ex5  5fq", "EX5 5FQ"),
    ("int", " 15 ", 15),
    ("int", 8, 8),
    ("int", 22.0, 22),
    ("bool", "Yes", True),
    ("bool", "n", False),
    ("bool", 1, True),
    ("bool", False, False),
])
def test_simple_transforms(name, value, expected):
    assert t.SIMPLE[name](value) == expected


@pytest.mark.parametrize("name,value", [
    ("strip", 5), ("upper", None), ("digits_only", -3), ("digits_only", True),
    ("date", "03/02/2026"), ("date", "2026-13-01"), ("date", 20260101),
    ("postcode", "NOT A CODE"), ("postcode", 12),
    ("int", "1.5"), ("int", "fifteen"), ("int", True), ("int", 1.5), ("int", float("nan")),
    ("int", "9" * 5000),
    ("bool", "maybe"), ("bool", 2), ("bool", None),
])
def test_bad_values_raise_transform_error_without_the_value(name, value):
    with pytest.raises(t.TransformError) as info:
        t.SIMPLE[name](value)
    assert name.split("_")[0] in str(info.value)
    if isinstance(value, str) and len(value) > 2:
        assert value not in str(info.value)


def test_lookup_is_case_and_space_insensitive_and_never_echoes():
    table = {t.code_key("Small Business"): "SBRR"}
    relief = t.lookup("relief_types", table)
    assert relief(" small   BUSINESS ") == "SBRR"
    with pytest.raises(t.TransformError) as info:
        relief("private words")
    assert "relief_types" in str(info.value) and "private" not in str(info.value)
    with pytest.raises(t.TransformError):
        relief(3)


def test_chain_passes_none_through():
    chain = (t.strip, t.null_if_blank, t.upper)
    assert t.run_chain(chain, "  ") is None
    assert t.run_chain(chain, None) is None
    assert t.run_chain(chain, " p000001 ") == "P000001"
