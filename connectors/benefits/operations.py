"""Operations the Benefits system (Housing Benefit, Academy style) accepts, as payload models.

Each operation is a change of circumstances on an existing claim. They travel to the back office in a
daily file (``connectors.benefits.fileformat``); mappings target these names and fields.
Money is in pounds with two decimal places (``"123.45"``), dates are ISO dates.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from connectors.fields import Address, NonEmpty, OperationModel

ClaimRef = Annotated[str, StringConstraints(pattern=r"^HB\d{7}$")]
Money = Annotated[Decimal, Field(ge=0, max_digits=9, decimal_places=2)]
Frequency = Literal["weekly", "fortnightly", "four_weekly", "monthly", "annual"]


class ClaimChange(OperationModel):
    """Base of every change: the claim it applies to and the date it takes effect."""

    claim_ref: ClaimRef

    def effective_date(self) -> date:
        """The date the change takes effect (named differently per change)."""
        raise NotImplementedError


class NewAddress(ClaimChange):
    """The claimant moved; rent at the new address, when known."""

    moved_on: date
    new_address: Address
    weekly_rent: Money | None = None

    def effective_date(self) -> date:
        return self.moved_on


class HouseholdChange(ClaimChange):
    """Someone joined or left the household."""

    effective_from: date
    action: Literal["joined", "left"]
    relationship: Literal["partner", "child", "non_dependant"]
    member_name: NonEmpty
    member_date_of_birth: date | None = None

    def effective_date(self) -> date:
        return self.effective_from


class IncomeChange(ClaimChange):
    """An income started, stopped or changed amount."""

    effective_from: date
    income_type: Literal["earnings", "pension", "universal_credit", "other_benefit",
                         "maintenance", "other"]
    amount: Money
    frequency: Frequency

    def effective_date(self) -> date:
        return self.effective_from


class StartedWork(ClaimChange):
    """The claimant (or partner) started a job."""

    started_on: date
    employer: NonEmpty
    hours_per_week: float = Field(gt=0, le=100)
    expected_pay: Money | None = None
    pay_frequency: Frequency | None = None

    def effective_date(self) -> date:
        return self.started_on


class StoppedWork(ClaimChange):
    """The claimant (or partner) stopped work; the back office checks it against the start date."""

    ended_on: date
    employer: NonEmpty
    last_paid_on: date | None = None

    def effective_date(self) -> date:
        return self.ended_on


OPERATIONS: dict[str, type[ClaimChange]] = {
    "hb.new_address": NewAddress,
    "hb.household_change": HouseholdChange,
    "hb.income_change": IncomeChange,
    "hb.started_work": StartedWork,
    "hb.stopped_work": StoppedWork,
}
