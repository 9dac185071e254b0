"""Demo data for the licensing system: its premises list and CRM licence-application cases.

Every name, date of birth, address and reference here is invented. Two of the twelve cases are
refused by the licensing system: premises not in its premises list (``PR09999``) and a taxi driver
under the minimum age of 21.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from simulators.world import TOWN

CASE_TYPE = "licence_application"
UNKNOWN_PREMISES = "PR09999"

_PREMISES = [
    ("The Red Lion", "12 Market Place", "EX1 1AQ"),
    ("Mill Lane Social Club", "3 Mill Lane", "EX2 2BQ"),
    ("Castle Way Kebabs", "40 Castle Way", "EX3 3DQ"),
    ("Riverside Kennels", "Riverside Farm, Riverside", "EX4 4EQ"),
    ("Station Road Pets", "18 Station Road", "EX5 5FQ"),
    ("The Victoria Arms", "1 Victoria Avenue", "EX6 6GQ"),
    ("Park Crescent Riding School", "Park Crescent", "EX7 7HQ"),
    ("Church Street Wine Bar", "22 Church Street", "EX8 8JQ"),
]


def premises() -> list[dict[str, str]]:
    """The licensing system's premises list (business premises, not personal data)."""
    return [{"premises_ref": f"PR{i:05d}", "name": name, "line1": line1, "town": TOWN,
             "postcode": postcode, "uprn": f"{100090000000 + i}"}
            for i, (name, line1, postcode) in enumerate(_PREMISES, start=1)]


def driving_licence_number(surname: str, forename: str, born: date) -> str:
    """A well-formed (fictitious) DVLA driving licence number."""
    head = "".join(ch for ch in surname.upper() if ch.isalpha())[:5].ljust(5, "9")
    digits = f"{born.year % 100 // 10}{born.month:02d}{born.day:02d}{born.year % 10}"
    return f"{head}{digits}{forename[:1].upper()}9" + "9AB"


def _applicant(forename: str, surname: str, born: str, n: int) -> dict[str, Any]:
    return {"name": f"{forename} {surname}", "date_of_birth": born,
            "email": f"{forename.lower()}.{surname.lower()}@example.org",
            "phone": f"01632 96{n:04d}",
            "address": {"line1": f"{n} Park Crescent", "line2": "", "town": TOWN,
                        "postcode": f"EX{1 + n % 9} {1 + n % 9}PQ"}}


def _premises_case(n: int, forename: str, surname: str, born: str, premises_ref: str,
                   activities: list[str]) -> dict[str, Any]:
    place = next((p for p in premises() if p["premises_ref"] == premises_ref),
                 {"name": "Unknown premises", "line1": "99 Nowhere Street", "town": TOWN,
                  "postcode": "EX9 9ZQ"})
    return {"licence_kind": "premises", "applicant": _applicant(forename, surname, born, n),
            "premises": {"reference": premises_ref, "name": place["name"],
                         "address": {"line1": place["line1"], "town": place["town"],
                                     "postcode": place["postcode"]}},
            "activities": activities,
            "payment": {"reference": f"PAY-2026-{n:06d}", "amount_pence": 31500}}


def _driver_case(n: int, kind: str, forename: str, surname: str, born: str) -> dict[str, Any]:
    return {"licence_kind": kind, "applicant": _applicant(forename, surname, born, n),
            "driving_licence_number": driving_licence_number(surname, forename,
                                                             date.fromisoformat(born)),
            "payment": {"reference": f"PAY-2026-{n:06d}", "amount_pence": 25000}}


def sample_cases() -> list[dict[str, Any]]:
    """Twelve CRM cases ``{"id", "case_type", "data"}``; ten the licensing system accepts."""
    data: list[dict[str, Any]] = [
        _premises_case(1, "Priya", "Patel", "1984-03-12", "PR00001",
                       ["sale_of_alcohol", "regulated_entertainment"]),
        _premises_case(2, "Gareth", "Hughes", "1979-11-02", "PR00003", ["late_night_refreshment"]),
        # Refused: the premises is not in the licensing system's premises list.
        _premises_case(3, "Siobhan", "Murphy", "1990-06-30", UNKNOWN_PREMISES, ["sale_of_alcohol"]),
        _driver_case(4, "taxi_driver", "Kwame", "Okafor", "1988-01-21"),
        _driver_case(5, "taxi_driver", "Tomasz", "Nowak", "1975-09-09"),
        # Refused: a taxi driver must be at least 21.
        _driver_case(6, "taxi_driver", "Jamie", "Clarke", "2007-05-14"),
        _driver_case(7, "private_hire_driver", "Aisha", "Khan", "1993-12-01"),
        _driver_case(8, "private_hire_driver", "Robin", "Evans", "1969-04-18"),
        {"licence_kind": "street_trading",
         "applicant": _applicant("Casey", "Wilson", "1995-02-27", 9),
         "pitch": "Market Place, pitch 4 (outside the town hall)",
         "commodities": "Hot food and drinks",
         "payment": {"reference": "PAY-2026-000009", "amount_pence": 40000}},
        {"licence_kind": "street_trading",
         "applicant": _applicant("Drew", "Brown", "1982-08-08", 10),
         "pitch": "Station Road, junction with Mill Lane",
         "commodities": "Flowers and plants",
         "payment": {"reference": "PAY-2026-000010", "amount_pence": 40000}},
        {"licence_kind": "animal_establishment",
         "applicant": _applicant("Morgan", "Taylor", "1971-10-10", 11),
         "premises": {"reference": "PR00004", "name": "Riverside Kennels",
                      "address": {"line1": "Riverside Farm, Riverside", "town": TOWN,
                                  "postcode": "EX4 4EQ"}},
         "animal_activity": "boarding_cats_or_dogs",
         "payment": {"reference": "PAY-2026-000011", "amount_pence": 30000}},
        {"licence_kind": "animal_establishment",
         "applicant": _applicant("Sam", "Jones", "1986-07-19", 12),
         "premises": {"reference": "PR00005", "name": "Station Road Pets",
                      "address": {"line1": "18 Station Road", "town": TOWN,
                                  "postcode": "EX5 5FQ"}},
         "animal_activity": "selling_animals_as_pets",
         "payment": {"reference": "PAY-2026-000012", "amount_pence": 30000}},
    ]
    return [{"id": f"CRM-LIC-{i:04d}", "case_type": CASE_TYPE, "data": d}
            for i, d in enumerate(data, start=1)]


#: Case ids (from ``sample_cases``) the licensing system refuses, with the field it names.
REFUSED_CASES: dict[str, str] = {"CRM-LIC-0003": "premises_ref",
                                 "CRM-LIC-0006": "applicant.date_of_birth"}
