"""HTTP client logging never carries query strings (where a look-up's postcode would be) or bodies,
for httpx (the CRM client, the Airflow trigger) and requests/urllib3 (zeep's transport)."""
from __future__ import annotations

import logging

import httpx
import pytest
import requests
from fastapi import FastAPI

from connectors.transports.httplog import redact_http_client_logs, without_query
from crm_adapter.rest import CrmClient
from simulators.serving import serve_in_thread

SECRET_QUERY = "postcode=SW1A2AA"
SECRET_BODY = "Zebedee Quillfeather"


@pytest.fixture(scope="module")
def server() -> str:
    app = FastAPI()

    @app.get("/api/v1/cases")
    def cases(cursor: str | None = None) -> dict:
        return {"cases": [], "next_cursor": None, "who": SECRET_BODY}

    @app.post("/echo")
    def echo() -> dict:
        return {"who": SECRET_BODY}

    with serve_in_thread(app) as url:
        yield url


def test_without_query_cuts_urls_only() -> None:
    assert without_query("https://h/p?postcode=X#f") == "https://h/p"
    assert without_query("/api/v1/cases?cursor=abc") == "/api/v1/cases"
    assert str(without_query(httpx.URL("http://h/x?a=1"))) == "http://h/x"
    assert without_query("a question? not a URL") == "a question? not a URL"
    assert without_query(42) == 42


def test_httpx_logs_no_query_string_nor_body(server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with CrmClient(server, "token") as client:
        client.cases_changed_since(f"c-{SECRET_QUERY}")
    assert "CRM GET /api/v1/cases -> 200" in caplog.text, "the client logs its own template line"
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))], \
        "httpx's own request lines (full URL, path values included) stay off"
    httpx_logger = logging.getLogger("httpx")
    level = httpx_logger.level
    with CrmClient(server, "token") as client, httpx.Client() as raw:
        httpx_logger.setLevel(logging.INFO)   # an operator switches httpx's lines back on
        try:
            client.cases_changed_since(f"c-{SECRET_QUERY}")
            raw.post(f"{server}/echo?{SECRET_QUERY}", content=SECRET_BODY)   # any httpx client
        finally:
            httpx_logger.setLevel(level)
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "HTTP Request" in text, "httpx logged its requests (the check would see a leak)"
    assert SECRET_QUERY not in text and SECRET_BODY not in text


def test_urllib3_logs_no_query_string_nor_body(server: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    redact_http_client_logs()
    caplog.set_level(logging.DEBUG)
    requests.post(f"{server}/echo?{SECRET_QUERY}", data=SECRET_BODY, timeout=5)
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "/echo" in text, "urllib3 logged the request line (the check would see a leak)"
    assert SECRET_QUERY not in text and SECRET_BODY not in text
