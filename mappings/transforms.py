"""Value transforms a mapping can apply between a CRM field and a back-office field.

Each transform takes one value and returns the new value, or raises ``TransformError`` with a
reason that never repeats the value. ``None`` (a missing optional input) passes through every
transform untouched, so a chain never has to test for it.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from connectors.fields import normalise_postcode

Transform = Callable[[Any], Any]


class TransformError(ValueError):
    """A value cannot be transformed; the message says why without quoting the value."""


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TransformError(f"{name}: expected text")
    return value


def strip(value: Any) -> str:
    """Leading and trailing whitespace removed."""
    return _text(value, "strip").strip()


def upper(value: Any) -> str:
    return _text(value, "upper").upper()


def lower(value: Any) -> str:
    return _text(value, "lower").lower()


def null_if_blank(value: Any) -> str | None:
    """Empty or whitespace-only text becomes null (the target field is then left out)."""
    text = _text(value, "null_if_blank")
    return None if not text.strip() else text


def digits_only(value: Any) -> str:
    """Only the ASCII digits of a text or a non-negative whole number ("12-34-56" -> "123456")."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return re.sub(r"[^0-9]", "", _text(value, "digits_only"))


def iso_date(value: Any) -> str:
    """An ISO date ``YYYY-MM-DD`` from a date, or an ISO date or date-time text."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = _text(value, "date").strip()
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).date().isoformat()
    except ValueError as exc:
        raise TransformError("date: not an ISO date") from exc


def postcode(value: Any) -> str:
    """A UK postcode, upper case with one space before the inward code."""
    try:
        return normalise_postcode(_text(value, "postcode"))
    except ValueError as exc:
        raise TransformError("postcode: not a UK postcode") from exc


_INT_TEXT = re.compile(r"[+-]?[0-9]{1,18}")


def to_int(value: Any) -> int:
    """A whole number from a number or a text of ASCII digits ("15" -> 15)."""
    if isinstance(value, bool):
        raise TransformError("int: expected a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise TransformError("int: expected a whole number")
    text = _text(value, "int").strip()
    if not _INT_TEXT.fullmatch(text):
        raise TransformError("int: expected a whole number")
    return int(text)


_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def to_bool(value: Any) -> bool:
    """A boolean from a boolean, 0/1, or yes/no/true/false/y/n text (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise TransformError("bool: expected yes/no or true/false")


#: Transforms named by a plain word in a mapping's ``transforms`` list.
SIMPLE: dict[str, Transform] = {
    "strip": strip,
    "upper": upper,
    "lower": lower,
    "null_if_blank": null_if_blank,
    "digits_only": digits_only,
    "date": iso_date,
    "postcode": postcode,
    "int": to_int,
    "bool": to_bool,
}


def code_key(wording: str) -> str:
    """How CRM wording is compared with a code table: case-folded, whitespace collapsed."""
    return " ".join(wording.split()).casefold()


def lookup(table_name: str, table: Mapping[str, Any]) -> Transform:
    """A transform that turns CRM wording into the back-office code of a code table.

    ``table`` must already be keyed by ``code_key(wording)``.
    """

    def _lookup(value: Any) -> Any:
        word = code_key(_text(value, f"lookup {table_name}"))
        try:
            return table[word]
        except KeyError as exc:
            raise TransformError(f"not a value of code table {table_name}") from exc

    return _lookup


def run_chain(chain: tuple[Transform, ...], value: Any) -> Any:
    """Apply the transforms in order; ``None`` passes through (and stops the chain)."""
    for transform in chain:
        if value is None:
            return None
        value = transform(value)
    return value
