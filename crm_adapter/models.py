"""What the hub exchanges with the CRM: a case (in) and a write-back (out)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field,
                      StringConstraints, ValidationError, field_validator)

from connectors.transports.jsonreader import parse_json_body as _parse_json

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


Channel = Literal["telephone", "face_to_face", "web", "email", "other"]
_CHANNELS = {"telephone": "telephone", "phone": "telephone", "tel": "telephone", "call": "telephone",
             "face_to_face": "face_to_face", "face-to-face": "face_to_face", "face to face": "face_to_face",
             "f2f": "face_to_face", "in_person": "face_to_face", "counter": "face_to_face",
             "web": "web", "online": "web", "web_form": "web", "webform": "web", "portal": "web",
             "app": "web", "email": "email", "e-mail": "email", "e_mail": "email", "mail": "email"}


def normalise_channel(value: Any) -> str | None:
    """A CRM's channel word as one of ``Channel``; unknown words are ``other``, absence is None."""
    if value is None or not isinstance(value, str) or not value.strip():
        return None
    return _CHANNELS.get(value.strip().lower()[:40], "other")


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
    channel: Channel | None = None
    """How the customer came (telephone, face_to_face, web, email; anything else is ``other``)."""
    created_at: AwareDatetime | None = None
    """When the request was first recorded in the CRM (optional; else version 1's ``updated_at``)."""

    @field_validator("channel", mode="before")
    @classmethod
    def _channel(cls, value: Any) -> str | None:
        return normalise_channel(value)

    @field_validator("created_at", mode="wrap")
    @classmethod
    def _created_at(cls, value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError:   # an optional field the hub can do without: read tolerantly
            return None

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


class CaseRefused(ValueError):
    """Raised by a case store when it refuses a case for good (its data, not an outage): the
    delivery is answered 422 and kept as an inbound rejection, never 503 (the CRM would retry
    for ever)."""


def parse_json_body(body: bytes) -> Any:
    """The JSON document in a webhook body, nested at most ``MAX_DEPTH`` levels, or
    ``BodyNotJson`` (never a value in the message)."""
    return _parse_json(body, max_depth=MAX_DEPTH)


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


MAX_CRM_STATUS = 80        # a CRM status word
MAX_BACKOFFICE_REFERENCE = 200
MAX_BACKOFFICE_SYSTEM = 100


class CrmCaseState(BaseModel):
    """What the CRM shows for a case now: its status and the back-office reference and system the
    hub wrote back (``GET /api/v1/case-states``, docs/crm.md). Reconciliation compares it with the
    ledger's outbox. Read tolerantly: fields the CRM adds are ignored, an unreadable ``updated_at``
    is None, an empty reference or system is None."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    crm_id: CrmId
    status: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CRM_STATUS,
                                             strip_whitespace=True), AfterValidator(_plain_text)]
    backoffice_reference: Annotated[str, StringConstraints(max_length=MAX_BACKOFFICE_REFERENCE,
                                                           strip_whitespace=True),
                                    AfterValidator(_plain_text)] | None = None
    backoffice_system: Annotated[str, StringConstraints(max_length=MAX_BACKOFFICE_SYSTEM,
                                                        strip_whitespace=True),
                                 AfterValidator(_plain_text)] | None = None
    updated_at: datetime | None = None
    """When the state last changed in the CRM (aware; a naive or unreadable value is None)."""

    @field_validator("backoffice_reference", "backoffice_system")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("updated_at", mode="wrap")
    @classmethod
    def _updated_at(cls, value: Any, handler: Any) -> Any:
        try:
            parsed = handler(value)
        except ValidationError:   # optional: the hub can do without it
            return None
        return parsed if parsed is None or parsed.tzinfo is not None else None


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
