"""SOAP client cost per call: build the request, post it, read the answer, with the answer canned
(no network, no back office), in CPU time of the calling thread, so a busy machine does not blur it.

Measured for the hot operations (a Revenues create, a Waste create) both ways: zeep reading the
answer, and the plain-lxml reading (``connectors.transports.soap_fast``) that the hub uses.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from connectors.transports import soap_fast
from connectors.transports.soap import soap_call, soap_client


class _Canned(HTTPAdapter):
    """Answers every POST with the same recorded body."""

    def __init__(self) -> None:
        super().__init__()
        self.body = b""
        self.live: HTTPAdapter | None = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self.live is not None:   # recording the real answer once
            response = self.live.send(request, **kwargs)
            self.body = response.content
            return response
        response = requests.Response()
        response.status_code = 200
        response._content = self.body
        response.headers["Content-Type"] = "text/xml; charset=utf-8"
        response.url = request.url or ""
        response.request = request
        return response


def _per_call(client: Any, operation: str, params: dict[str, Any], calls: int,
              fast: bool) -> float:
    original = soap_fast._reader
    if not fast:
        soap_fast._reader = lambda _client, _operation: None  # type: ignore[assignment]
    try:
        started = time.thread_time()
        for _ in range(calls):
            soap_call(client, operation, **params)
        return (time.thread_time() - started) / calls
    finally:
        soap_fast._reader = original  # type: ignore[assignment]


def _revenues(base: str) -> tuple[Any, str, dict[str, Any]]:
    from connectors.revenues.northgate import WSDL_PATH

    client = soap_client(WSDL_PATH, f"{base}/soap", timeout=10, username="bench",
                         password="bench-password-1")
    return client, "DiscountApply", {"ClientReference": "BENCH-1", "AccountRef": "CT00000002",
                                     "DiscountType": "SPD", "EffectiveFrom": "2026-04-01",
                                     "AdultsResident": 1}


def _waste(base: str) -> tuple[Any, str, dict[str, Any]]:
    from connectors.waste.bartec import WSDL_PATH

    client = soap_client(WSDL_PATH, f"{base}/soap", timeout=10)
    login = soap_call(client, "Authenticate", user="bench", password="bench-password-1")
    return client, "ServiceRequest_Create", {
        "token": login.Token.TokenString, "ServiceTypeID": 112, "UPRN": "100090000001",
        "ExternalReference": "BENCH-1", "Source": "CRM", "DateRequested": "2026-03-01T10:00:00",
        "ExtendedData": {"ExtendedDataField": [{"FieldName": "BIN_TYPE",
                                                "FieldValue": "refuse"}]}}


def measure(calls: int) -> dict[str, tuple[float, tuple[str, float] | None, str]]:
    """``{name: (calls/s fast, (anchor name, calls/s zeep), note)}``."""
    from simulators.revenues.app import create_app as revenues_app
    from simulators.serving import serve_in_thread
    from simulators.waste.app import create_app as waste_app

    results: dict[str, tuple[float, tuple[str, float] | None, str]] = {}
    with tempfile.TemporaryDirectory(prefix="hub-bench-soap-") as tmp:
        apps = {"Revenues DiscountApply": (revenues_app, _revenues),
                "Waste ServiceRequest_Create": (waste_app, _waste)}
        for name, (make_app, setup) in apps.items():
            app = make_app(Path(tmp) / f"{name.split()[0]}.db", username="bench",
                           password="bench-password-1", seed_demo=True)
            with serve_in_thread(app) as base:
                client, operation, params = setup(base)
                canned = _Canned()
                canned.live = HTTPAdapter()
                client.transport.session.mount("http://", canned)
                soap_call(client, operation, **params)   # the real answer, recorded once
                canned.live = None
                _per_call(client, operation, params, max(1, calls // 10), fast=True)  # warm up
                zeep = _per_call(client, operation, params, calls, fast=False)
                fast = _per_call(client, operation, params, calls, fast=True)
                client.transport.session.mount("http://", HTTPAdapter())
            results[f"SOAP client per call, {name} (CPU)"] = (
                1 / fast, ("zeep reading the answer", 1 / zeep),
                f"{fast * 1e6:.0f} us vs {zeep * 1e6:.0f} us per call; answer canned")
    return results
