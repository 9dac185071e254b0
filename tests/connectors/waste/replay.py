"""Replaying SOAP Body payloads to the Bartec connector over its real transport (``responses``).

``Replay`` answers each operation (by the local name of the request's Body element) with a canned
payload: a recorded body from ../shared/reference/bartec, one of the project's own fixtures in the
vendor's shapes (``OWN``), or a callable of the request. It records every request it saw.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import pytest
import responses
from lxml import etree

from connectors.waste.bartec import BartecConfig, BartecConnector

ENDPOINT = "http://bartec.replay.test/API/CollectiveAPI.asmx"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
B = "http://bartec-systems.com/"
L = "http://www.bartec-systems.com"

Answer = str | Callable[[dict[str, str]], str]


def envelope(fragment: str) -> bytes:
    """A SOAP envelope around a Body payload; declares the ``xsi`` prefix recordings use."""
    fragment = fragment.strip()
    if ":Envelope" in fragment[:400]:  # a whole document already (prolog, DTD...)
        return fragment.encode()
    if fragment.startswith("<?xml"):
        fragment = fragment.split("?>", 1)[1]
    return (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP}" '
            f'xmlns:xsi="{XSI}" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
            f"<soap:Body>{fragment}</soap:Body></soap:Envelope>").encode()


def result(operation: str, inner: str, *, count: str = "1", errors: bool = True) -> str:
    """A payload in the vendor's shape: wrapper, result with RecordCount, leaf elements."""
    block = (f'<Errors><Result xmlns="{L}">0</Result><Message xmlns="{L}"/></Errors>'
             if errors else "")
    return (f'<{operation}Response xmlns="{B}"><{operation}Result '
            f'xmlns="http://www.bartec-systems.com/{operation}.xsd" RecordCount="{count}">'
            f"{inner}{block}</{operation}Result></{operation}Response>")


def history_entry(code: str, status: str, when: str, *, by: str = "crew.app", entry_id: int = 1,
                  closing: str | None = None, comments: str = "") -> str:
    closing_xml = (f'<ClosingCode xmlns="{L}">{closing}</ClosingCode>' if closing
                   else f'<ClosingCode xmlns="{L}" xsi:nil="true"/>')
    return (f'<ServiceRequest_History><ID xmlns="{L}">{entry_id}</ID>'
            f'<ServiceCode xmlns="{L}">{code}</ServiceCode>'
            f'<ServiceStatus xmlns="{L}"><ID>2280</ID><Status>{status}</Status>'
            f"<SequenceNumber>6</SequenceNumber></ServiceStatus>{closing_xml}"
            f'<RecordStamp xmlns="{L}"><AddedBy>{by}</AddedBy><DateAdded>{when}</DateAdded>'
            f"<Comments>{comments}</Comments></RecordStamp></ServiceRequest_History>")


#: The project's own payloads for operations no recording covers (vendor shapes, invented values).
OWN: dict[str, Answer] = {
    "Authenticate": result("Authenticate", f'<Token><TokenString xmlns="{L}">T0KEN</TokenString>'
                                           f'<ExpiryDate xmlns="{L}">2099-01-01T00:00:00'
                                           "</ExpiryDate></Token>"),
    "ServiceRequests_Notes_Types_Get": result(
        "ServiceRequests_Notes_Types_Get",
        f'<NoteType><ID xmlns="{L}">1</ID><Description xmlns="{L}">GENERAL</Description></NoteType>'
        f'<NoteType><ID xmlns="{L}">7</ID><Description xmlns="{L}">CRM NOTE</Description>'
        f'<RecordStamp xmlns="{L}" xsi:nil="true"/></NoteType>', count="2"),
    "System_ExtendedDataDefinitions_Get": result(
        "System_ExtendedDataDefinitions_Get",
        f'<ExtendedDataDefinition><ID xmlns="{L}">2</ID><Name xmlns="{L}">MISSED</Name>'
        f'<Fields xmlns="{L}"><Field><Name>COLLECTION_DATE</Name><DataType>DATE</DataType></Field>'
        f"<Field><Name>BIN_TYPE</Name></Field></Fields></ExtendedDataDefinition>"),
    "ServiceRequest_Note_Create": result("ServiceRequest_Note_Create",
                                         f'<NoteID xmlns="{L}">901</NoteID>'),
}


@dataclass
class Replay:
    answers: dict[str, Answer]
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def __call__(self, request: object) -> tuple[int, dict[str, str], bytes]:
        body = request.body  # type: ignore[attr-defined]
        root = etree.fromstring(body if isinstance(body, bytes) else body.encode())
        operation_element = root.find(f"{{{SOAP}}}Body")[0]
        operation = etree.QName(operation_element).localname
        params = {etree.QName(e).localname: (e.text or "") for e in operation_element
                  if isinstance(e.tag, str)}
        self.calls.append((operation, params))
        answer = self.answers[operation]
        payload = answer(params) if callable(answer) else answer
        return 200, {"Content-Type": "text/xml; charset=utf-8"}, envelope(payload)

    def asked(self, operation: str) -> list[dict[str, str]]:
        return [p for op, p in self.calls if op == operation]


@contextlib.contextmanager
def replaying(answers: Mapping[str, Answer]) -> Iterator[Replay]:
    """``Replay`` for the length of a block (usable inside a hypothesis example)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        player = Replay({**OWN, **answers})
        mock.add_callback(responses.POST, ENDPOINT, callback=player)
        yield player


@pytest.fixture
def replay() -> Iterator[Callable[[Mapping[str, Answer]], Replay]]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        def start(answers: Mapping[str, Answer]) -> Replay:
            player = Replay({**OWN, **answers})
            mock.remove(responses.POST, ENDPOINT)
            mock.add_callback(responses.POST, ENDPOINT, callback=player)
            return player
        yield start


def connector(**overrides: object) -> BartecConnector:
    values: dict[str, object] = {"endpoint": ENDPOINT, "username": "hub-api", "password": "pw",
                                 "timeout_seconds": 2, "retry_attempts": 1,
                                 "retry_max_wait_seconds": 0.01}
    values.update(overrides)
    return BartecConnector(BartecConfig(**values))  # type: ignore[arg-type]
