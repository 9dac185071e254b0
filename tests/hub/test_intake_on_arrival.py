"""Mapping on arrival (the webhook's fast path): a case is recorded and mapped in one transaction,
so its commands exist when the CRM gets its answer; the scheduled intake is the backstop."""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from crm_adapter.models import CrmCase
from hub import intake
from hub.ledger.models import Case, Command, OutboxMessage
from tests.hub.factories import coa_data, receive, rows


def _case(crm_id: str, data: dict[str, Any], case_type: str = "ctax_change_of_address",
          version: int = 1) -> CrmCase:
    return CrmCase(crm_id=crm_id, version=version, case_type=case_type,
                   updated_at=datetime(2026, 3, 1, tzinfo=timezone.utc), data=data)


def test_a_case_is_recorded_and_mapped_at_once(ledger_url: str) -> None:
    recorded = intake.record_and_map(_case("CRM-A1", coa_data()), source="webhook", url=ledger_url)
    assert recorded is not None
    assert (recorded.state, recorded.systems) == ("mapped", ("revenues_northgate",))
    [case] = rows(ledger_url, Case)
    assert case.id == recorded.case_id and case.state == "mapped" and case.source == "webhook"
    assert {c.system for c in rows(ledger_url, Command)} == {"revenues_northgate"}
    assert intake.map_received(url=ledger_url).mapped == 0, "nothing left for the backstop"


def test_the_same_version_again_records_and_maps_nothing(ledger_url: str) -> None:
    case = _case("CRM-A2", coa_data())
    assert intake.record_and_map(case, source="webhook", url=ledger_url) is not None
    assert intake.record_and_map(case, source="webhook", url=ledger_url) is None
    assert receive(ledger_url, "CRM-A2", coa_data()) is False, "nor does the pull"
    assert len(rows(ledger_url, Command)) == 1


def test_bad_input_is_an_invalid_case_with_a_notice_for_the_crm(ledger_url: str) -> None:
    recorded = intake.record_and_map(
        _case("CRM-A3", {"uprn": "100090000001", "bin_type": "recycling"}, "waste_missed_bin"),
        source="webhook", url=ledger_url)
    assert recorded is not None and (recorded.state, recorded.systems) == ("invalid", ())
    assert [m.status for m in rows(ledger_url, OutboxMessage)] == ["needs_review"]


class BrokenMappings:
    """A mapping set with a fault (not bad input): the case must still be kept."""

    def systems_for(self, case_type: str) -> list[str]:
        raise RuntimeError("mapping engine fault")

    def apply(self, *args: Any) -> list:
        raise RuntimeError("mapping engine fault")


def test_a_mapping_fault_records_the_case_for_the_scheduled_intake(ledger_url: str) -> None:
    recorded = intake.record_and_map(_case("CRM-A4", coa_data()), source="webhook",
                                     url=ledger_url, mappings=BrokenMappings())  # type: ignore[arg-type]
    assert recorded is not None and recorded.state == "received" and recorded.systems == ()
    assert rows(ledger_url, Command) == []
    stats = intake.map_received(url=ledger_url)
    assert (stats.mapped, stats.systems) == (1, {"revenues_northgate": 1})


def test_concurrent_deliveries_of_one_version_map_it_once(ledger_url: str) -> None:
    results: list[Any] = []
    case = _case("CRM-A5", coa_data())
    barrier = threading.Barrier(6)

    def deliver() -> None:
        barrier.wait()
        results.append(intake.record_and_map(case, source="webhook", url=ledger_url))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and sum(r is not None for r in results) == 1
    assert len(rows(ledger_url, Case)) == 1 and len(rows(ledger_url, Command)) == 1


def test_map_received_counts_new_commands_per_system(ledger_url: str) -> None:
    receive(ledger_url, "CRM-B1", coa_data("CT00000001"))
    receive(ledger_url, "CRM-B2", coa_data("CT00000002"))
    receive(ledger_url, "CRM-B3", {"uprn": "100090000001", "bin_type": "recycling",
                                   "collection_date": "2026-02-27"}, case_type="waste_missed_bin")
    stats = intake.map_received(url=ledger_url)
    assert stats.systems == {"revenues_northgate": 2, "waste_bartec": 1}


def test_the_fast_path_stores_what_the_scheduled_intake_stores(ledger_url: str) -> None:
    """Request time, channel and ward are kept for a webhook case as for a pulled one."""
    made = datetime(2026, 2, 27, 8, 30, tzinfo=timezone.utc)
    for crm_id, record in (("CRM-W1", lambda c: intake.record_and_map(c, source="webhook",
                                                                       url=ledger_url)),
                           ("CRM-W2", lambda c: intake.record_cases([c], source="pull",
                                                                    url=ledger_url)),
                           ("CRM-W3", lambda c: intake.record_case(c, source="pull",
                                                                   url=ledger_url))):
        record(CrmCase(crm_id=crm_id, version=1, case_type="ctax_change_of_address",
                       updated_at=datetime(2026, 3, 1, tzinfo=timezone.utc), created_at=made,
                       channel="telephone", data=coa_data()))
    kept = {(c.crm_created_at, c.channel, c.ward) for c in rows(ledger_url, Case)}
    assert len(kept) == 1, kept
    [(created, channel, ward)] = kept
    assert created == made and channel == "telephone"
