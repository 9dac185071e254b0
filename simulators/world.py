"""One deterministic, fictitious council area shared by the simulators and the demo.

The CRM simulator's sample cases refer to accounts that the back-office simulators hold, so that most
cases go through and a known few are refused for realistic reasons. Every name, address and bank
detail here is invented. Nothing in the product imports this module.
"""
from __future__ import annotations

import os
import random
from datetime import date
from typing import Any

SEED = 2005
TOWN = "EXAMPLETON"
_FIRST = ["Alex", "Sam", "Jo", "Chris", "Pat", "Robin", "Morgan", "Jamie", "Casey", "Drew",
          "Priya", "Tomasz", "Aisha", "Gareth", "Siobhan", "Kwame"]
_LAST = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Patel", "Khan",
         "Nowak", "Okafor", "Hughes", "Murphy", "Clarke"]
_STREETS = ["Mill Lane", "Church Street", "Station Road", "Victoria Avenue", "Park Crescent",
            "Castle Way", "Riverside", "Market Place"]

CTAX_ACCOUNTS = 40
NNDR_ACCOUNTS = 12
PROPERTIES = 200

#: Council Tax accounts whose moves the back office holds for staff review (business exception).
HELD_MOVE_ACCOUNTS = {"CT00000007", "CT00000021"}
#: Accounts that do not exist in the back office (the CRM agent mistyped them).
UNKNOWN_CTAX_ACCOUNTS = {"CT99999901", "CT99999902"}
#: Business Rates accounts whose rateable value is too high for small business rate relief.
SBRR_INELIGIBLE = {"NR00000005"}


def demo_today() -> date:
    """The demo's "today": ``HUB_DEMO_TODAY`` (ISO date) when set, so that re-seeding a demo on a
    later day produces the same cases; otherwise the real date."""
    value = os.environ.get("HUB_DEMO_TODAY")
    return date.fromisoformat(value) if value else date.today()


def ctax_ref(n: int) -> str:
    return f"CT{n:08d}"


def nndr_ref(n: int) -> str:
    return f"NR{n:08d}"


def property_ref(n: int) -> str:
    return f"P{n:06d}"


def _person(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return {"name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}{rng.randint(1, 999)}@example.org",
            "phone": f"01632 {rng.randint(100000, 999999)}"}


def _address(rng: random.Random, n: int) -> dict[str, str]:
    return {"line1": f"{rng.randint(1, 120)} {_STREETS[n % len(_STREETS)]}", "line2": "",
            "town": TOWN, "postcode": f"EX{1 + n % 9} {1 + n % 9}{'ABDEFGHJLNPQRSTUWXYZ'[n % 20]}Q"}


def ctax_accounts() -> list[dict[str, Any]]:
    """Council Tax accounts in the Revenues back office."""
    rng = random.Random(SEED)
    return [{"account_ref": ctax_ref(n), "property_ref": property_ref(n),
             "holder": _person(rng)["name"], "adults": 1 + (n % 3 == 0),
             "band": "ABCDEFGH"[n % 8], "hold_moves": ctax_ref(n) in HELD_MOVE_ACCOUNTS,
             "balance_pence": 100_00 + n * 1_37}
            for n in range(1, CTAX_ACCOUNTS + 1)]


def nndr_accounts() -> list[dict[str, Any]]:
    """Business Rates accounts in the Revenues back office."""
    return [{"account_ref": nndr_ref(n), "rateable_value": 90_000 if nndr_ref(n) in SBRR_INELIGIBLE
             else 8_000 + n * 500}
            for n in range(1, NNDR_ACCOUNTS + 1)]


def properties() -> list[str]:
    return [property_ref(n) for n in range(1, PROPERTIES + 1)]


def _ctax_case(kind: str, i: int, rng: random.Random) -> dict[str, Any]:
    account = ctax_ref(1 + i % CTAX_ACCOUNTS)
    customer = _person(rng)
    if kind == "ctax_change_of_address":
        leaving = i % 5 == 4
        new_address = _address(rng, i)
        new_address["property_reference"] = None if leaving else property_ref(100 + i)
        return {"customer": customer, "account_reference": account,
                "moving_date": f"2026-{1 + i % 10:02d}-{1 + i % 27:02d}",
                "new_address": new_address, "leaving_area": leaving}
    if kind == "ctax_single_person_discount":
        return {"customer": customer, "account_reference": account,
                "from_date": f"2026-{1 + i % 10:02d}-01", "adults_in_household": 1}
    if kind == "ctax_direct_debit":
        return {"customer": customer, "account_reference": account,
                "bank": {"account_name": customer["name"],
                         "sort_code": f"{rng.randint(10, 99)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}",
                         "account_number": f"{rng.randint(10_000_000, 99_999_999)}"},
                "instalment_day": rng.choice(["1", "15", "28"])}
    raise ValueError(kind)


def demo_cases() -> list[dict[str, Any]]:
    """Sample CRM cases: ``{"id", "case_type", "data"}``, most valid, a known few refused."""
    rng = random.Random(SEED + 1)
    cases: list[dict[str, Any]] = []

    def add(case_type: str, data: dict[str, Any]) -> None:
        cases.append({"id": f"CRM-{len(cases) + 1:06d}", "case_type": case_type, "data": data})

    for i in range(20):
        data = _ctax_case("ctax_change_of_address", i, rng)
        if i in (3, 11):   # mistyped account: the back office refuses with a SOAP Client fault
            data["account_reference"] = sorted(UNKNOWN_CTAX_ACCOUNTS)[i == 11]
        if i in (6, 13):   # a move the back office holds for staff review
            data["account_reference"] = sorted(HELD_MOVE_ACCOUNTS)[i == 13]
        add("ctax_change_of_address", data)
    for i in range(12):
        data = _ctax_case("ctax_single_person_discount", i, rng)
        if i == 5:         # two adults live there: the back office refuses the discount
            data["adults_in_household"] = 2
        add("ctax_single_person_discount", data)
    for i in range(12):
        data = _ctax_case("ctax_direct_debit", i, rng)
        if i == 7:         # a sort code with a digit missing: the hub refuses it before sending
            data["bank"]["sort_code"] = "12-34-5"
        add("ctax_direct_debit", data)
    reliefs = ["small business", "charity", "rural", "hardship", "small business"]
    for i in range(10):
        business = _person(rng)
        add("nndr_relief_application", {
            "business": {"name": f"{business['name']} Trading Ltd", "contact_email": business["email"]},
            "rates_account": nndr_ref(1 + i), "relief": reliefs[i % len(reliefs)],
            "from_date": f"2026-04-{1 + i:02d}"})
    from simulators.benefits import sample as benefits
    from simulators.licensing import sample as licensing
    from simulators.waste import sample as waste

    for case in licensing.sample_cases():
        add(case["case_type"], case["data"])

    for case in benefits.sample_cases():
        add(case["case_type"], case["data"])

    for case in waste.sample_cases(demo_today()):
        add(case["case_type"], case["data"])

    from simulators.housing import sample as housing

    for case in housing.sample_cases(demo_today()):
        add(case["case_type"], case["data"])
    channels = random.Random(SEED + 7)
    for case in cases:
        case["channel"] = _channel(channels, case["case_type"])
    return cases + history_cases(demo_today())


#: How customers reach the council, by kind of request (weights for telephone, web, face to face, e-mail).
_CHANNEL_WEIGHTS = {"waste": (30, 60, 3, 7), "ctax": (50, 35, 8, 7), "nndr": (30, 20, 5, 45),
                    "hb": (45, 25, 25, 5), "licence": (15, 55, 10, 20)}
CHANNELS = ("telephone", "web", "face_to_face", "email")
#: Days of sample history before the demo's "today" (management information needs several weeks).
HISTORY_DAYS = int(os.environ.get("HUB_DEMO_HISTORY_DAYS", "63"))
#: The service whose demand spikes on the day before "today" (so the early warning has something).
SPIKING_SERVICE = "waste_missed_bin"
#: Cases a day per service on a weekday and at the weekend (Poisson-like around these).
_DAILY = {"waste_missed_bin": (4.0, 1.5), "ctax_single_person_discount": (2.0, 0.3),
          "hb_change_of_circumstances": (2.0, 0.2), "licence_application": (0.8, 0.1)}


def _channel(rng: random.Random, case_type: str) -> str:
    weights = _CHANNEL_WEIGHTS.get(case_type.split("_")[0], (40, 40, 10, 10))
    return rng.choices(CHANNELS, weights=weights)[0]


def _templates(today: date) -> dict[str, list[dict[str, Any]]]:
    """Sample cases the back offices accept, to repeat through the history (refused ones left out)."""
    from simulators.benefits import sample as benefits
    from simulators.licensing import sample as licensing
    from simulators.waste import sample as waste

    rng = random.Random(SEED + 3)
    # accounts where two adults live are refused the discount: repeat only one-adult accounts
    spd = [_ctax_case("ctax_single_person_discount", i, rng) for i in range(12) if (1 + i) % 3]
    bins = [c["data"] for c in waste.sample_cases(today) if c["case_type"] == "waste_missed_bin"
            and date.fromisoformat(c["data"]["collection_date"]) <= today]
    hb = [c["data"] for c in benefits.sample_cases()
          if c["data"]["claim_reference"] not in (benefits.UNKNOWN_CLAIM, benefits.EMPLOYED_CLAIM)]
    licences = [c["data"] for c in licensing.sample_cases() if c["id"] not in licensing.REFUSED_CASES]
    return {"waste_missed_bin": bins, "ctax_single_person_discount": spd,
            "hb_change_of_circumstances": hb, "licence_application": licences}


def _count(rng: random.Random, mean: float) -> int:
    """A small random count around ``mean`` (sum of Bernoulli trials: cheap and deterministic)."""
    trials = max(1, int(mean * 3))
    return sum(rng.random() < mean / trials for _ in range(trials))


def _history_claim(rng: random.Random, claim: str) -> str:
    """A Housing Benefit claim the sample cases leave alone, employed like ``claim`` (a change of
    work needs a claim in that state). The back office's reference for a change is the claim, so
    history must not reuse the sample cases' claims: a later staff change on one of those is then
    reported on exactly that case."""
    from simulators.benefits import sample as benefits

    employed = int(claim[2:]) % 4 == 0
    pool = [benefits.claim_ref(n) for n in range(15, benefits.CLAIMS)
            if (n % 4 == 0) == employed]
    return rng.choice(pool)


def history_cases(today: date, days: int | None = None) -> list[dict[str, Any]]:
    """Weeks of earlier requests (``created_at`` in the past, a channel each), repeating accepted
    sample cases; on the day before ``today`` missed-bin reports spike (a missed round)."""
    from datetime import datetime, time, timedelta, timezone

    days = HISTORY_DAYS if days is None else days
    if days <= 0:
        return []
    rng = random.Random(SEED + 11)
    templates = _templates(today)
    hours = list(range(8, 19))
    hour_weights = [6, 10, 12, 11, 8, 7, 9, 10, 8, 6, 3]
    cases: list[dict[str, Any]] = []
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        weekend = day.weekday() >= 5
        for case_type, (weekday_mean, weekend_mean) in _DAILY.items():
            count = _count(rng, weekend_mean if weekend else weekday_mean)
            if case_type == SPIKING_SERVICE and back == 1:
                count += 24
            for n in range(count):
                at = datetime.combine(day, time(rng.choices(hours, weights=hour_weights)[0],
                                                rng.randrange(60), rng.randrange(60)), timezone.utc)
                data = dict(rng.choice(templates[case_type]))
                if case_type == "hb_change_of_circumstances":
                    data["claim_reference"] = _history_claim(rng, data["claim_reference"])
                if isinstance(data.get("payment"), dict):   # each application pays its own fee
                    data["payment"] = {**data["payment"],
                                       "reference": f"PAY-{day:%Y}-{day:%m%d}{n:02d}"}
                cases.append({"id": f"CRM-H{day:%y%m%d}-{case_type[:4].upper()}{n:02d}",
                              "case_type": case_type, "data": data, "created_at": at.isoformat(),
                              "channel": _channel(rng, case_type)})
    return cases
