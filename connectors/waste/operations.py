"""Operations the Waste system (Bartec Collective style) accepts, as payload models.

Mappings target these names and fields; the loader refuses a mapping that names anything else.
Both operations become a Bartec service request whose ``ExternalReference`` is the command key.
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from connectors.fields import NonEmpty, OperationModel, Uprn

BinType = Literal["refuse", "recycling", "garden", "food"]
ItemName = Annotated[str, StringConstraints(min_length=1, max_length=60, strip_whitespace=True)]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{6,20}$")]
NoteText = Annotated[str, StringConstraints(max_length=500, strip_whitespace=True)]


class BulkyItem(OperationModel):
    """One thing to collect (``Sofa`` x 1)."""

    name: ItemName
    quantity: int = Field(default=1, ge=1, le=10)


class BulkyCollection(OperationModel):
    """Book a bulky-waste special collection at a premises on an offered slot date."""

    uprn: Uprn
    slot_date: date
    """A date from ``lookup("waste.collection_slots", ...)``; refused if no longer available."""
    items: tuple[BulkyItem, ...] = Field(min_length=1, max_length=10)
    contact_name: NonEmpty | None = None
    contact_phone: Phone | None = None
    note: NoteText | None = None
    """Where the items will be left, access notes: added to the request as a note."""


class MissedBin(OperationModel):
    """Report a missed bin collection at a premises."""

    uprn: Uprn
    bin_type: BinType
    collection_date: date
    """The scheduled collection that was missed; refused when it is not yet due."""
    note: NoteText | None = None


OPERATIONS: dict[str, type[OperationModel]] = {
    "waste.bulky_collection": BulkyCollection,
    "waste.missed_bin": MissedBin,
}
