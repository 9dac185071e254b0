"""What the hub exchanges with the CRM: a case (in) and a write-back (out)."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field,
                      StringConstraints, ValidationError, field_validator)

#: Limits at the edge, matching the ledger's columns (hub.ledger.models) so that every database
#: answers the same input the same way: a value that does not fit is refused here, by name.
MAX_CRM_ID = 64            # cases.crm_id String(64)
MAX_CASE_TYPE = 80         # cases.case_type String(80)
MAX_DELIVERY_ID = 120      # webhook_deliveries.delivery_id, inbound_rejections.delivery_id
MAX_VERSION = 2**31 - 1    # cases.version Integer
MAX_DEPTH = 32             # JSON nesting of a whole case (the case object is level 1)
MAX_KEY = 200              # a key in ``data``
MAX_SAFE_INTEGER = 2**53 - 1   # beyond it JSON numbers lose precision in most consumers
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ValueAt(ValueError):
    """A value at ``path`` (``data.customer.name``) is not acceptable; the message names the
    problem, never the value."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _plain_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    if _CONTROL.search(value):
        raise ValueError("contains a control character")
    return value


CrmId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CRM_ID,
                                         strip_whitespace=True), AfterValidator(_plain_text)]

#: Status words the CRM shows the contact-centre agent for a case.
WriteBackStatus = Literal["in_progress", "completed", "needs_review", "rejected"]


class CrmCase(BaseModel):
    """One version of a CRM case. The hub records it idempotently on ``(crm_id, version)``.

    Fields the CRM adds beyond these (status, notes...) are ignored.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    crm_id: CrmId
    version: int = Field(ge=1, le=MAX_VERSION)
    """Goes up by one each time the case's data changes in the CRM."""
    case_type: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CASE_TYPE),
                         AfterValidator(_plain_text)]
    updated_at: AwareDatetime
    data: dict[str, Any]
    """The case's fields as the CRM holds them (may contain personal data: never log)."""

    @field_validator("data")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Every value can be stored and read back the same on SQLite, PostgreSQL and MariaDB:
        no NUL or unpaired surrogate in any text, integers within the safe range, finite
        numbers, bounded nesting and key length."""
        for path, problem in unstorable(value, "data", depth=2):
            raise ValueAt(path, problem)
        return value


def unstorable(value: Any, path: str, *, depth: int = 1) -> Iterator[tuple[str, str]]:
    """(path, problem) for each value a JSON column cannot hold the same everywhere."""
    if depth > MAX_DEPTH:
        yield path, f"nested deeper than {MAX_DEPTH} levels"
        return
    if isinstance(value, str):
        if "\x00" in value:
            yield path, "contains a NUL character"
        else:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                yield path, "contains an unpaired surrogate"
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            yield path, f"integer outside +/-{MAX_SAFE_INTEGER}"
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            yield path, "not a finite number"
    elif isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if len(name) > MAX_KEY or "\x00" in name or _CONTROL.search(name):
                yield f"{path}.<key>", f"a key is longer than {MAX_KEY} or holds control characters"
                continue
            yield from unstorable(item, f"{path}.{name}", depth=depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unstorable(item, f"{path}[{index}]", depth=depth + 1)


_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth_exceeds(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when ``body`` nests arrays/objects deeper than ``limit`` (checked before parsing, so a
    hostile body never reaches the recursive parser)."""
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


class CaseRefused(ValueError):
    """Raised by a case store when it refuses a case for good (its data, not an outage): the
    delivery is answered 422 and kept as an inbound rejection, never 503 (the CRM would retry
    for ever)."""


class BodyNotJson(ValueError):
    """A body that is not a JSON document the hub accepts (syntax, NaN/Infinity, nesting)."""


def _no_constants(name: str) -> Any:
    raise BodyNotJson(f"{name} is not a JSON number")


def parse_json_body(body: bytes) -> Any:
    """The JSON document in ``body``, or ``BodyNotJson`` (never a value in the message)."""
    if json_depth_exceeds(body):
        raise BodyNotJson(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(body, parse_constant=_no_constants)
    except BodyNotJson:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, 4300-digit ints
        raise BodyNotJson(f"not valid JSON ({type(exc).__name__})") from None


class WriteBack(BaseModel):
    """An outcome the hub reports back to a CRM case (closed loop)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    """The hub's outbox id; the CRM applies each key once."""
    status: WriteBackStatus
    note: Annotated[str, StringConstraints(max_length=4000)]
    """Shown to the contact-centre agent; no personal data is needed."""
    backoffice_reference: str | None = None
    backoffice_system: str | None = None


def _location(error: Any) -> str:
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ValueAt):
        return cause.path
    return ".".join(str(p) for p in error["loc"]) or "body"


def _message(error: Any) -> str:
    cause = (error.get("ctx") or {}).get("error")
    return cause.problem if isinstance(cause, ValueAt) else error["msg"]


def validation_summary(exc: ValidationError) -> str:
    """``field: message; ...`` for a validation error, without the offending values."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        parts.append(f"{_location(error)}: {_message(error)}")
    return "; ".join(parts)


def invalid_fields(exc: ValidationError) -> list[str]:
    """The dotted names of the fields a validation error is about."""
    return sorted({_location(e) for e in exc.errors(include_input=False, include_url=False)})
