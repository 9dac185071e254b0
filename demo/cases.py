"""Cases for load and scale-out runs: many distinct CRM requests every back office accepts.

Each case is a Council Tax Direct Debit mandate (Revenues, SOAP) or a street trading application
(Licensing, its database), so that "every case in the back office" is a plain count: one
back-office record per case. Names, bank details and references are invented; the accounts are
the simulated council's (``simulators.world``). Used by bench/ and the real-stack tests.
"""
from __future__ import annotations

from typing import Any

REVENUES = "revenues_northgate"
LICENSING = "licensing_uniform"
SYSTEM_OF = {"ctax_direct_debit": REVENUES, "licence_application": LICENSING}
_FIRST = ["Ada", "Ben", "Cleo", "Dev", "Esme", "Finn", "Gita", "Hal", "Ines", "Jude"]
_LAST = ["Archer", "Baker", "Cooper", "Dyer", "Fletcher", "Glover", "Hunter", "Mason"]
CTAX_ACCOUNTS = 40   # CT00000001..CT00000040 exist in the Revenues simulator


def load_case(run: str, n: int, systems: tuple[str, ...] = (REVENUES, LICENSING)) -> dict[str, Any]:
    """Case number ``n`` of a load run named ``run``: ``{"id", "case_type", "data"}``, alternating
    between ``systems``. Ids are ``LOAD-<run>-<n>``; a run name keeps runs apart."""
    system = systems[n % len(systems)]
    first, last = _FIRST[n % len(_FIRST)], _LAST[(n // len(_FIRST)) % len(_LAST)]
    crm_id = f"LOAD-{run}-{n:06d}"
    if system == REVENUES:
        data: dict[str, Any] = {
            "customer": {"name": f"{first} {last}", "email": f"{first.lower()}{n}@example.org"},
            "account_reference": f"CT{1 + n % CTAX_ACCOUNTS:08d}",
            "bank": {"account_name": f"{first} {last}", "sort_code": f"20-{n % 100:02d}-{n // 100 % 100:02d}",
                     "account_number": f"{10_000_000 + n * 7919 % 90_000_000:08d}"},
            "instalment_day": ("1", "15", "28")[n % 3]}
        return {"id": crm_id, "case_type": "ctax_direct_debit", "data": data}
    if system == LICENSING:
        data = {"licence_kind": "street_trading",
                "applicant": {"name": f"{first} {last}", "date_of_birth": "1980-01-01",
                              "email": f"{first.lower()}{n}@example.org",
                              "address": {"line1": f"{1 + n % 99} Market Place", "town": "EXAMPLETON",
                                          "postcode": "EX1 1AQ"}},
                "pitch": f"Market Place, pitch {1 + n % 40}", "commodities": "Hot food and drinks",
                "payment": {"reference": f"PAY-{run}-{n:06d}"[:40], "amount_pence": 40000}}
        return {"id": crm_id, "case_type": "licence_application", "data": data}
    raise ValueError(f"no load cases for {system}")
