"""SOAP client cost per call: build the request, post it, read the answer, with the answer canned
(no network, no back office), in CPU time of the calling thread, so a busy machine does not blur it.

Measured for the hot operations (a Revenues create, a Waste create) both ways: the hub's client
(``connectors.transports.soap``: zeep builds the request, the answer is read under limits by the
hardened lxml parser and returned as a tolerant ``Node``), and, as the anchor, a stock zeep client
on the same WSDL with the same strict settings that lets zeep read the answer into its objects.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import zeep
from requests.adapters import HTTPAdapter
from zeep.transports import Transport

from connectors.transports.soap import ZEEP_SETTINGS, EndpointClient, soap_call, soap_client


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
        response._content_consumed = True   # the hub's transport streams: read from _content
        response.headers["Content-Type"] = "text/xml; charset=utf-8"
        response.url = request.url or ""
        response.request = request
        return response


def _per_call(call: Any, calls: int) -> float:
    started = time.thread_time()
    for _ in range(calls):
        call()
    return (time.thread_time() - started) / calls


def _zeep_client(client: Any, canned: HTTPAdapter) -> Any:
    """A stock zeep client for the same WSDL and endpoint (zeep reads the answer), on ``canned``."""
    settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True,
                             forbid_external=True, xml_huge_tree=False, raw_response=False)
    assert ZEEP_SETTINGS.raw_response, "the hub's client reads answers itself"
    transport = Transport(timeout=10, operation_timeout=10)
    transport.session.mount("http://", canned)
    return EndpointClient(client.wsdl.location, endpoint=client.endpoint,
                          wsse=client.wsse, settings=settings, transport=transport)


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
        "token": login.need("AuthenticateResult").need("Token").required("TokenString"), "ServiceTypeID": 112, "UPRN": "100090000001",
        "ExternalReference": "BENCH-1", "Source": "CRM", "DateRequested": "2026-03-01T10:00:00",
        "ExtendedData": {"ExtendedDataField": [{"FieldName": "BIN_TYPE",
                                                "FieldValue": "refuse"}]}}


def measure(calls: int) -> dict[str, tuple[float, tuple[str, float] | None, str]]:
    """``{name: (calls/s hub client, (anchor name, calls/s stock zeep), note)}``."""
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
                stock = _zeep_client(client, canned)
                hub_call = lambda: soap_call(client, operation, **params)  # noqa: E731
                zeep_call = lambda: getattr(stock.service, operation)(**params)  # noqa: E731
                _per_call(hub_call, max(1, calls // 10))   # warm up
                _per_call(zeep_call, max(1, calls // 10))
                zeep_time = _per_call(zeep_call, calls)
                hub_time = _per_call(hub_call, calls)
                client.transport.session.mount("http://", HTTPAdapter())
            results[f"SOAP client per call, {name} (CPU)"] = (
                1 / hub_time, ("stock zeep client reading the answer", 1 / zeep_time),
                f"{hub_time * 1e6:.0f} us vs {zeep_time * 1e6:.0f} us per call; answer canned")
    return results
