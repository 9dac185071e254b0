"""The SOAP client reads proxy settings once, for its endpoint, not on every call."""
from __future__ import annotations

import pytest

from connectors.transports.soap import _LimitedTransport


def test_proxy_settings_are_read_once_for_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.council.example:3128")
    monkeypatch.setenv("NO_PROXY", "direct.council.example")
    proxied = _LimitedTransport(timeout=5, endpoint="http://revenues.council.example/soap")
    direct = _LimitedTransport(timeout=5, endpoint="http://direct.council.example/soap")
    assert proxied.session.proxies.get("http") == "http://proxy.council.example:3128"
    assert "http" not in direct.session.proxies, "NO_PROXY still applies"
    assert proxied.session.trust_env is False, "the environment is not read again per call"
    monkeypatch.setenv("HTTP_PROXY", "http://elsewhere.example:8080")
    assert proxied.session.proxies.get("http") == "http://proxy.council.example:3128"


def test_a_ca_bundle_from_the_environment_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/council-ca.pem")
    transport = _LimitedTransport(timeout=5, endpoint="https://revenues.council.example/soap")
    assert transport.session.verify == "/etc/ssl/council-ca.pem"


def test_each_post_skips_requests_per_call_preparation_and_streams_the_answer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The POST goes straight to the session's adapter (no Session.request), streamed, so the
    answer is still read under the size limit; the session's own headers travel with it."""
    import requests
    from requests.adapters import HTTPAdapter

    sent: list[tuple[requests.PreparedRequest, dict]] = []

    class Recording(HTTPAdapter):
        def send(self, request, **kwargs):  # type: ignore[no-untyped-def, override]
            sent.append((request, kwargs))
            response = requests.Response()
            response.status_code = 200
            response._content = b"<a/>"
            response._content_consumed = True
            response.headers["Content-Type"] = "text/xml"
            return response

    def no_session_request(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("Session.request prepares every call again")

    transport = _LimitedTransport(timeout=7, endpoint="http://revenues.council.example/soap")
    transport.session.mount("http://", Recording())
    monkeypatch.setattr(transport.session, "request", no_session_request)
    answer = transport.post("http://revenues.council.example/soap", "<Envelope/>",
                            {"SOAPAction": "x"})
    assert answer.status == 200 and answer.root is not None
    request, options = sent[0]
    assert request.body == b"<Envelope/>" and request.headers["Content-Length"] == "11"
    assert request.headers["SOAPAction"] == "x" and "User-Agent" in request.headers
    assert options["stream"] is True and options["timeout"] == 7
