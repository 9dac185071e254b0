"""Demo data: claims the back office knows and CRM cases that map onto the operations."""
from __future__ import annotations

from collections import Counter

from simulators.benefits.sample import UNKNOWN_CLAIM, claims, sample_cases


def test_sample_cases_cover_every_change_kind_and_two_refusals() -> None:
    cases = sample_cases()
    assert 10 <= len(cases) <= 14
    assert {c["case_type"] for c in cases} == {"hb_change_of_circumstances"}
    kinds = Counter(c["data"]["change"] for c in cases)
    assert set(kinds) == {"new_address", "household", "income", "started_work", "stopped_work"}
    known = {c["claim_ref"]: c for c in claims()}
    unknown = [c for c in cases if c["data"]["claim_reference"] not in known]
    assert [c["data"]["claim_reference"] for c in unknown] == [UNKNOWN_CLAIM]
    early = [c for c in cases if c["data"]["change"] == "stopped_work"
             and (known.get(c["data"]["claim_reference"]) or {}).get("employment_started_on", "")
             and c["data"]["effective_date"] < known[c["data"]["claim_reference"]]["employment_started_on"]]
    assert len(early) == 1


def test_sample_data_is_deterministic() -> None:
    assert sample_cases() == sample_cases() and claims() == claims()
