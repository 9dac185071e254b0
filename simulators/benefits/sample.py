"""Demo data for the Benefits simulator: the claims it knows and CRM cases that change them.

Everything here is invented. Two of the sample cases are refused by the back office: one names a
claim it does not know, one says work stopped before the date the claim records it started.
"""
from __future__ import annotations

import random
from typing import Any

SEED = 2005 + 31
TOWN = "EXAMPLETON"
CLAIMS = 30
#: A claim reference the back office does not know (the agent mistyped it).
UNKNOWN_CLAIM = "HB9999901"
#: A claim whose recorded employment started on 2026-03-02.
EMPLOYED_CLAIM = "HB0000004"
CLOSED_CLAIM = "HB0000030"

_FIRST = ["Alex", "Sam", "Jo", "Chris", "Pat", "Robin", "Morgan", "Jamie", "Casey", "Drew"]
_LAST = ["Smith", "Jones", "Taylor", "Brown", "Evans", "Patel", "Khan", "Nowak", "Okafor"]
_STREETS = ["Mill Lane", "Church Street", "Station Road", "Park Crescent", "Castle Way"]
_EMPLOYERS = ["Exampleton Care Ltd", "Riverside Foods", "Castle Way Garage", "Market Place Cafe"]


def claim_ref(n: int) -> str:
    return f"HB{n:07d}"


def claims() -> list[dict[str, Any]]:
    """Housing Benefit claims held by the back office (seeded by ``--seed-demo``)."""
    rng = random.Random(SEED)
    result = []
    for n in range(1, CLAIMS + 1):
        ref = claim_ref(n)
        employed = n % 4 == 0
        result.append({
            "claim_ref": ref,
            "status": "closed" if ref == CLOSED_CLAIM else "live",
            "claimant": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            "weekly_award": f"{60 + n * 3.25:.2f}",
            "household_size": 1 + n % 4,
            "employment_started_on": ("2026-03-02" if ref == EMPLOYED_CLAIM
                                      else "2025-09-01" if employed else None),
        })
    return result


def _customer(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return {"name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}{rng.randint(1, 999)}@example.org",
            "phone": f"01632 {rng.randint(100000, 999999)}"}


def _case(rng: random.Random, i: int, change: str, claim: str, when: str) -> dict[str, Any]:
    data: dict[str, Any] = {"customer": _customer(rng), "claim_reference": claim,
                            "change": change, "effective_date": when}
    if change == "new_address":
        data["new_address"] = {"line1": f"{rng.randint(1, 90)} {_STREETS[i % len(_STREETS)]}",
                               "line2": "", "town": TOWN, "postcode": f"EX{1 + i % 9} {1 + i % 9}HQ"}
        data["weekly_rent"] = f"{95 + i * 2.5:.2f}"
    elif change == "household":
        joined = i % 2 == 0
        data["household"] = {"action": "joined" if joined else "left",
                             "relationship": ["partner", "child", "non_dependant"][i % 3],
                             "name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                             "date_of_birth": f"{1960 + i * 3}-0{1 + i % 9}-1{i % 9}"}
    elif change == "income":
        data["income"] = {"type": ["earnings", "pension", "maintenance"][i % 3],
                          "amount": f"{120 + i * 7.4:.2f}",
                          "frequency": ["weekly", "monthly", "four_weekly"][i % 3]}
    elif change in ("started_work", "stopped_work"):
        data["work"] = {"employer": _EMPLOYERS[i % len(_EMPLOYERS)]}
        if change == "started_work":
            data["work"].update({"hours_per_week": 16 + i, "expected_pay": f"{180 + i * 10:.2f}",
                                 "pay_frequency": "weekly"})
    return data


def sample_cases() -> list[dict[str, Any]]:
    """CRM cases of type ``hb_change_of_circumstances``: ``{"case_type", "data"}``; two refused."""
    rng = random.Random(SEED + 1)
    plan = [
        ("new_address", claim_ref(1), "2026-02-02"),
        ("household", claim_ref(2), "2026-02-09"),
        ("income", claim_ref(3), "2026-02-16"),
        ("started_work", claim_ref(5), "2026-03-02"),
        ("stopped_work", claim_ref(8), "2026-03-13"),
        ("new_address", UNKNOWN_CLAIM, "2026-03-16"),          # refused: unknown claim reference
        ("household", claim_ref(9), "2026-03-23"),
        ("income", claim_ref(10), "2026-03-30"),
        ("stopped_work", EMPLOYED_CLAIM, "2026-01-15"),       # refused: end of work before start
        ("new_address", claim_ref(11), "2026-04-06"),
        ("income", claim_ref(13), "2026-04-13"),
        ("started_work", claim_ref(14), "2026-04-20"),
    ]
    return [{"case_type": "hb_change_of_circumstances", "data": _case(rng, i, *row)}
            for i, row in enumerate(plan)]
