"""The SOAP client reads proxy settings once, for its endpoint, not on every call."""
from __future__ import annotations

import pytest

from connectors.transports.soap import _StatusTransport


def test_proxy_settings_are_read_once_for_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.council.example:3128")
    monkeypatch.setenv("NO_PROXY", "direct.council.example")
    proxied = _StatusTransport(timeout=5, endpoint="http://revenues.council.example/soap")
    direct = _StatusTransport(timeout=5, endpoint="http://direct.council.example/soap")
    assert proxied.session.proxies.get("http") == "http://proxy.council.example:3128"
    assert "http" not in direct.session.proxies, "NO_PROXY still applies"
    assert proxied.session.trust_env is False, "the environment is not read again per call"
    monkeypatch.setenv("HTTP_PROXY", "http://elsewhere.example:8080")
    assert proxied.session.proxies.get("http") == "http://proxy.council.example:3128"


def test_a_ca_bundle_from_the_environment_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/council-ca.pem")
    transport = _StatusTransport(timeout=5, endpoint="https://revenues.council.example/soap")
    assert transport.session.verify == "/etc/ssl/council-ca.pem"
