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


def _as_payload(data: dict) -> tuple[str, dict]:  # type: ignore[type-arg]
    """The obvious field mapping (what the mapping YAML does), to prove the shapes fit."""
    claim, when, kind = data["claim_reference"], data["effective_date"], data["change"]
    if kind == "new_address":
        return "hb.new_address", {"claim_ref": claim, "moved_on": when,
                                  "new_address": data["new_address"], "weekly_rent": data["weekly_rent"]}
    if kind == "household":
        h = data["household"]
        return "hb.household_change", {"claim_ref": claim, "effective_from": when,
                                       "action": h["action"], "relationship": h["relationship"],
                                       "member_name": h["name"], "member_date_of_birth": h["date_of_birth"]}
    if kind == "income":
        i = data["income"]
        return "hb.income_change", {"claim_ref": claim, "effective_from": when,
                                    "income_type": i["type"], "amount": i["amount"],
                                    "frequency": i["frequency"]}
    w = data["work"]
    if kind == "started_work":
        return "hb.started_work", {"claim_ref": claim, "started_on": when, **w}
    return "hb.stopped_work", {"claim_ref": claim, "ended_on": when, **w}


def test_every_sample_case_fits_an_operation_model() -> None:
    from connectors.benefits.operations import OPERATIONS

    for case in sample_cases():
        operation, payload = _as_payload(case["data"])
        OPERATIONS[operation].model_validate(payload)
