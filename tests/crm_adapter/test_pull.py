"""pull_cases over the CRM simulator's change feed, several pages at a time."""
from __future__ import annotations

import pytest

from crm_adapter.models import CrmCase, WriteBack
from crm_adapter.pull import MemoryCursorStore, pull_cases
from crm_adapter.rest import CrmClient
from tests.crm_adapter.conftest import RunningCrm


class Ledger:
    """An idempotent recorder keyed on (crm id, version), like the hub's case table."""

    def __init__(self) -> None:
        self.cases: dict[tuple[str, int], CrmCase] = {}
        self.calls = 0

    def record(self, case: CrmCase) -> None:
        self.calls += 1
        self.cases[(case.crm_id, case.version)] = case


class RecordingCursors(MemoryCursorStore):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def set(self, name: str, value: str) -> None:
        super().set(name, value)
        self.writes.append(value)


def _seed(crm: RunningCrm, n: int, start: int = 1, **extra: object) -> None:
    for i in range(start, start + n):
        crm.put(f"CRM-{i:03d}", "ctax_single_person_discount",
                {"account_reference": f"CT{i:08d}", "adults_in_household": 1, **extra})


def test_pull_reads_every_page_and_resumes_from_its_cursor(crm: RunningCrm,
                                                           client: CrmClient) -> None:
    _seed(crm, 7)
    ledger, cursors = Ledger(), RecordingCursors()
    assert pull_cases(client, cursors, ledger.record, page_size=3) == 7
    assert len(cursors.writes) == 3, "the cursor is stored after each of the 3 pages"
    assert sorted(ledger.cases) == [(f"CRM-{i:03d}", 1) for i in range(1, 8)]

    assert pull_cases(client, cursors, ledger.record, page_size=3) == 0
    _seed(crm, 2, start=6, note="changed")      # two new versions
    _seed(crm, 1, start=8)                      # one new case
    assert pull_cases(client, cursors, ledger.record, page_size=3) == 3
    assert {k for k in ledger.cases if k not in {(f"CRM-{i:03d}", 1) for i in range(1, 8)}} == \
        {("CRM-006", 2), ("CRM-007", 2), ("CRM-008", 1)}


def test_reseeding_the_same_data_creates_no_new_versions(crm: RunningCrm,
                                                         client: CrmClient) -> None:
    _seed(crm, 4)
    ledger, cursors = Ledger(), MemoryCursorStore()
    pull_cases(client, cursors, ledger.record)
    _seed(crm, 4)
    assert pull_cases(client, cursors, ledger.record) == 0
    assert all(client.get_case(f"CRM-{i:03d}").version == 1 for i in range(1, 5))


def test_write_backs_do_not_appear_in_the_feed(crm: RunningCrm, client: CrmClient) -> None:
    _seed(crm, 2)
    ledger, cursors = Ledger(), MemoryCursorStore()
    pull_cases(client, cursors, ledger.record)
    client.write_back("CRM-001", WriteBack(idempotency_key="o-1", status="completed", note="Done"))
    assert pull_cases(client, cursors, ledger.record) == 0


def test_max_pages_leaves_the_rest_for_the_next_run(crm: RunningCrm, client: CrmClient) -> None:
    _seed(crm, 5)
    ledger, cursors = Ledger(), MemoryCursorStore()
    assert pull_cases(client, cursors, ledger.record, page_size=2, max_pages=1) == 2
    assert pull_cases(client, cursors, ledger.record, page_size=2, max_pages=1) == 2
    assert pull_cases(client, cursors, ledger.record, page_size=2) == 1
    assert len(ledger.cases) == 5


def test_a_crash_mid_page_rereads_that_page_only(crm: RunningCrm, client: CrmClient) -> None:
    _seed(crm, 6)
    ledger, cursors = Ledger(), MemoryCursorStore()

    def flaky(case: CrmCase) -> None:
        if case.crm_id == "CRM-005":
            raise RuntimeError("ledger unavailable")
        ledger.record(case)

    with pytest.raises(RuntimeError):
        pull_cases(client, cursors, flaky, page_size=3)
    assert len(ledger.cases) == 4
    ledger.calls = 0
    assert pull_cases(client, cursors, ledger.record, page_size=3) == 3
    assert ledger.calls == 3, "page 1 was stored; only page 2 (CRM-004..006) is read again"
    assert len(ledger.cases) == 6


def test_separate_cursor_names_do_not_interfere(crm: RunningCrm, client: CrmClient) -> None:
    _seed(crm, 3)
    cursors = MemoryCursorStore()
    assert pull_cases(client, cursors, Ledger().record, cursor_name="a") == 3
    assert pull_cases(client, cursors, Ledger().record, cursor_name="b") == 3
    assert set(cursors.values) == {"a", "b"}
