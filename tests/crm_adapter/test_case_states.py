"""CrmClient.iter_case_states: the paged read of every case's CRM state (docs/crm.md), against the
CRM simulator, and its tolerance and contract checks against scripted answers."""
from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.errors import PermanentError, TransientError, UnreadableAnswer
from crm_adapter.models import CrmCaseState, WriteBack
from crm_adapter.rest import CrmClient
from tests.crm_adapter.conftest import RunningCrm


def _write_back(client: CrmClient, crm_id: str, key: str, status: str = "completed",
                reference: str | None = "CT00000001") -> None:
    client.write_back(crm_id, WriteBack(idempotency_key=key, status=status, note="done",
                                        backoffice_reference=reference,
                                        backoffice_system="revenues_northgate"))


def test_states_carry_what_the_hub_wrote_back_across_pages(crm: RunningCrm,
                                                           client: CrmClient) -> None:
    for i in range(7):
        crm.put(f"CRM-{i:03d}", "t", {"i": i})
    _write_back(client, "CRM-002", "ob-2")
    _write_back(client, "CRM-005", "ob-5", status="needs_review", reference=None)
    states = list(client.iter_case_states(page_size=3))
    assert [s.crm_id for s in states] == [f"CRM-{i:03d}" for i in range(7)], \
        "every case once, ascending, across three pages"
    by_id = {s.crm_id: s for s in states}
    assert (by_id["CRM-002"].status, by_id["CRM-002"].backoffice_reference,
            by_id["CRM-002"].backoffice_system) == ("completed", "CT00000001", "revenues_northgate")
    assert (by_id["CRM-005"].status, by_id["CRM-005"].backoffice_reference) == ("needs_review", None)
    assert (by_id["CRM-000"].status, by_id["CRM-000"].backoffice_reference) == ("new", None)
    assert all(s.updated_at is not None and s.updated_at.tzinfo is not None for s in states)
    assert by_id["CRM-002"].updated_at > by_id["CRM-001"].updated_at, "the write-back moved it"


def test_exactly_one_full_page_ends_cleanly(crm: RunningCrm, client: CrmClient) -> None:
    for i in range(4):
        crm.put(f"C{i}", "t", {})
    assert [s.crm_id for s in client.iter_case_states(page_size=2)] == ["C0", "C1", "C2", "C3"]
    assert [s.crm_id for s in client.iter_case_states(page_size=4)] == ["C0", "C1", "C2", "C3"]


def test_a_lost_write_back_shows_and_can_be_delivered_again(crm: RunningCrm,
                                                             client: CrmClient) -> None:
    crm.put("CRM-1", "t", {})
    _write_back(client, "CRM-1", "ob-1")
    lost = crm.admin.post("/admin/cases/CRM-1/lose-writeback")
    assert lost.status_code == 200 and lost.json()["lost"] == 1
    [state] = client.iter_case_states()
    assert (state.status, state.backoffice_reference, state.backoffice_system) == ("new", None, None)
    _write_back(client, "CRM-1", "ob-1")   # healing: the same key, delivered again, applies
    [state] = client.iter_case_states()
    assert (state.status, state.backoffice_reference) == ("completed", "CT00000001")
    assert crm.admin.post("/admin/cases/NOPE/lose-writeback").status_code == 404


def test_an_agent_can_change_a_status_by_hand(crm: RunningCrm, client: CrmClient) -> None:
    crm.put("CRM-1", "t", {})
    _write_back(client, "CRM-1", "ob-1")
    assert crm.admin.post("/admin/cases/CRM-1/status",
                          json={"status": "in_progress"}).status_code == 200
    [state] = client.iter_case_states()
    assert (state.status, state.backoffice_reference) == ("in_progress", "CT00000001")
    assert crm.admin.get("/api/v1/cases/CRM-1").json()["version"] == 1, "not a data change"
    assert crm.admin.post("/admin/cases/CRM-1/status", json={"status": "done"}).status_code == 422
    assert crm.admin.post("/admin/cases/NOPE/status",
                          json={"status": "completed"}).status_code == 404


def test_page_size_is_bounded(client: CrmClient) -> None:
    for size in (0, 1001):
        with pytest.raises(PermanentError) as err:
            list(client.iter_case_states(page_size=size))
        assert err.value.code == "config"


def test_the_simulator_refuses_a_foreign_cursor(crm: RunningCrm) -> None:
    answer = crm.admin.get("/api/v1/case-states", params={"cursor": "Y3JtLXNlcTo1"})
    assert answer.status_code == 422
    assert crm.admin.get("/api/v1/case-states", params={"limit": 0}).status_code == 422


# -- scripted answers ---------------------------------------------------------------------------

def _client(pages: dict[str | None, Any], seen: list[httpx.Request] | None = None,
            status: int = 200, **kwargs: Any) -> CrmClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=pages.get(request.url.params.get("cursor")))
    return CrmClient("http://crm.test", "t", transport=httpx.MockTransport(handler), **kwargs)


STATE = {"crm_id": "A", "status": "completed", "backoffice_reference": "R1",
         "backoffice_system": "revenues_northgate", "updated_at": "2026-01-01T00:00:00+00:00"}


def test_unreadable_entries_are_reported_and_skipped_not_fatal() -> None:
    bad_status = STATE | {"crm_id": "B", "status": "x" * 500}
    no_id = {"status": "completed", "name": "Alex Smith"}
    tolerant = STATE | {"crm_id": "C", "updated_at": "yesterday", "backoffice_reference": "",
                        "extra": {"anything": 1}}
    naive = STATE | {"crm_id": "D", "updated_at": "2026-01-01T00:00:00"}
    pages = {None: {"case_states": [STATE, bad_status], "next_cursor": "p2"},
             "p2": {"case_states": [no_id, tolerant, naive], "next_cursor": None}}
    reported: list[tuple[str, str]] = []
    states = list(_client(pages).iter_case_states(invalid=lambda *a: reported.append(a)))
    assert [s.crm_id for s in states] == ["A", "C", "D"]
    assert states[1].updated_at is None and states[1].backoffice_reference is None
    assert states[2].updated_at is None, "a time without a zone is not trusted"
    assert [entry for entry, _ in reported] == ["case-states[1] B", "case-states[2]"]
    assert "status" in reported[0][1] and "crm_id" in reported[1][1]
    assert all("Alex Smith" not in text for pair in reported for text in pair)


def test_out_of_order_states_break_the_contract() -> None:
    pages = {None: {"case_states": [STATE | {"crm_id": "B"}, STATE], "next_cursor": None}}
    with pytest.raises(UnreadableAnswer) as err:
        list(_client(pages).iter_case_states())
    assert err.value.code == "contract" and err.value.field == "crm_id"


def test_a_repeating_cursor_is_refused_rather_than_looping() -> None:
    pages = {None: {"case_states": [STATE], "next_cursor": "p2"},
             "p2": {"case_states": [STATE | {"crm_id": "B"}], "next_cursor": "p2"}}
    with pytest.raises(PermanentError) as err:
        list(_client(pages).iter_case_states())
    assert err.value.code == "pagination-loop"


def test_a_missing_list_and_a_non_list_are_told_apart() -> None:
    assert list(_client({None: {"next_cursor": None}}).iter_case_states()) == []
    with pytest.raises(UnreadableAnswer):
        list(_client({None: {"case_states": {"A": 1}}}).iter_case_states())


def test_reads_page_by_page_never_ahead() -> None:
    seen: list[httpx.Request] = []
    pages = {None: {"case_states": [STATE], "next_cursor": "p2"},
             "p2": {"case_states": [STATE | {"crm_id": "B"}], "next_cursor": None}}
    states = _client(pages, seen).iter_case_states(page_size=1)
    assert next(states).crm_id == "A" and len(seen) == 1, "the second page is read when needed"
    assert next(states).crm_id == "B" and len(seen) == 2
    assert seen[0].url.params["limit"] == "1"


def test_failures_are_classified() -> None:
    with pytest.raises(TransientError):
        list(_client({}, status=503).iter_case_states())
    with pytest.raises(PermanentError) as err:
        list(_client({}, status=404).iter_case_states())
    assert err.value.code == "404"

    def endless() -> Any:
        yield b'{"case_states": [' + b" " * 200_000

    big = CrmClient("http://crm.test", "t", max_answer_bytes=64 * 1024,
                    transport=httpx.MockTransport(lambda r: httpx.Response(200, content=endless())))
    with pytest.raises(UnreadableAnswer) as err:
        list(big.iter_case_states())
    assert err.value.code == "answer-too-large"


def test_the_model_is_what_the_engine_compares() -> None:
    state = CrmCaseState.model_validate(STATE)
    assert (state.crm_id, state.status, state.backoffice_reference, state.backoffice_system) == \
        ("A", "completed", "R1", "revenues_northgate")
    assert state.updated_at is not None and state.updated_at.utcoffset() is not None
