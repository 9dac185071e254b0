"""Field types shared by operation models of several connectors."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

_POSTCODE = re.compile(r"^(GIR ?0AA|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})$")


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
