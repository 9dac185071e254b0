"""connectors.transports.soap: every HTTP/SOAP failure comes out classified.

``responses`` injects the HTTP faults; the WSDL is the Revenues one shipped in the repo.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
import requests
import responses
from urllib3.exceptions import ProtocolError

from connectors.errors import PermanentError, Rejected, TransientError, UnknownOutcomeError
from connectors.revenues.northgate import WSDL_PATH
from connectors.transports.soap import ZEEP_SETTINGS, soap_call, soap_client

ENDPOINT = "http://revenues.test/soap"
NS = "http://revenues.example.gov.uk/northgate/v1"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(body: str, prolog: str = "") -> str:
    return (f'<?xml version="1.0"?>{prolog}<soap:Envelope xmlns:soap="{ENV}">'
            f"<soap:Body>{body}</soap:Body></soap:Envelope>")


def fault(code: str, message: str = "refused") -> str:
    return envelope(f"<soap:Fault><faultcode>soap:{code}</faultcode>"
                    f"<faultstring>{message}</faultstring></soap:Fault>")


CHECK_OK = envelope(f'<SystemCheckResponse xmlns="{NS}"><SystemName>R</SystemName>'
                    f"<Version>1</Version><ServerTime>2026-01-01T00:00:00Z</ServerTime>"
                    f"</SystemCheckResponse>")


@pytest.fixture
def client():  # noqa: ANN201
    return soap_client(WSDL_PATH, ENDPOINT, timeout=2.0, username="u", password="p")


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_settings_are_strict() -> None:
    assert ZEEP_SETTINGS.strict and ZEEP_SETTINGS.forbid_dtd and ZEEP_SETTINGS.forbid_entities
    assert ZEEP_SETTINGS.forbid_external and not ZEEP_SETTINGS.xml_huge_tree


def test_one_client_per_endpoint_and_user(client) -> None:  # noqa: ANN001
    assert soap_client(WSDL_PATH, ENDPOINT, timeout=2.0, username="u", password="p") is client
    assert soap_client(WSDL_PATH, ENDPOINT, timeout=2.0, username="v", password="p") is not client
    assert client.transport.operation_timeout == 2.0


def test_success_posts_to_the_configured_endpoint_with_ws_security(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body=CHECK_OK, content_type="text/xml")
    answer = soap_call(client, "SystemCheck")
    assert answer.Version == "1"
    sent = http.calls[0].request.body
    sent = sent.decode() if isinstance(sent, bytes) else sent
    assert "UsernameToken" in sent and "<wsse:Username>u</wsse:Username>" in sent


@pytest.mark.parametrize("body", ["Service Unavailable", ""])
def test_http_503_is_transient(client, http, body: str) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body=body, status=503, content_type="text/plain")
    with pytest.raises(TransientError) as info:
        soap_call(client, "SystemCheck")
    assert info.value.code == "http-503" and info.value.__cause__ is not None
    assert not isinstance(info.value, UnknownOutcomeError)


def test_http_500_with_an_html_page_is_transient(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body="<html><body>proxy error", status=500, content_type="text/html")
    with pytest.raises(TransientError):
        soap_call(client, "SystemCheck")


@pytest.mark.parametrize("status", [401, 403])
def test_http_401_403_are_permanent(client, http, status: int) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body=fault("Client"), status=status, content_type="text/xml")
    with pytest.raises(PermanentError) as info:
        soap_call(client, "SystemCheck")
    assert info.value.code == f"http-{status}"


def test_authentication_fault_is_permanent(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body=fault("Client.Authentication"), status=500, content_type="text/xml")
    with pytest.raises(PermanentError):
        soap_call(client, "SystemCheck")


def test_client_fault_is_rejected_with_its_subcode(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body=fault("Client.UnknownAccount", "account CT1 not found"), status=500,
              content_type="text/xml")
    with pytest.raises(Rejected) as info:
        soap_call(client, "AccountGet", AccountRef="CT1")
    assert info.value.code == "UnknownAccount" and "not found" in info.value.message


def test_plain_client_fault_is_rejected(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body=fault("Client"), status=500, content_type="text/xml")
    with pytest.raises(Rejected) as info:
        soap_call(client, "SystemCheck")
    assert info.value.code == "Client"


def test_server_fault_is_transient(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body=fault("Server"), status=500, content_type="text/xml")
    with pytest.raises(TransientError) as info:
        soap_call(client, "SystemCheck")
    assert not isinstance(info.value, UnknownOutcomeError)


def test_connection_refused_is_transient(tmp_path) -> None:  # noqa: ANN001
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = soap_client(WSDL_PATH, f"http://127.0.0.1:{port}/soap", timeout=1.0)
    with pytest.raises(TransientError) as info:
        soap_call(client, "SystemCheck")
    assert not isinstance(info.value, UnknownOutcomeError) and info.value.code == "connect"


def test_dns_failure_is_transient() -> None:
    client = soap_client(WSDL_PATH, "http://no-such-host.invalid/soap", timeout=1.0)
    with pytest.raises(TransientError) as info:
        soap_call(client, "SystemCheck")
    assert not isinstance(info.value, UnknownOutcomeError)


def test_read_timeout_is_an_unknown_outcome(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(UnknownOutcomeError) as info:
        soap_call(client, "SystemCheck")
    assert info.value.code == "read-timeout"


def test_connection_lost_after_sending_is_an_unknown_outcome(client, http) -> None:  # noqa: ANN001
    lost = requests.exceptions.ConnectionError(ProtocolError("Connection aborted."))
    http.post(ENDPOINT, body=lost)
    with pytest.raises(UnknownOutcomeError):
        soap_call(client, "SystemCheck")


def test_connect_timeout_is_transient_not_unknown(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body=requests.exceptions.ConnectTimeout("connect timed out"))
    with pytest.raises(TransientError) as info:
        soap_call(client, "SystemCheck")
    assert not isinstance(info.value, UnknownOutcomeError)


def test_malformed_xml_is_permanent(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body="<soap:Envelope><unclosed>", status=200, content_type="text/xml")
    with pytest.raises(PermanentError) as info:
        soap_call(client, "SystemCheck")
    assert "<unclosed>" not in info.value.message, "no response body in the message"


def test_schema_mismatch_is_permanent(client, http) -> None:  # noqa: ANN001
    body = envelope(f'<SystemCheckResponse xmlns="{NS}"><Surprise>1</Surprise>'
                    f"</SystemCheckResponse>")
    http.post(ENDPOINT, body=body, status=200, content_type="text/xml")
    with pytest.raises(PermanentError):
        soap_call(client, "SystemCheck")


def test_unknown_operation_is_permanent(client) -> None:  # noqa: ANN001
    with pytest.raises(PermanentError):
        soap_call(client, "NoSuchOperation")


@pytest.mark.parametrize("prolog", [
    '<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE x [<!ENTITY big "aaaaaaaaaa">]>',
    '<!DOCTYPE x SYSTEM "http://attacker.test/x.dtd">',
])
def test_dtds_and_entities_in_a_response_are_refused(client, http, prolog: str) -> None:  # noqa: ANN001
    body = envelope(f'<SystemCheckResponse xmlns="{NS}"><SystemName>&amp;</SystemName>'
                    f"<Version>1</Version><ServerTime>2026-01-01T00:00:00Z</ServerTime>"
                    f"</SystemCheckResponse>", prolog=prolog)
    http.post(ENDPOINT, body=body, status=200, content_type="text/xml")
    with pytest.raises(PermanentError) as info:
        soap_call(client, "SystemCheck")
    assert info.value.code == "forbidden-xml"


def test_envelopes_never_reach_the_logs(client, http, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    caplog.set_level(logging.DEBUG)
    http.post(ENDPOINT, body=fault("Client.UnknownAccount"), status=500, content_type="text/xml")
    with pytest.raises(Rejected):
        soap_call(client, "AccountGet", AccountRef="CT12345678")
    assert "CT12345678" not in caplog.text
    assert "Envelope" not in caplog.text


@pytest.mark.parametrize("status", [408, 429])
def test_try_later_statuses_are_transient(client, http, status: int) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body="Too Many Requests", status=status, content_type="text/plain")
    with pytest.raises(TransientError) as info:
        soap_call(client, "SystemCheck")
    assert info.value.code == f"http-{status}"
    assert not isinstance(info.value, UnknownOutcomeError)


def test_http_404_stays_permanent(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body="Not Found", status=404, content_type="text/plain")
    with pytest.raises(PermanentError):
        soap_call(client, "SystemCheck")


def test_answer_cut_off_after_sending_is_an_unknown_outcome(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body=requests.exceptions.ChunkedEncodingError("connection broken"))
    with pytest.raises(UnknownOutcomeError) as info:
        soap_call(client, "SystemCheck")
    assert info.value.code == "answer-lost"


def test_a_value_of_the_wrong_type_fails_the_call_and_is_not_logged(
        client, http, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    caplog.set_level(logging.DEBUG)
    body = envelope(f'<SystemCheckResponse xmlns="{NS}"><SystemName>R</SystemName>'
                    f"<Version>1</Version><ServerTime>born 1970 Quillfeather</ServerTime>"
                    f"</SystemCheckResponse>")
    http.post(ENDPOINT, body=body, status=200, content_type="text/xml")
    with pytest.raises(PermanentError) as info:
        soap_call(client, "SystemCheck")
    assert info.value.code == "schema"
    assert "Quillfeather" not in caplog.text and "Quillfeather" not in info.value.message
    http.replace(responses.POST, ENDPOINT, body=CHECK_OK, content_type="text/xml")
    assert soap_call(client, "SystemCheck").Version == "1", "the next good answer is not tainted"
