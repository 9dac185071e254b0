"""Field types shared by operation models of several connectors."""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

_POSTCODE = re.compile(r"^(GIR ?0AA|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})$")

#: What a back-office reference may look like: it starts with a letter or digit, holds letters,
#: digits and ``space . _ / : # -``, and fits the ledger's reference column (120 characters).
REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/:#-]{0,119}")
#: Words that are what a missing value turned into text, never a reference.
NOT_A_REFERENCE = frozenset({"none", "null", "nil", "undefined", "nan", "n/a"})


#: A back-office status word: letters, digits, spaces, ``_`` and ``-``, as the ledger stores it
#: (``backoffice_updates.status`` holds 40 characters).
STATUS_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,39}")


def is_status_word(value: object) -> bool:
    """True for a plausible status word; False for markup, empty or over-long text."""
    return isinstance(value, str) and STATUS_WORD.fullmatch(value.strip()) is not None


def is_reference(value: object) -> bool:
    """True for a plausible back-office reference; False for markup, placeholders, empty text."""
    return (isinstance(value, str) and value.strip().lower() not in NOT_A_REFERENCE
            and REFERENCE.fullmatch(value.strip()) is not None)


def aware_time(value: object) -> datetime | None:
    """An RFC 3339 / ISO 8601 time with an offset, in UTC; None for anything else (a time
    without an offset is ambiguous, and is never guessed)."""
    try:
        moment = datetime.fromisoformat(value.strip()) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment.astimezone(timezone.utc) if moment is not None and moment.tzinfo else None


def normalise_postcode(value: str) -> str:
    """Upper-case UK postcode with a single space before the inward code."""
    compact = re.sub(r"\s+", "", value or "").upper()
    if not _POSTCODE.match(compact):
        raise ValueError("not a UK postcode")
    return f"{compact[:-3]} {compact[-3:]}"


Postcode = Annotated[str, AfterValidator(normalise_postcode)]
SortCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
BankAccountNumber = Annotated[str, StringConstraints(pattern=r"^\d{8}$")]
Uprn = Annotated[str, StringConstraints(pattern=r"^\d{1,12}$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


class OperationModel(BaseModel):
    """Base of every operation payload: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Address(OperationModel):
    line1: NonEmpty
    line2: str | None = None
    town: NonEmpty
    postcode: Postcode


def flat_fields(values: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """A validated payload (or its ``model_dump(mode="json")``) as ``{dotted name: JSON value}``:
    nested models become ``applicant.name``, lists and scalars stay as they are, ``None`` is kept.

    This is the form of ``BackOfficeRecord.fields``: a connector reports what the back office holds
    under these names, and reconciliation compares them with ``flat_fields`` of the payload the
    hub sent (validated by the operation's model), name by name."""
    dumped = values.model_dump(mode="json") if isinstance(values, BaseModel) else dict(values)
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for name, item in value.items():
                walk(f"{prefix}.{name}" if prefix else str(name), item)
        else:
            flat[prefix] = value

    walk("", dumped)
    return flat
