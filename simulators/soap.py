"""A tiny SOAP 1.1 server on FastAPI + lxml, shared by the SOAP simulators (never by the product).

``soap_app`` serves a WSDL and dispatches document/literal requests to handlers by the local name of
the Body's first child. Handlers take a ``SoapRequest`` and return the response element (it is put
in an envelope) or raise ``SoapFault``. ``FaultSwitch`` (``simulators.kit``'s, with SOAP modes)
injects transient failures for tests; the admin endpoints are the kit's.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from lxml import etree
from starlette.concurrency import run_in_threadpool

from simulators import kit

log = logging.getLogger(__name__)

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"

class SoapFault(Exception):
    """A SOAP fault the simulator answers with (HTTP 500)."""

    def __init__(self, code: str, message: str, detail: str | None = None) -> None:
        """``code`` is ``Client`` or ``Server``, optionally with a dotted subcode
        (``Client.UnknownAccount``, SOAP 1.1 style)."""
        code = code.removeprefix("soap:")
        if code.partition(".")[0] not in ("Client", "Server"):
            raise ValueError("SOAP fault code must start with Client or Server")
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail


@dataclass
class SoapRequest:
    """One parsed SOAP request."""

    operation: str
    body: etree._Element
    """The first child of soap:Body (the operation's request element)."""
    header: etree._Element | None
    http_headers: Mapping[str, str]


Handler = Callable[[SoapRequest], etree._Element]


def safe_parser() -> etree.XMLParser:
    """An lxml parser that never resolves entities, loads DTDs or touches the network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_comments=True)


def child_text(parent: etree._Element, name: str) -> str | None:
    """Text of the first direct child with local name ``name`` (any namespace), or None."""
    for child in parent:
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            return (child.text or "").strip()
    return None


def child(parent: etree._Element, name: str) -> etree._Element | None:
    """The first direct child with local name ``name`` (any namespace), or None."""
    for node in parent:
        if isinstance(node.tag, str) and etree.QName(node).localname == name:
            return node
    return None


def username_token(request: SoapRequest) -> tuple[str, str] | None:
    """(username, password) from a WS-Security UsernameToken (PasswordText), or None."""
    if request.header is None:
        return None
    token = request.header.find(f"{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
    if token is None:
        return None
    username = token.findtext(f"{{{WSSE}}}Username")
    password = token.findtext(f"{{{WSSE}}}Password")
    if username is None or password is None:
        return None
    return username, password


SOAP_FAULT_MODES = ("server_fault", "http_503", "timeout")
"""``server_fault``: a soap:Server fault; ``http_503``: plain HTTP 503; ``timeout``: the request IS
applied, then the answer is held back ``delay_seconds``, past the client's timeout, so the client
cannot know the outcome."""


class FaultSwitch(kit.FaultSwitch):
    """The kit's fault switch with the SOAP simulators' modes (``server_fault`` by default)."""

    def __init__(self, default_delay_seconds: float = 3.0) -> None:
        super().__init__(modes=SOAP_FAULT_MODES, default_delay_seconds=default_delay_seconds)


def add_fault_admin(app: FastAPI, faults: kit.FaultSwitch) -> None:
    """The kit's fault endpoints on ``app``: ``POST /admin/faults`` ``{"count": n, "mode": ...,
    "delay_seconds": ...}`` arms ``faults``; ``DELETE /admin/faults`` disarms them."""
    app.include_router(kit.fault_router(faults))


def envelope(element: etree._Element) -> bytes:
    """``element`` wrapped in a SOAP 1.1 envelope, serialised."""
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    body.append(element)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def fault_envelope(fault: SoapFault) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    node = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(node, "faultcode").text = f"soap:{fault.code}"
    etree.SubElement(node, "faultstring").text = fault.message
    if fault.detail is not None:
        etree.SubElement(etree.SubElement(node, "detail"), "Message").text = fault.detail
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


_XML = "text/xml; charset=utf-8"


def _fault_response(fault: SoapFault) -> Response:
    return Response(fault_envelope(fault), status_code=500, media_type=_XML)


def _parse(raw: bytes, http_headers: Mapping[str, str]) -> SoapRequest:
    try:
        doc = etree.fromstring(raw, parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        raise SoapFault("Client", "request is not well-formed XML") from exc
    if doc.getroottree().docinfo.doctype:
        raise SoapFault("Client", "DTDs are not accepted")
    if doc.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapFault("Client", "not a SOAP 1.1 envelope")
    body = doc.find(f"{{{SOAP_ENV}}}Body")
    first = None if body is None else next((c for c in body if isinstance(c.tag, str)), None)
    if first is None:
        raise SoapFault("Client", "empty SOAP body")
    return SoapRequest(operation=etree.QName(first).localname, body=first,
                       header=doc.find(f"{{{SOAP_ENV}}}Header"), http_headers=dict(http_headers))


def _wsdl_for(wsdl_text: str, address: str) -> bytes:
    doc = etree.fromstring(wsdl_text.encode(), parser=safe_parser())
    for node in doc.iter(f"{{{WSDL_SOAP}}}address"):
        node.set("location", address)
    return etree.tostring(doc, xml_declaration=True, encoding="utf-8")


async def _hold_back(request: Request, delay: float) -> None:
    """Sleep ``delay`` seconds, or less if the client has already given up."""
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.05)


def soap_app(*, wsdl_text: str, handlers: Mapping[str, Handler], path: str = "/soap",
             authenticate: Callable[[SoapRequest], None] | None = None,
             title: str = "SOAP simulator", faults: kit.FaultSwitch | None = None) -> FastAPI:
    """A FastAPI app speaking SOAP 1.1 at ``path``.

    GET {path}?wsdl serves the WSDL (soap:address rewritten to the request's URL); POST {path} parses
    the envelope safely, calls ``authenticate`` (raise SoapFault to refuse), dispatches by the Body
    child's local name and wraps the handler's element in an envelope; SoapFault -> HTTP 500 with
    soap:Fault; unknown operation -> Client fault. ``faults`` (optional) injects armed failures.
    More routes (admin endpoints) may be added to the returned app.
    """
    app = FastAPI(title=title, openapi_url=None, docs_url=None, redoc_url=None)
    handler_map = dict(handlers)

    @app.get(path)
    def wsdl(request: Request) -> Response:
        if "wsdl" not in {k.lower() for k in request.query_params}:
            return Response("add ?wsdl for the service description", status_code=404)
        address = str(request.url.replace(query=""))
        return Response(_wsdl_for(wsdl_text, address), media_type=_XML)

    def run(raw: bytes, headers: Mapping[str, str]) -> Response:
        try:
            soap_request = _parse(raw, headers)
            if authenticate is not None:
                authenticate(soap_request)
            handler = handler_map.get(soap_request.operation)
            if handler is None:
                raise SoapFault("Client", f"unknown operation {soap_request.operation}")
            result = handler(soap_request)
        except SoapFault as fault:
            return _fault_response(fault)
        except Exception:  # noqa: BLE001 - a simulator bug is a Server fault, like a real system
            log.exception("SOAP handler failed")
            return _fault_response(SoapFault("Server", "internal error"))
        return Response(envelope(result), media_type=_XML)

    @app.post(path)
    async def call(request: Request) -> Response:
        raw = await request.body()
        injected = faults.take() if faults is not None else None
        if injected is not None and injected[0] == "server_fault":
            return _fault_response(SoapFault("Server", "service temporarily unavailable"))
        if injected is not None and injected[0] == "http_503":
            return Response("Service Unavailable", status_code=503, media_type="text/plain")
        response = await run_in_threadpool(run, raw, request.headers)
        if injected is not None and injected[0] == "timeout":
            await _hold_back(request, injected[1])
        return response

    return app
