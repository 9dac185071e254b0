"""CrmClient against the CRM simulator, and its error classification against a fault server."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from connectors.errors import (PermanentError, Rejected, TransientError, UnknownOutcomeError,
                               error_class_name)
from crm_adapter.models import WriteBack
from crm_adapter.rest import CrmClient
from simulators.serving import free_port, serve_in_thread
from tests.crm_adapter.conftest import TOKEN, RunningCrm

CASE = {"customer": {"name": "Alex Smith"}, "account_reference": "CT00000001"}


def _write_back(key: str = "outbox-1", **overrides: Any) -> WriteBack:
    values: dict[str, Any] = {"idempotency_key": key, "status": "completed",
                              "note": "Council Tax account updated",
                              "backoffice_reference": "CT00000001",
                              "backoffice_system": "revenues_northgate"}
    return WriteBack(**(values | overrides))


def test_get_case_returns_the_current_version(crm: RunningCrm, client: CrmClient) -> None:
    crm.put("CRM-1", "ctax_change_of_address", CASE)
    crm.put("CRM-1", "ctax_change_of_address", CASE | {"account_reference": "CT00000002"})
    case = client.get_case("CRM-1")
    assert (case.crm_id, case.version, case.case_type) == ("CRM-1", 2, "ctax_change_of_address")
    assert case.data["account_reference"] == "CT00000002"
    assert case.updated_at.tzinfo is not None


def test_get_unknown_case_is_rejected(client: CrmClient) -> None:
    with pytest.raises(Rejected) as err:
        client.get_case("CRM-404")
    assert err.value.code == "404"


def test_write_back_with_the_same_key_reaches_the_crm_once(crm: RunningCrm,
                                                          client: CrmClient) -> None:
    crm.put("CRM-1", "ctax_change_of_address", CASE)
    client.write_back("CRM-1", _write_back("outbox-7"))
    client.write_back("CRM-1", _write_back("outbox-7"))   # a retry after a lost answer
    updates = crm.updates("CRM-1")
    assert [u["idempotency_key"] for u in updates] == ["outbox-7"]
    client.write_back("CRM-1", _write_back("outbox-8", status="needs_review", note="Held"))
    assert [u["status"] for u in crm.updates("CRM-1")] == ["completed", "needs_review"]
    stored = crm.admin.get("/api/v1/cases/CRM-1").json()
    assert stored["status"] == "needs_review"
    assert stored["backoffice_reference"] == "CT00000001"
    assert [n["text"] for n in stored["notes"]] == ["Council Tax account updated", "Held"]
    assert stored["version"] == 1, "a write-back is not a change to the case's data"


def test_write_back_to_an_unknown_case_is_rejected(client: CrmClient) -> None:
    with pytest.raises(Rejected) as err:
        client.write_back("CRM-404", _write_back())
    assert err.value.code == "404"


def test_same_key_on_another_case_is_rejected(crm: RunningCrm, client: CrmClient) -> None:
    crm.put("CRM-1", "t", CASE)
    crm.put("CRM-2", "t", CASE)
    client.write_back("CRM-1", _write_back("outbox-1"))
    with pytest.raises(Rejected) as err:
        client.write_back("CRM-2", _write_back("outbox-1"))
    assert err.value.code == "409"
    assert crm.updates("CRM-2") == []


def test_wrong_token_is_permanent(crm: RunningCrm) -> None:
    crm.put("CRM-1", "t", CASE)
    with CrmClient(crm.url, "not-the-token", timeout=5) as bad:
        with pytest.raises(PermanentError) as err:
            bad.write_back("CRM-1", _write_back())
        assert err.value.code == "401"
        with pytest.raises(PermanentError):
            bad.cases_changed_since(None)
    assert crm.updates("CRM-1") == []


def test_empty_token_is_refused_up_front() -> None:
    with pytest.raises(PermanentError):
        CrmClient("http://127.0.0.1:1", "")


# -- faults ------------------------------------------------------------------------------------

class Faults:
    """What the fault server answers next."""

    def __init__(self) -> None:
        self.status = 200
        self.body: Any = {}
        self.delay = 0.0
        self.calls = 0


@pytest.fixture(scope="module")
def faults() -> Iterator[tuple[str, Faults]]:
    state = Faults()
    app = FastAPI()

    @app.api_route("/api/v1/{path:path}", methods=["GET", "POST"])
    async def answer(path: str, request: Request) -> Any:
        state.calls += 1
        if state.delay:
            await asyncio.sleep(state.delay)   # the client times out first
        if isinstance(state.body, str):
            return PlainTextResponse(state.body, status_code=state.status)
        return JSONResponse(state.body, status_code=state.status)

    with serve_in_thread(app) as url:
        yield url, state


@pytest.fixture
def fault(faults: tuple[str, Faults]) -> Iterator[tuple[CrmClient, Faults]]:
    url, state = faults
    state.__init__()
    with CrmClient(url, TOKEN, timeout=0.3) as crm_client:
        yield crm_client, state


@pytest.mark.parametrize("status, error", [
    (500, TransientError), (502, TransientError), (503, TransientError), (429, TransientError),
    (401, PermanentError), (403, PermanentError), (405, PermanentError), (302, PermanentError),
    (404, Rejected), (422, Rejected), (409, Rejected)])
def test_write_back_errors_are_classified(fault: tuple[CrmClient, Faults], status: int,
                                          error: type[Exception]) -> None:
    client, state = fault
    state.status, state.body = status, {"detail": "no"}
    with pytest.raises(error) as err:
        client.write_back("CRM-1", _write_back())
    assert error_class_name(err.value) == error.__name__, "classified as exactly this class"
    assert err.value.code == str(status)


def test_rejection_names_the_field_the_crm_objected_to(fault: tuple[CrmClient, Faults]) -> None:
    client, state = fault
    state.status = 422
    state.body = {"detail": [{"loc": ["body", "status"], "msg": "bad", "input": "Alex Smith"}]}
    with pytest.raises(Rejected) as err:
        client.write_back("CRM-1", _write_back())
    assert err.value.field == "status"
    assert "Alex Smith" not in str(err.value)


def test_stopped_port_is_transient() -> None:
    with CrmClient(f"http://127.0.0.1:{free_port()}", TOKEN, timeout=1) as client:
        with pytest.raises(TransientError) as err:
            client.write_back("CRM-1", _write_back())
        assert not isinstance(err.value, UnknownOutcomeError), "nothing was sent"
        with pytest.raises(TransientError):
            client.cases_changed_since(None)


def test_timeout_after_sending_is_an_unknown_outcome(fault: tuple[CrmClient, Faults]) -> None:
    client, state = fault
    state.delay = 0.8
    with pytest.raises(UnknownOutcomeError):
        client.write_back("CRM-1", _write_back())
    with pytest.raises(TransientError) as err:
        client.get_case("CRM-1")
    assert not isinstance(err.value, UnknownOutcomeError), "a read changes nothing"


def test_non_json_answer_breaks_the_contract(fault: tuple[CrmClient, Faults]) -> None:
    client, state = fault
    state.body = "<html>login</html>"
    with pytest.raises(PermanentError):
        client.get_case("CRM-1")


def test_feed_with_cases_but_no_cursor_is_refused(fault: tuple[CrmClient, Faults]) -> None:
    client, state = fault
    state.body = {"cases": [{"crm_id": "CRM-1", "version": 1, "case_type": "t",
                             "updated_at": "2026-01-01T00:00:00Z", "data": {}}],
                  "next_cursor": None}
    with pytest.raises(PermanentError):
        client.cases_changed_since(None)


def test_feed_404_is_a_configuration_problem(fault: tuple[CrmClient, Faults]) -> None:
    client, state = fault
    state.status = 404
    with pytest.raises(PermanentError):
        client.cases_changed_since("abc")


def test_invalid_feed_items_are_handed_over_not_dropped(fault: tuple[CrmClient, Faults]) -> None:
    client, state = fault
    good = {"crm_id": "CRM-1", "version": 1, "case_type": "t",
            "updated_at": "2026-01-01T00:00:00+00:00", "data": {"name": "Alex Smith"}}
    bad = {"crm_id": "CRM-2", "version": 0, "case_type": "t",
           "updated_at": "2026-01-01T00:00:00", "data": {"name": "Jo Jones"}}
    state.body = {"cases": [good, bad], "next_cursor": "c2"}
    with pytest.raises(PermanentError) as err:
        client.cases_changed_since(None)
    assert "version" in str(err.value) and "Jo Jones" not in str(err.value)
    kept: list[tuple[str, str, bytes]] = []
    cases, cursor = client.cases_changed_since(None, invalid=lambda *a: kept.append(a))
    assert [c.crm_id for c in cases] == ["CRM-1"] and cursor == "c2"
    [(delivery_id, error, raw)] = kept
    assert delivery_id == "pull:CRM-2:v0"
    assert "version" in error and "updated_at" in error and "Jo Jones" not in error
    assert b"Jo Jones" in raw


def test_an_answer_past_the_size_limit_is_cut_off() -> None:
    import httpx as _httpx

    from connectors.errors import UnknownOutcomeError, UnreadableAnswer
    from crm_adapter.models import WriteBack
    from crm_adapter.rest import CrmClient as _Client

    pulled: list[int] = []

    def stream():  # noqa: ANN202 - a chunked answer that never ends on its own
        for _ in range(1000):
            pulled.append(1)
            yield b'{"cases": [' + b" " * 65536

    def handler(request: _httpx.Request) -> _httpx.Response:
        return _httpx.Response(200, content=stream())

    client = _Client("http://crm.test", "t", transport=_httpx.MockTransport(handler),
                     max_answer_bytes=256 * 1024)
    with pytest.raises(UnreadableAnswer) as info:
        client.cases_changed_since(None)
    assert info.value.code == "answer-too-large" and len(pulled) <= 6
    with pytest.raises(UnknownOutcomeError):
        client.write_back("C1", WriteBack(idempotency_key="k", status="completed", note="n"))


def test_a_deeply_nested_answer_is_a_contract_error_not_a_crash() -> None:
    import httpx as _httpx

    from crm_adapter.rest import CrmClient as _Client

    deep = b"[" * 5000 + b"]" * 5000
    client = _Client("http://crm.test", "t", transport=_httpx.MockTransport(
        lambda request: _httpx.Response(200, content=b'{"cases": ' + deep + b"}")))
    with pytest.raises(PermanentError) as info:
        client.cases_changed_since(None)
    assert info.value.code == "contract"
