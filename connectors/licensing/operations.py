"""Operations the Licensing system (Idox Uniform style) accepts, as payload models.

One operation per licence kind, so that each kind's required fields are checked before sending:

- ``licence.premises``: premises licence (Licensing Act 2003) for premises in the system's list.
- ``licence.taxi_driver``: hackney carriage driver licence.
- ``licence.private_hire_driver``: private hire driver licence.
- ``licence.street_trading``: street trading consent for a pitch.
- ``licence.animal_establishment``: animal activity licence for premises in the system's list.

The payment reference is optional here: whether a fee is due is the licensing system's own rule
(its licence-type table), so a missing one is refused by the back office, naming ``payment_ref``.
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StringConstraints

from connectors.fields import Address, OperationModel


def _upper(value: object) -> object:
    """References are compared upper-case and without surrounding spaces (before the pattern)."""
    return value.strip().upper() if isinstance(value, str) else value


Upper = BeforeValidator(_upper)
PremisesRef = Annotated[str, Upper, StringConstraints(pattern=r"^PR\d{5}$")]
PaymentRef = Annotated[str, Upper, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9/-]{3,39}$")]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254,
                                         pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ]{7,20}$")]
#: DVLA driving licence number: 5 surname characters, 6 digits, 2 initials, 1 digit, 2 letters.
DrivingLicenceNumber = Annotated[str, Upper, StringConstraints(
    pattern=r"^[A-Z9]{5}\d{6}[A-Z9]{2}\d[A-Z]{2}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Applicant(OperationModel):
    """The person (or, for premises, the business contact) applying."""

    name: Name
    date_of_birth: date | None = None
    email: Email | None = None
    phone: Phone | None = None
    address: Address | None = None


class DriverApplicant(Applicant):
    """A driver: the date of birth is required (the back office checks the minimum age)."""

    date_of_birth: date


class PremisesLicence(OperationModel):
    applicant: Applicant
    premises_ref: PremisesRef
    activities: list[Literal["sale_of_alcohol", "regulated_entertainment",
                             "late_night_refreshment"]] = Field(min_length=1, max_length=3)
    payment_ref: PaymentRef | None = None


class DriverLicence(OperationModel):
    """Hackney carriage (taxi) or private hire driver."""

    applicant: DriverApplicant
    driving_licence_number: DrivingLicenceNumber
    payment_ref: PaymentRef | None = None


class StreetTradingConsent(OperationModel):
    applicant: Applicant
    pitch: Description
    """Where the pitch is (a place, not a person's address)."""
    commodities: Description
    payment_ref: PaymentRef | None = None


class AnimalEstablishmentLicence(OperationModel):
    applicant: Applicant
    premises_ref: PremisesRef
    activity: Literal["selling_animals_as_pets", "boarding_cats_or_dogs", "hiring_out_horses",
                      "dog_breeding", "keeping_animals_for_exhibition"]
    payment_ref: PaymentRef | None = None


OPERATIONS: dict[str, type[OperationModel]] = {
    "licence.premises": PremisesLicence,
    "licence.taxi_driver": DriverLicence,
    "licence.private_hire_driver": DriverLicence,
    "licence.street_trading": StreetTradingConsent,
    "licence.animal_establishment": AnimalEstablishmentLicence,
}
