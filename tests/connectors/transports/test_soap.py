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

from connectors.errors import (PermanentError, Rejected, TransientError, UnknownOutcomeError,
                               UnreadableAnswer, UnsafeAnswer)
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
    assert ZEEP_SETTINGS.raw_response, "answers are read by the hub's limited, tolerant reader"


def test_one_client_per_endpoint_and_user(client) -> None:  # noqa: ANN001
    assert soap_client(WSDL_PATH, ENDPOINT, timeout=2.0, username="u", password="p") is client
    assert soap_client(WSDL_PATH, ENDPOINT, timeout=2.0, username="v", password="p") is not client
    assert client.transport.operation_timeout == 2.0


def test_success_posts_to_the_configured_endpoint_with_ws_security(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body=CHECK_OK, content_type="text/xml")
    answer = soap_call(client, "SystemCheck")
    assert answer.name == "SystemCheckResponse" and answer.text("Version") == "1"
    sent = http.calls[0].request.body
    sent = sent.decode() if isinstance(sent, bytes) else sent
    assert "UsernameToken" in sent and "<wsse:Username>u</wsse:Username>" in sent


@pytest.mark.parametrize("body", ["Service Unavailable", ""])
def test_http_503_is_transient(client, http, body: str) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body=body, status=503, content_type="text/plain")
    with pytest.raises(TransientError) as info:
        soap_call(client, "SystemCheck")
    assert info.value.code == "http-503" and "sha256:" in info.value.message
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


def test_malformed_xml_is_an_unreadable_answer_with_a_digest_not_the_body(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body="<soap:Envelope><unclosed>", status=200, content_type="text/xml")
    with pytest.raises(UnreadableAnswer) as info:
        soap_call(client, "SystemCheck")
    assert "<unclosed>" not in info.value.message, "no response body in the message"
    assert "sha256:" in info.value.message and info.value.code == "malformed"
    assert isinstance(info.value, PermanentError)


def test_unreadable_answer_to_a_write_is_an_unknown_outcome(client, http) -> None:  # noqa: ANN001
    http.post(ENDPOINT, body="<html>gateway says hello</html>", status=200,
              content_type="text/html")
    with pytest.raises(UnknownOutcomeError) as info:
        soap_call(client, "AccountRebill", write=True, ClientReference="k1", AccountRef="CT1")
    assert info.value.code == "malformed"
    with pytest.raises(UnreadableAnswer):
        soap_call(client, "SystemCheck")


def test_elements_and_attributes_the_hub_does_not_use_never_fail_a_call(client, http) -> None:  # noqa: ANN001
    body = envelope(f'<SystemCheckResponse xmlns="{NS}" RecordCount="int"><Surprise a="?">1'
                    f"</Surprise><Version>1</Version><ServerTime>not a time</ServerTime>"
                    f"</SystemCheckResponse>")
    http.post(ENDPOINT, body=body, status=200, content_type="text/xml")
    assert soap_call(client, "SystemCheck").text("Version") == "1"


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
    with pytest.raises(UnsafeAnswer) as info:
        soap_call(client, "SystemCheck")
    assert info.value.code == "dtd" and info.value.security
    assert isinstance(info.value, PermanentError)


@pytest.mark.parametrize("status", [200, 500, 503])
def test_a_dtd_is_refused_and_flagged_whatever_the_status(client, http, status: int) -> None:  # noqa: ANN001
    body = fault("Server").replace('<?xml version="1.0"?>',
                                   '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]>')
    http.post(ENDPOINT, body=body, status=status, content_type="text/xml")
    with pytest.raises(UnsafeAnswer) as info:
        soap_call(client, "AccountRebill", write=True, ClientReference="k1", AccountRef="CT1")
    assert info.value.security, "an unsafe answer to a write stays a security error"


def test_an_xinclude_is_refused(client, http) -> None:  # noqa: ANN001
    body = envelope(f'<SystemCheckResponse xmlns="{NS}"><Version>1</Version>'
                    '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd"/>'
                    "</SystemCheckResponse>")
    http.post(ENDPOINT, body=body, status=200, content_type="text/xml")
    with pytest.raises(UnsafeAnswer) as info:
        soap_call(client, "SystemCheck")
    assert info.value.code == "xinclude"


def test_an_answer_past_the_size_limit_is_cut_off(http) -> None:  # noqa: ANN001
    small = soap_client(WSDL_PATH, ENDPOINT, timeout=2.0, username="u", password="p",
                        max_answer_bytes=4096)
    padding = "x" * 10_000
    body = envelope(f'<SystemCheckResponse xmlns="{NS}"><Version>1</Version>'
                    f"<Pad>{padding}</Pad></SystemCheckResponse>")
    http.post(ENDPOINT, body=body, status=200, content_type="text/xml")
    with pytest.raises(UnreadableAnswer) as info:
        soap_call(small, "SystemCheck")
    assert info.value.code == "answer-too-large"
    with pytest.raises(UnknownOutcomeError) as unknown:
        soap_call(small, "AccountRebill", write=True, ClientReference="k1", AccountRef="CT1")
    assert unknown.value.code == "answer-too-large"


def test_an_answer_nested_past_the_depth_limit_is_refused(http) -> None:  # noqa: ANN001
    shallow = soap_client(WSDL_PATH, ENDPOINT, timeout=2.0, username="u", password="p",
                          max_answer_depth=10)
    deep = "<a>" * 50 + "</a>" * 50
    body = envelope(f'<SystemCheckResponse xmlns="{NS}"><Version>1</Version>{deep}'
                    f"</SystemCheckResponse>")
    http.post(ENDPOINT, body=body, status=200, content_type="text/xml")
    with pytest.raises(UnreadableAnswer) as info:
        soap_call(shallow, "SystemCheck")
    assert info.value.code == "too-deep"


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


def test_a_needed_value_of_the_wrong_type_names_the_field_not_the_value(
        client, http, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    caplog.set_level(logging.DEBUG)
    body = envelope(f'<SystemCheckResponse xmlns="{NS}"><SystemName>R</SystemName>'
                    f"<Version>1</Version><ServerTime>born 1970 Quillfeather</ServerTime>"
                    f"</SystemCheckResponse>")
    http.post(ENDPOINT, body=body, status=200, content_type="text/xml")
    answer = soap_call(client, "SystemCheck")
    with pytest.raises(UnreadableAnswer) as info:
        answer.datetime("ServerTime", required=True)
    assert info.value.field == "SystemCheckResponse/ServerTime"
    assert info.value.code == "bad-value"
    assert "Quillfeather" not in caplog.text and "Quillfeather" not in info.value.message
    assert "Quillfeather" not in str(info.value.__cause__) and info.value.__context__ is None


def test_zeeps_transport_error_is_chained_scrubbed(client, monkeypatch) -> None:  # noqa: ANN001
    # zeep's TransportError carries the whole answer (message and .content): only a scrubbed
    # stand-in (type and traceback) may be chained, and nothing of it as __context__.
    import traceback

    import zeep.exceptions

    secret = "".join(["Quill", "feather"])   # not in this file's source lines either

    def explode(*args: object, **kwargs: object) -> None:
        raise zeep.exceptions.TransportError(f"Server returned <name>{secret}</name>", 500,
                                             f"<name>{secret}</name>".encode())

    monkeypatch.setattr(client.transport, "post", explode)
    with pytest.raises(TransientError) as info:
        soap_call(client, "SystemCheck")
    assert info.value.code == "http-500"
    printed = "".join(traceback.format_exception(info.value))
    assert "TransportError" in printed and secret not in printed
    assert info.value.__context__ is None or info.value.__suppress_context__


@pytest.mark.parametrize("content", [
    "not xml at all",
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>',
    '<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"/>',
])
def test_a_wsdl_that_will_not_load_is_a_classified_error(tmp_path, content: str) -> None:  # noqa: ANN001
    path = tmp_path / "broken.wsdl"
    path.write_text(content)
    with pytest.raises(PermanentError) as info:
        soap_client(path, ENDPOINT, timeout=2.0)
    assert info.value.code == "wsdl"
    with pytest.raises(PermanentError) as missing:
        soap_client(tmp_path / "absent.wsdl", ENDPOINT, timeout=2.0)
    assert missing.value.code == "wsdl"
