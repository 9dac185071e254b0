"""Operations the Revenues system (Council Tax and Business Rates) accepts, as payload models.

Mappings target these names and fields; the loader refuses a mapping that names anything else.
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from connectors.fields import Address, BankAccountNumber, NonEmpty, OperationModel, SortCode

CtaxAccountRef = Annotated[str, StringConstraints(pattern=r"^CT\d{8}$")]
NndrAccountRef = Annotated[str, StringConstraints(pattern=r"^NR\d{8}$")]
PropertyRef = Annotated[str, StringConstraints(pattern=r"^P\d{6}$")]


class ChangeOfAddress(OperationModel):
    """Move Out of the current property, Move In at the new one (if in the area), then rebill."""

    account_ref: CtaxAccountRef
    moved_on: date
    new_property_ref: PropertyRef | None = None
    """The new property when it is in the council's area (a Move In follows the Move Out)."""
    forwarding_address: Address | None = None
    """Where to send the final bill when the customer leaves the area."""

    @model_validator(mode="after")
    def _somewhere_to_go(self) -> "ChangeOfAddress":
        if self.new_property_ref is None and self.forwarding_address is None:
            raise ValueError("new_property_ref or forwarding_address is required")
        return self


class SinglePersonDiscount(OperationModel):
    account_ref: CtaxAccountRef
    effective_from: date
    adults_resident: int = Field(ge=0, le=20)


class DirectDebitSetup(OperationModel):
    account_ref: CtaxAccountRef
    account_holder: NonEmpty
    sort_code: SortCode
    account_number: BankAccountNumber
    payment_day: Literal[1, 8, 15, 22, 28]


class BusinessRatesRelief(OperationModel):
    account_ref: NndrAccountRef
    relief_type: Literal["SBRR", "CHARITABLE", "RURAL", "HARDSHIP"]
    effective_from: date


OPERATIONS: dict[str, type[OperationModel]] = {
    "ctax.change_of_address": ChangeOfAddress,
    "ctax.single_person_discount": SinglePersonDiscount,
    "ctax.direct_debit": DirectDebitSetup,
    "nndr.relief_application": BusinessRatesRelief,
}
