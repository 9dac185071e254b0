"""Sample data for the housing repairs simulator: council properties, trades, appointment slots and
the CRM's repair-request cases that refer to them. Every address and name is invented."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

PROPERTIES = 30
#: A real address in the area, but not council housing: the repairs system refuses it.
PRIVATE_UPRN = "200199999999"
TRADES = {"PLUMBING": "Plumbing", "HEATING": "Heating and hot water", "ELECTRICAL": "Electrics",
          "CARPENTRY": "Carpentry and doors", "ROOFING": "Roofs and gutters",
          "GLAZING": "Windows and glazing", "DAMP_AND_MOULD": "Damp and mould",
          "GENERAL": "General repairs"}
SLOT_DAYS = 28
HALVES = {"AM": ("08:00", "12:00"), "PM": ("12:00", "16:00")}
SLOT_CAPACITY = 3


def uprn(n: int) -> str:
    """The n-th council property (1-based)."""
    return f"2001{n:08d}"


def properties() -> list[str]:
    return [uprn(n) for n in range(1, PROPERTIES + 1)]


def working_days(start: date, days: int = SLOT_DAYS) -> list[date]:
    return [d for d in (start + timedelta(days=i) for i in range(1, days + 1)) if d.weekday() < 5]


def slot_id(trade: str, day: date, half: str) -> str:
    return f"{trade[:4]}-{day:%Y%m%d}-{half}"


def slots(start: date) -> list[dict[str, Any]]:
    """Slots from the day after ``start``: every fourth working day's morning is fully booked."""
    out = []
    for i, day in enumerate(working_days(start)):
        for trade in TRADES:
            for half, (begin, end) in HALVES.items():
                full = i % 4 == 3 and half == "AM"
                out.append({"slot_id": slot_id(trade, day, half), "date": day.isoformat(),
                            "start": begin, "end": end, "trade": trade,
                            "capacity": 0 if full else SLOT_CAPACITY})
    return out


def _case(n: int, trade_words: str, priority: str, room: str, detail: str, description: str,
          **extra: Any) -> dict[str, Any]:
    people = ["Morgan Hughes", "Priya Okafor", "Sam Nowak", "Jo Clarke", "Kwame Evans",
              "Siobhan Patel", "Drew Murphy", "Robin Khan"]
    person = {"name": people[n % len(people)], "phone": f"01632 96{n:04d}"}
    return {"case_type": "housing_repair_request", "data": {
        "customer": person, "contact": dict(person),
        "property": {"uprn": uprn(1 + (n * 7) % PROPERTIES)},
        "repair": {"trade": trade_words, "priority": priority, "room": room,
                   "location_detail": detail, "description": description},
        "access_notes": "Please call 30 minutes before arriving", **extra}}


def sample_cases(today: date) -> list[dict[str, Any]]:
    """CRM ``housing_repair_request`` cases: most go through; one is at a private address (the
    back office refuses it) and one asks for a fully booked slot (refused too)."""
    days = working_days(today)
    open_day, full_day = days[0], days[3]
    cases = [
        _case(1, "Plumbing", "urgent", "kitchen", "under the sink",
              "Leak from the waste pipe, bucket under it",
              appointment={"slot_id": slot_id("PLUMBING", open_day, "PM")}),
        _case(2, "Heating and hot water", "emergency", "hallway", "boiler cupboard",
              "No heating or hot water since last night"),
        _case(3, "Windows and glazing", "routine", "bedroom", "rear window",
              "Cracked pane, window still closes"),
        _case(4, "Damp and mould", "routine", "bathroom", "ceiling above the bath",
              "Black mould spreading on the ceiling"),
        _case(5, "Electrics", "urgent", "living room", "socket by the door",
              "Socket sparks when a plug is pushed in"),
        _case(6, "Carpentry and doors", "routine", "hallway", "front door",
              "Front door sticks and will not lock easily"),
        _case(7, "Plumbing", "routine", "bathroom", "toilet", "Toilet keeps running after flushing"),
    ]
    private = _case(8, "Roofs and gutters", "routine", "outside", "front gutter",
                    "Gutter overflowing onto the path")
    private["data"]["property"]["uprn"] = PRIVATE_UPRN
    booked = _case(9, "Electrics", "routine", "kitchen", "ceiling light",
                   "Kitchen light flickers",
                   appointment={"slot_id": slot_id("ELECTRICAL", full_day, "AM")})
    return [*cases, private, booked]
