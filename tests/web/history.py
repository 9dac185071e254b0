"""A ledger with weeks of history, through the hub's own intake, mapping and dispatch (a scripted
back office confirms everything), for management-information tests and screenshots."""
from __future__ import annotations

from datetime import date, datetime

from connectors.base import Outcome, OutcomeStatus
from crm_adapter.models import CrmCase
from hub import dispatch, intake
from simulators.world import history_cases
from tests.hub.scripted import ScriptedConnector


def record(url: str, crm_id: str, case_type: str, data: dict, created_at: datetime,
           channel: str | None) -> None:
    intake.record_case(CrmCase(crm_id=crm_id, version=1, case_type=case_type, updated_at=created_at,
                               created_at=created_at, channel=channel, data=data),
                       source="pull", url=url)


def build(url: str, today: date, days: int = 63, *, refuse_every: int = 0) -> int:
    """Record, map and send the demo town's history; returns how many cases."""
    cases = history_cases(today, days)
    for case in cases:
        record(url, case["id"], case["case_type"], case["data"],
               datetime.fromisoformat(case["created_at"]), case["channel"])
    intake.map_received(url=url, limit=100_000)
    counter = {"n": 0}

    def answer(command):  # type: ignore[no-untyped-def]
        counter["n"] += 1
        if refuse_every and counter["n"] % refuse_every == 0:
            return Outcome(command.key, OutcomeStatus.REJECTED, message="Record locked by another user",
                           error_class="Rejected", code="LOCKED")
        return Outcome(command.key, OutcomeStatus.CONFIRMED, reference=f"REF-{counter['n']:05d}")

    for system in ("revenues_northgate", "benefits_academy", "licensing_uniform", "waste_bartec"):
        dispatch.dispatch_all(ScriptedConnector(answer), system, url=url, batch_size=500)
    return len(cases)
