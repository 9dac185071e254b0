"""Reading JSON safely: a nesting limit checked before parsing, no NaN or Infinity, no crash.

Python's ``json`` parser recurses: a body of a few thousand ``[`` raises ``RecursionError``, which
is not a ``ValueError`` and would leave a caller unclassified. ``parse_json_body`` counts the
nesting with a flat scan first, so a hostile body never reaches the recursive parser, refuses the
non-standard constants ``NaN``/``Infinity`` (no database stores them alike), and turns every other
parse failure (syntax, bad UTF-8, a 4300-digit integer) into ``BodyNotJson``, whose message names
the problem and never quotes the body.

Used for every JSON the hub reads: REST answers (``connectors.transports.rest``, so every REST back
office and the CRM client) and the CRM's webhook bodies (``crm_adapter``).
"""
from __future__ import annotations

import json
import re
from typing import Any

DEFAULT_MAX_DEPTH = 64
"""Deepest array/object nesting accepted unless the caller says otherwise (``ConnectorConfig``'s
``max_answer_depth`` default)."""

_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class BodyNotJson(ValueError):
    """A body that is not a JSON document the hub accepts (syntax, NaN/Infinity, nesting)."""


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when ``body`` nests arrays/objects deeper than ``limit`` (brackets inside strings do
    not count)."""
    depth = 0
    for match in _JSON_TOKENS.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _no_constants(name: str) -> Any:
    raise BodyNotJson(f"{name} is not a JSON number")


def parse_json_body(body: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The JSON document in ``body``, or ``BodyNotJson`` (never a value in the message)."""
    if json_depth_exceeds(body, max_depth):
        raise BodyNotJson(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(body, parse_constant=_no_constants)
    except BodyNotJson:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, 4300-digit ints
        raise BodyNotJson(f"not valid JSON ({type(exc).__name__})") from None
