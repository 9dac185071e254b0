"""Operations the housing repairs system accepts, as payload models (codes as the system has them)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from connectors.fields import NonEmpty, OperationModel, Uprn

Trade = Literal["PLUMBING", "HEATING", "ELECTRICAL", "CARPENTRY", "ROOFING", "GLAZING",
                "DAMP_AND_MOULD", "GENERAL"]


class RepairRequest(OperationModel):
    """Raise a repair job at a council property; the command key is its client reference."""

    uprn: Uprn
    priority: Literal["EMERGENCY", "URGENT", "ROUTINE"]
    trade: Trade
    description: NonEmpty = Field(max_length=2000)
    room: NonEmpty | None = Field(default=None, max_length=60)
    location_detail: NonEmpty | None = Field(default=None, max_length=200)
    access_notes: NonEmpty | None = Field(default=None, max_length=500)
    contact_name: NonEmpty | None = Field(default=None, max_length=100)
    contact_phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ()-]{6,20}$")
    appointment_slot_id: NonEmpty | None = Field(default=None, max_length=40)
    """A slot from ``lookup("housing.appointment_slots", ...)``; refused when no longer free."""


class CancelRepair(OperationModel):
    """Cancel the open repair jobs raised for the same CRM case."""

    reason: NonEmpty | None = Field(default=None, max_length=500)


OPERATIONS: dict[str, type[OperationModel]] = {
    "housing.repair_request": RepairRequest,
    "housing.cancel_repair": CancelRepair,
}
