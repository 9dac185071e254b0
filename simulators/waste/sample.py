"""Demo data for the waste simulator: premises, service types, bulky slots and sample CRM cases.

Everything is invented and deterministic (dates are relative to ``today`` so that slots lie ahead).
The sample CRM cases refer to these premises; two are refused by the back office for realistic
reasons (a fully booked slot, a missed-bin report for a collection not yet due).
"""
from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from simulators.world import TOWN

SEED = 2011
PREMISES = 30
_STREETS = ["ORCHARD ROAD", "MILL LANE", "HIGH STREET", "WILLOW CLOSE", "QUARRY HILL", "BROOK WAY"]
_FIRST = ["Alex", "Sam", "Jo", "Priya", "Tomasz", "Aisha", "Gareth", "Siobhan", "Kwame", "Drew"]
_LAST = ["Smith", "Jones", "Patel", "Nowak", "Okafor", "Hughes", "Murphy", "Clarke"]

#: A UPRN the back office does not hold (the CRM agent mistyped it).
UNKNOWN_UPRN = "100099999999"
BIN_TYPES = ("refuse", "recycling", "garden", "food")

#: (id, name, class, kind, bin type): the service catalogue (ServiceRequests_Types_Get).
SERVICE_TYPES: list[tuple[int, str, str, str, str | None]] = [
    (101, "BULKY COLLECTION", "BULKY WASTE", "bulky", None),
    (111, "MISSED REFUSE", "MISSED COLLECTION", "missed", "refuse"),
    (112, "MISSED RECYCLING", "MISSED COLLECTION", "missed", "recycling"),
    (113, "MISSED GARDEN", "MISSED COLLECTION", "missed", "garden"),
    (114, "MISSED FOOD", "MISSED COLLECTION", "missed", "food"),
    (120, "FLY TIPPING", "STREET CLEANSING", "other", None),
]
BULKY_TYPE_ID = 101

#: (id, description): the note types a note may carry (ServiceRequests_Notes_Types_Get).
NOTE_TYPES: list[tuple[int, str]] = [(1, "GENERAL"), (2, "CRM NOTE"), (3, "CREW NOTE")]

#: Extended-data record definitions by id: (name, [(field name, data type, mandatory,
#: repeating)]); a service type of each kind refers to one (System_ExtendedDataDefinitions_Get).
EXTENDED_DATA_DEFINITIONS: dict[int, tuple[str, list[tuple[str, str, bool, bool]]]] = {
    2: ("BULKY COLLECTION", [("SLOT_DATE", "DATE", True, False), ("ITEM", "TEXT", True, True)]),
    3: ("MISSED COLLECTION", [("COLLECTION_DATE", "DATE", True, False),
                              ("BIN_TYPE", "TEXT", True, False)]),
}
DEFINITION_BY_KIND = {"bulky": 2, "missed": 3}

#: Closing codes crews give when they finish a request.
CLOSING_CODES = ("COLLECTED", "NO ACCESS", "NOT PRESENTED", "CONTAMINATED")


def uprn(n: int) -> str:
    return f"1000900000{n:02d}"


def premises() -> list[dict[str, Any]]:
    """Premises the back office holds: UPRN, USRN, address, ward/parish, bins, collection weekday."""
    rng = random.Random(SEED)
    rows = []
    for n in range(1, PREMISES + 1):
        street = _STREETS[n % len(_STREETS)]
        bins = ["refuse", "recycling"] + (["garden"] if n % 2 == 0 else []) + (["food"] if n % 3 else [])
        rows.append({
            "uprn": uprn(n), "usrn": f"2000{n % len(_STREETS):04d}",
            "address1": "", "address2": str(rng.randint(1, 140)), "street": street,
            "locality": "", "town": TOWN, "postcode": f"EX{1 + n % 6} {1 + n % 9}{'ABDEFGHJLN'[n % 10]}W",
            "ward_id": 2500 + n % 4, "ward_code": f"E0501{n % 4:04d}", "ward_name": f"EXAMPLETON WARD {1 + n % 4}",
            "parish_id": 14100 + n % 3, "parish_code": f"00XX0{n % 3:02d}", "parish_name": f"PARISH {1 + n % 3}",
            "easting": 516000.0 + n * 17.5, "northing": 295000.0 + n * 11.25,
            "latitude": round(52.54 + n * 0.0001, 6), "longitude": round(-0.289 - n * 0.0001, 6),
            "bins": bins, "collection_weekday": n % 5,
        })
    return rows


def bulky_slots(today: date) -> list[tuple[date, int]]:
    """(date, capacity) for bulky collections: working days from two days ahead for ~6 weeks.
    Every fifth working day is already fully booked (capacity 0)."""
    slots: list[tuple[date, int]] = []
    day = today + timedelta(days=2)
    while len(slots) < 30:
        if day.weekday() < 5:
            slots.append((day, 0 if len(slots) % 5 == 3 else 3))
        day += timedelta(days=1)
    return slots


def _person(rng: random.Random) -> dict[str, str]:
    return {"name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            "phone": f"01632 {rng.randint(100000, 999999)}"}


def _last_collection(weekday: int, today: date) -> date:
    back = (today.weekday() - weekday) % 7 or 7
    return today - timedelta(days=back)


def sample_cases(today: date | None = None) -> list[dict[str, Any]]:
    """Twelve CRM cases ``{"case_type", "data"}``: 7 bulky bookings, 5 missed bins; 2 refused."""
    today = today or date.today()
    rng = random.Random(SEED + 1)
    open_slots = [d for d, capacity in bulky_slots(today) if capacity]
    full_slot = next(d for d, capacity in bulky_slots(today) if capacity == 0)
    things = ["Sofa", "Fridge freezer", "Mattress", "Wardrobe", "Washing machine", "Armchair",
              "Dining table", "Bed frame"]
    cases: list[dict[str, Any]] = []
    for i in range(7):
        items = [{"name": things[(i + k) % len(things)], "quantity": 1 + (i + k) % 2}
                 for k in range(1 + i % 3)]
        data = {"uprn": uprn(1 + i * 3), "items": items,
                "slot_date": (full_slot if i == 4 else open_slots[i]).isoformat(),
                "contact": _person(rng),
                "location_notes": ["Front garden", "By the side gate", ""][i % 3]}
        cases.append({"case_type": "waste_bulky_collection", "data": data})
    premises_rows = premises()
    for i in range(5):
        row = premises_rows[2 + i * 5]
        bin_type = row["bins"][i % len(row["bins"])]
        when = _last_collection(row["collection_weekday"], today)
        if i == 3:  # reported before the collection is even due: refused
            when = today + timedelta(days=2)
        cases.append({"case_type": "waste_missed_bin",
                      "data": {"uprn": row["uprn"], "bin_type": bin_type,
                               "collection_date": when.isoformat(),
                               "notes": "Bin left out since early morning" if i % 2 else ""}})
    return cases
