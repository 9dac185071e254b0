"""The REST transport against a scriptable server on a real socket (and httpx.MockTransport where a
stream must be observed): classification, authentication, size cap, pagination and logs."""
from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from connectors.base import Command, Connector, ConnectorConfig, Outcome, OutcomeStatus
from connectors.errors import (PermanentError, Rejected, TransientError, UnknownOutcomeError,
                               UnreadableAnswer, error_class_name)
from connectors.transports.rest import (AnswerTooLarge, BasicAuth, BearerToken, ClientCredentials,
                                        HttpRejected, RestClient, cursor_pages, error_details,
                                        next_link_pages, page_number_pages, shared_client)
from simulators.serving import free_port, serve_in_thread


@dataclass
class Script:
    """What the server answers next, and what it saw."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    calls: int = 0
    seen_auth: list[str | None] = field(default_factory=list)
    seen_paths: list[str] = field(default_factory=list)
    tokens_issued: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    token_status: int = 200
    refuse_all_tokens: bool = False


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Script]]:
    state = Script()
    app = FastAPI()

    @app.post("/oauth/token")
    async def token(request: Request) -> Response:
        form = await request.form()
        if state.token_status != 200:
            return JSONResponse({"error": "invalid_client"}, status_code=state.token_status)
        expected = "Basic " + base64.b64encode(b"client-1:s3cret").decode()
        if request.headers.get("authorization") != expected or form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        state.tokens_issued += 1
        value = f"tok-{state.tokens_issued}"
        state.valid_tokens.add(value)
        return JSONResponse({"access_token": value, "token_type": "Bearer", "expires_in": 3600})

    @app.api_route("/secure/{rest:path}", methods=["GET", "POST"])
    async def secure(rest: str, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        state.seen_auth.append(auth)
        value = auth.removeprefix("Bearer ")
        if value not in state.valid_tokens or state.refuse_all_tokens:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"ok": True})

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def answer(rest: str, request: Request) -> Response:
        state.calls += 1
        state.seen_auth.append(request.headers.get("authorization"))
        state.seen_paths.append(request.scope["raw_path"].decode())
        if state.delay:
            await asyncio.sleep(state.delay)
        if isinstance(state.body, bytes):
            return Response(state.body, status_code=state.status, headers=state.headers,
                            media_type="application/json")
        return JSONResponse(state.body, status_code=state.status, headers=state.headers)

    @app.get("/stream/{size}")
    async def stream(size: int) -> StreamingResponse:
        async def chunks():  # no Content-Length: the client must count as it reads
            for _ in range(size):
                yield b" " * 1024
        return StreamingResponse(chunks(), media_type="application/json")

    with serve_in_thread(app) as url:
        yield url, state


@pytest.fixture
def script(server: tuple[str, Script]) -> Script:
    server[1].__init__()
    return server[1]


@pytest.fixture
def client(server: tuple[str, Script], script: Script) -> Iterator[RestClient]:
    with RestClient(server[0], system="test_system", timeout=0.5, max_answer_bytes=4096) as c:
        yield c


# -- classification ---------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("status, error", [
    (500, TransientError), (502, TransientError), (503, TransientError), (504, TransientError),
    (408, TransientError), (425, TransientError), (429, TransientError),
    (401, PermanentError), (403, PermanentError), (301, PermanentError), (302, PermanentError),
    (405, PermanentError), (415, PermanentError),
    (400, Rejected), (404, Rejected), (409, Rejected), (410, Rejected), (422, Rejected)])
def test_statuses_are_classified(client: RestClient, script: Script, method: str, status: int,
                                 error: type[Exception]) -> None:
    script.status, script.body = status, {"detail": "no"}
    with pytest.raises(error) as err:
        client.request(method, "/api/jobs")
    assert error_class_name(err.value) == error.__name__
    assert err.value.code == str(status)


def test_allowed_status_is_an_answer(client: RestClient, script: Script) -> None:
    script.status, script.body = 404, {"error": {"code": "not_found"}}
    answer = client.get("/api/jobs/{job_id}", path={"job_id": "J1"}, allow={404})
    assert answer.status == 404 and answer.json_object()["error"]["code"] == "not_found"


def test_rejection_names_the_field_and_code_but_never_the_value(client: RestClient,
                                                                script: Script) -> None:
    script.status = 422
    script.body = {"errors": [{"field": "location.property_reference", "code": "unknown_property",
                               "message": "no property 'Flat 3, 12 Mill Lane'"}]}
    with pytest.raises(HttpRejected) as err:
        client.post("/api/jobs", json={"x": 1})
    assert (err.value.field, err.value.vendor_code, err.value.status) == (
        "location.property_reference", "unknown_property", 422)
    assert err.value.code == "unknown_property", "the back office's code when it gives one"
    assert "Mill Lane" not in str(err.value)


def test_field_names_translate_the_refused_field(server: tuple[str, Script], script: Script) -> None:
    script.status = 422
    script.body = {"errors": [{"field": "location.property_reference", "code": "unknown_property"}]}
    with RestClient(server[0], system="t", field_names={"location.property_reference": "uprn"}) as client:
        with pytest.raises(Rejected) as err:
            client.post("/api/jobs", json={})
    assert err.value.field == "uprn" and "field uprn" in str(err.value)


@pytest.mark.parametrize("body, expected", [
    ({"detail": [{"loc": ["body", "contact", "phone"], "msg": "bad", "type": "string_pattern_mismatch",
                  "input": "Alex Smith"}]}, ("contact.phone", "string_pattern_mismatch")),
    ({"type": "https://example/probs/x", "title": "Invalid", "invalid-params": [
        {"name": "trade", "reason": "unknown"}]}, ("trade", None)),
    ({"errors": [{"detail": "must be a date", "pointer": "#/appointment/date"}]},
     ("appointment.date", None)),
    ({"errors": [{"code": "blank", "source": {"pointer": "/data/attributes/description"}}]},
     ("description", "blank")),
    ({"error": {"code": "duplicate_client_reference", "target": "client_reference"}},
     ("client_reference", "duplicate_client_reference")),
    ({"error": "invalid_scope"}, (None, "invalid_scope")),
    ({"errors": [{"field": "Alex Smith lives here", "code": "has spaces and more"}]}, (None, None)),
    ({"detail": "a sentence"}, (None, None)),
    ([1, 2], (None, None)),
])
def test_error_bodies_in_common_shapes(body: Any, expected: tuple[str | None, str | None]) -> None:
    import json

    assert error_details(json.dumps(body).encode()) == expected
    assert error_details(b"<html>oops</html>") == (None, None)


def test_retry_after_is_read_in_seconds_or_as_a_date(client: RestClient, script: Script) -> None:
    script.status, script.headers = 429, {"Retry-After": "7"}
    with pytest.raises(TransientError) as err:
        client.get("/api/jobs")
    assert err.value.retry_after == 7.0
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    script.status, script.headers = 503, {"Retry-After": format_datetime(later, usegmt=True)}
    with pytest.raises(TransientError) as err:
        client.get("/api/jobs")
    assert 25 <= (err.value.retry_after or 0) <= 31
    script.headers = {"Retry-After": "soon"}
    with pytest.raises(TransientError) as err:
        client.get("/api/jobs")
    assert err.value.retry_after is None


def test_connection_refused_is_transient_even_for_a_write() -> None:
    with RestClient(f"http://127.0.0.1:{free_port()}", system="t", timeout=1) as client:
        for method in ("GET", "POST"):
            with pytest.raises(TransientError) as err:
                client.request(method, "/api/jobs")
            assert not isinstance(err.value, UnknownOutcomeError), "nothing was sent"


def test_timeout_after_a_write_was_sent_is_an_unknown_outcome(client: RestClient,
                                                              script: Script) -> None:
    script.delay = 1.0
    with pytest.raises(UnknownOutcomeError):
        client.post("/api/jobs", json={"a": 1})
    with pytest.raises(TransientError) as err:
        client.get("/api/jobs")
    assert not isinstance(err.value, UnknownOutcomeError), "a read changes nothing"


def test_non_json_answer_breaks_the_contract(client: RestClient, script: Script) -> None:
    script.body = b"<html>login page</html>"
    with pytest.raises(PermanentError) as err:
        client.get("/api/jobs").json_object()
    assert err.value.code == "contract"
    script.body = [1, 2]
    with pytest.raises(PermanentError):
        client.get("/api/jobs").json_object()


def test_an_unreadable_answer_to_a_write_is_an_unknown_outcome(client: RestClient,
                                                               script: Script) -> None:
    script.status, script.body = 201, b"<html>created</html>"
    with pytest.raises(UnknownOutcomeError) as err:
        client.post("/api/jobs", json={}).json_object()
    assert err.value.code == "contract"
    script.body = {"id": "J1", "pad": "x" * 10_000}   # over the 4 kB cap
    with pytest.raises(UnknownOutcomeError) as err:
        client.post("/api/jobs", json={})
    assert err.value.code == "answer-too-large"


def test_path_values_are_encoded_whole(client: RestClient, script: Script) -> None:
    client.get("/api/jobs/{job_id}/events", path={"job_id": "J/1 ?x"})
    assert script.seen_paths[-1] == "/api/jobs/J%2F1%20%3Fx/events"
    with pytest.raises(ValueError):
        client.get("/api/jobs/{job_id}", path={"job_id": " "})


def test_bad_settings_are_permanent() -> None:
    for kwargs in ({"base_url": "ftp://x"}, {"base_url": "http://x", "timeout": 0},
                   {"base_url": "http://x", "max_answer_bytes": 0}):
        with pytest.raises(PermanentError):
            RestClient(system="t", **kwargs)  # type: ignore[arg-type]


# -- answer-size cap -------------------------------------------------------------------------

def test_answer_over_the_cap_by_content_length(client: RestClient, script: Script) -> None:
    script.body = {"items": ["x" * 100] * 100}   # about 10 kB, cap is 4 kB
    with pytest.raises(AnswerTooLarge) as err:
        client.get("/api/jobs")
    assert isinstance(err.value, PermanentError) and err.value.code == "answer-too-large"


def test_streamed_answer_is_cut_off_at_the_cap(server: tuple[str, Script], client: RestClient) -> None:
    client.get("/stream/{n}", path={"n": 3})   # 3 kB: within the cap
    with pytest.raises(AnswerTooLarge):
        client.get("/stream/{n}", path={"n": 5000})   # 5 MB without Content-Length


def test_the_answer_is_read_incrementally_and_not_past_the_cap() -> None:
    pulled = []

    class Chunks(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for n in range(1000):
                pulled.append(n)
                yield b"x" * 1000

    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=Chunks()))
    with RestClient("http://backoffice.test", system="t", max_answer_bytes=10_000,
                    transport=transport) as client:
        with pytest.raises(AnswerTooLarge):
            client.get("/api/big")
    assert len(pulled) <= 11, "reading stopped at the cap, not after the whole body"


def test_a_large_error_answer_is_still_classified(client: RestClient, script: Script) -> None:
    script.status, script.body = 422, {"errors": [{"field": "trade", "code": "x"}], "pad": "y" * 200_000}
    with pytest.raises(HttpRejected) as err:
        client.get("/api/jobs")
    assert err.value.status == 422


@pytest.mark.parametrize("body", [
    b"[" * 5000 + b"]" * 5000,                      # past the recursive parser's limit
    b'{"items": ' + b"[" * 70 + b"]" * 70 + b"}",   # just past max_answer_depth (64)
    b'{"items": [NaN]}', b'{"total": Infinity}',    # not JSON numbers
    b'{"id": "J1"', b"\xff\xfe{}",               # cut short; not UTF-8
])
def test_an_answer_the_json_reader_refuses_is_unreadable_never_a_crash(body: bytes) -> None:
    with _mock(lambda request: httpx.Response(200, content=body)) as client:
        with pytest.raises(UnreadableAnswer) as err:
            client.get("/api/jobs").json()
        assert err.value.code == "contract"
        with pytest.raises(UnknownOutcomeError) as err:   # to a write: it may have been applied
            client.post("/api/jobs", json={}).json()
        assert err.value.code == "contract"


def test_a_too_large_answer_is_an_unreadable_answer() -> None:
    with _mock(lambda request: httpx.Response(200, content=b"x" * 20_000)) as client:
        client.max_answer_bytes = 10_000
        with pytest.raises(UnreadableAnswer) as err:
            client.get("/api/jobs")
    assert isinstance(err.value, AnswerTooLarge) and err.value.code == "answer-too-large"


def test_a_hostile_error_body_still_gives_a_classified_refusal() -> None:
    deep = b'{"errors": ' + b"[" * 60_000 + b"]" * 60_000 + b"}"
    with _mock(lambda request: httpx.Response(422, content=deep)) as client:
        with pytest.raises(HttpRejected) as err:
            client.post("/api/jobs", json={})
    assert (err.value.status, err.value.field) == (422, None)
    assert error_details(b'{"errors": [{"field": "trade", "code": NaN}]}') == (None, None)


# -- authentication ---------------------------------------------------------------------------

def test_bearer_and_basic_headers(server: tuple[str, Script], script: Script) -> None:
    with RestClient(server[0], system="t", auth=BearerToken("abc")) as client:
        client.get("/api/x")
    with RestClient(server[0], system="t", auth=BasicAuth("user", "pw")) as client:
        client.get("/api/x")
    assert script.seen_auth == ["Bearer abc", "Basic " + base64.b64encode(b"user:pw").decode()]
    with pytest.raises(PermanentError):
        BearerToken("")


def _oauth(url: str, secret: str = "s3cret") -> ClientCredentials:
    return ClientCredentials(f"{url}/oauth/token", "client-1", secret, scope="jobs")


def test_oauth2_token_is_cached_and_renewed_once_on_401(server: tuple[str, Script],
                                                        script: Script) -> None:
    auth = _oauth(server[0])
    with RestClient(server[0], system="t", auth=auth) as client:
        for _ in range(3):
            client.get("/secure/jobs")
        assert auth.fetched == 1, "one token for many calls"
        script.valid_tokens.clear()            # the back office forgets every token
        client.get("/secure/jobs")
        assert auth.fetched == 2, "renewed once after the 401"
        script.refuse_all_tokens = True        # now a fresh token is refused too
        with pytest.raises(PermanentError) as err:
            client.get("/secure/jobs")
        assert err.value.code == "401"
        assert auth.fetched == 3, "one renewal per call, not a loop"


def test_oauth2_refused_client_is_permanent_and_outage_transient(server: tuple[str, Script],
                                                                 script: Script) -> None:
    with RestClient(server[0], system="t", auth=_oauth(server[0], "wrong")) as client:
        with pytest.raises(PermanentError):
            client.get("/secure/jobs")
    script.token_status = 400
    with RestClient(server[0], system="t", auth=_oauth(server[0])) as client:
        with pytest.raises(PermanentError) as err:
            client.get("/secure/jobs")
        assert err.value.code == "auth-invalid_client"
    script.token_status = 503
    with RestClient(server[0], system="t", auth=_oauth(server[0])) as client:
        with pytest.raises(TransientError):
            client.get("/secure/jobs")


def test_shared_client_is_one_per_back_office_and_credentials() -> None:
    a = shared_client("http://one.test", system="s", auth=BearerToken("t1"), timeout=5)
    b = shared_client("http://one.test/", system="s", auth=BearerToken("t1"), timeout=5)
    c = shared_client("http://one.test", system="s", auth=BearerToken("t2"), timeout=5)
    assert a is b and a is not c


# -- Retry-After in the connector's retry policy ------------------------------------------------

class _Config(ConnectorConfig):
    pass


class _Probe(Connector[_Config]):
    name, domain, default_conn_id, Config, operations = "probe", "test", "test_probe", _Config, {}

    def check(self) -> None: ...

    def submit(self, commands: Any) -> list[Outcome]:
        return []

    def fetch_updates(self, since: datetime) -> list:
        return []


def test_retrying_waits_as_long_as_the_back_office_asks() -> None:
    probe = _Probe(_Config(retry_attempts=3, retry_max_wait_seconds=2.0))
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise TransientError("busy", code="429", retry_after=0.6)
        return "ok"

    assert probe.retrying()(flaky) == "ok"
    assert calls[1] - calls[0] >= 0.6


def test_retrying_gives_up_inline_when_asked_to_wait_too_long() -> None:
    probe = _Probe(_Config(retry_attempts=5, retry_max_wait_seconds=1.0))
    calls = []

    def busy() -> None:
        calls.append(1)
        raise TransientError("busy", code="429", retry_after=120)

    command = Command(key="k", system="test_probe", operation="x", payload={}, case_ref="C")
    [outcome] = probe.submit_each([command], lambda c: busy())
    assert outcome.status is OutcomeStatus.RETRY and len(calls) == 1


# -- pagination -------------------------------------------------------------------------------

def _mock(handler: Any) -> RestClient:
    return RestClient("http://backoffice.test", system="t", transport=httpx.MockTransport(handler))


def test_page_number_pages_until_a_short_page() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        seen.append(page)
        items = [f"{page}-{i}" for i in range(2 if page < 3 else 1)]
        return httpx.Response(200, json={"items": items, "page": page})

    with _mock(handler) as client:
        got = list(page_number_pages(client, "/api/slots", page_size=2, total_pages=None))
    assert got == ["1-0", "1-1", "2-0", "2-1", "3-0"] and seen == [1, 2, 3]


def test_page_number_pages_stops_at_total_pages_and_limits_pages() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [1, 2], "total_pages": 2})

    with _mock(handler) as client:
        assert list(page_number_pages(client, "/api/slots", page_size=2)) == [1, 2, 1, 2]
        with pytest.raises(PermanentError) as err:
            list(page_number_pages(client, "/api/slots", page_size=2, total_pages=None, max_pages=3))
        assert err.value.code == "too-many-pages"


def test_cursor_pages_follow_the_cursor_and_refuse_a_loop() -> None:
    pages = {None: (["a", "b"], "c1"), "c1": (["c"], "c2"), "c2": ([], None)}

    def handler(request: httpx.Request) -> httpx.Response:
        items, following = pages[request.url.params.get("cursor")]
        return httpx.Response(200, json={"items": items, "next_cursor": following})

    with _mock(handler) as client:
        assert list(cursor_pages(client, "/api/events", params={"limit": 2})) == ["a", "b", "c"]
    pages["c2"] = (["d"], "c1")
    with _mock(handler) as client, pytest.raises(PermanentError) as err:
        list(cursor_pages(client, "/api/events"))
    assert err.value.code == "pagination-loop"


def test_next_link_pages_from_the_body_or_the_link_header() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("page_token")
        if token is None:
            return httpx.Response(200, json={"items": [1], "links": {"next": "/api/jobs?page_token=2"}})
        if token == "2":
            return httpx.Response(200, json={"items": [2], "links": {"next": None}},
                                  headers={"Link": '<http://backoffice.test/api/jobs?page_token=3>; rel="next"'})
        return httpx.Response(200, json={"items": [3]})

    with _mock(handler) as client:
        assert list(next_link_pages(client, "/api/jobs")) == [1, 2, 3]


def test_next_link_to_another_host_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "backoffice.test", "credentials never go to another host"
        return httpx.Response(200, json={"items": [1], "links": {"next": "https://evil.test/api/jobs"}})

    with _mock(handler) as client, pytest.raises(PermanentError) as err:
        list(next_link_pages(client, "/api/jobs"))
    assert err.value.code == "foreign-next-link"


def test_a_page_without_a_list_where_one_is_expected() -> None:
    with _mock(lambda r: httpx.Response(200, json={"items": "nope"})) as client:
        with pytest.raises(PermanentError) as err:
            list(cursor_pages(client, "/api/events"))
    assert err.value.code == "contract"
    with _mock(lambda r: httpx.Response(200, json={"other": []})) as client:
        assert list(cursor_pages(client, "/api/events")) == [], "an absent optional list is empty"


# -- logs -------------------------------------------------------------------------------------

def test_logs_carry_method_template_and_status_only(client: RestClient, script: Script,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret_search = {"name": "Alex Smith", "postcode": "EX1 1AQ"}
    client.get("/api/people/{person_id}", path={"person_id": "Alex Smith"}, params=secret_search)
    script.status = 422
    with pytest.raises(Rejected) as err:
        client.post("/api/people/{person_id}", path={"person_id": "Alex Smith"},
                    params=secret_search, json={"name": "Alex Smith"})
    text = caplog.text + str(err.value) + "".join(str(r.args) for r in caplog.records)
    assert "Alex" not in text and "EX1" not in text
    assert "GET /api/people/{person_id} -> 200" in caplog.text
    assert "POST /api/people/{person_id} -> 422" in caplog.text
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("httpcore.http11").getEffectiveLevel() >= logging.WARNING
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]


# -- connection settings ----------------------------------------------------------------------

def test_rest_config_picks_the_authentication_from_the_connection(server: tuple[str, Script],
                                                                  script: Script) -> None:
    from connectors.transports.rest import RestConfig

    bearer = RestConfig.from_connection(host=server[0], password="api-token",
                                        extra={"auth": "bearer"})
    basic = RestConfig.from_connection(host=server[0], login="user", password="pw",
                                       extra={"auth": "basic"})
    bearer.client("cfg-test").get("/api/x")
    basic.client("cfg-test").get("/api/x")
    assert script.seen_auth == ["Bearer api-token", "Basic " + base64.b64encode(b"user:pw").decode()]
    oauth = RestConfig.from_connection(host=server[0], login="client-1", password="s3cret",
                                       extra={"token_url": "/oauth/token", "scope": "jobs"})
    assert oauth.client("cfg-test").get("/secure/jobs").status == 200
    assert oauth.client("cfg-test") is oauth.client("cfg-test"), "one client per process"
    for bad in ({"login": "", "password": "x"}, {"login": "u", "password": "x", "extra": {"auth": "magic"}}):
        with pytest.raises(PermanentError):
            RestConfig.from_connection(host=server[0], **bad)
    assert "api-token" not in repr(bearer)
