"""The plain-lxml reading of SOAP answers returns exactly what zeep returns, or leaves it to zeep.

Answers are generated from each operation's own schema (every value its XSD type allows, optional
elements present or not) and then spoiled in the ways a back office might (an element the schema
does not declare, ``xsi:nil``, a repeat, a value that does not convert, a SOAP header, a DOCTYPE).
For every one, the fast reader's result equals zeep's ``process_reply`` on the same bytes, or zeep
raises the same error both ways.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from zeep import xsd

from connectors.revenues.northgate import WSDL_PATH as REVENUES_WSDL
from connectors.transports import soap_fast
from connectors.transports.soap import soap_client
from connectors.waste.bartec import WSDL_PATH as WASTE_WSDL

ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _client(wsdl: Path) -> Any:
    return soap_client(wsdl, f"http://fast-{wsdl.stem}.test/soap", timeout=5,
                       username="u" if wsdl == REVENUES_WSDL else None, password="p")


def _plain(value: Any) -> Any:
    """zeep objects and fast answers as plain dicts and lists, for comparing."""
    if isinstance(value, soap_fast.Answer):
        return {k: _plain(value[k]) for k in value}
    if isinstance(value, xsd.CompoundValue):
        return {k: _plain(v) for k, v in value.__values__.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _operations() -> list[tuple[Path, str]]:
    found = []
    for wsdl in (REVENUES_WSDL, WASTE_WSDL):
        client = _client(wsdl)
        for name in client.service._binding._operations:
            if soap_fast._reader(client, name) is not None:
                found.append((wsdl, name))
    return found


PLAIN = _operations()


def test_the_hot_operations_are_read_the_fast_way() -> None:
    names = {name for _, name in PLAIN}
    assert {"MoveOut", "MoveIn", "AccountRebill", "DiscountApply", "DirectDebitCreate",
            "ReliefApply"} <= names
    assert "RequestFind" not in names, "a list answer stays with zeep"


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


def _simple_text(xsd_type: Any) -> st.SearchStrategy[str]:
    base = type(xsd_type).__mro__
    names = {cls.__name__ for cls in base}
    if "Boolean" in names:
        return st.sampled_from(["true", "false", "1", "0"])
    if names & {"Integer", "Long", "Int", "Short", "Byte", "NonNegativeInteger",
                "PositiveInteger", "UnsignedInt", "UnsignedLong", "UnsignedShort"}:
        return st.integers(-10 ** 12, 10 ** 12).map(str)
    if names & {"Decimal", "Float", "Double"}:
        return st.decimals(-10 ** 6, 10 ** 6, places=2, allow_nan=False).map(str)
    if "DateTime" in names:
        return st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1),
                            timezones=st.sampled_from([None, timezone.utc])).map(
                                lambda d: d.isoformat())
    if "Date" in names:
        return st.dates(min_value=date(1990, 1, 1)).map(date.isoformat)
    return _TEXT


@st.composite
def _element(draw: st.DrawFn, xsd_type: Any, tag: str) -> etree._Element:
    node = etree.Element(tag)
    if isinstance(xsd_type, xsd.ComplexType):
        for _, child in xsd_type.elements:
            if child.min_occurs == 0 and draw(st.booleans()):
                continue
            node.append(draw(_element(child.type, child.qname.text)))
    else:
        node.text = draw(_simple_text(xsd_type))
    return node


SPOILS = ["none", "unknown-element", "nil", "repeat", "bad-value", "header", "doctype",
          "attribute", "pretty"]


def _spoil(body: etree._Element, how: str) -> bytes:
    leaves = [n for n in body.iter() if len(n) == 0 and n is not body]
    if how == "unknown-element":
        body.append(etree.Element(f"{{{body.tag.split('}')[0][1:]}}}NotInTheSchema"))
    elif how == "nil" and leaves:
        leaves[0].set(f"{{{XSI}}}nil", "true")
        leaves[0].text = None
    elif how == "repeat" and leaves:
        leaves[0].addnext(etree.fromstring(etree.tostring(leaves[0])))
    elif how == "bad-value" and leaves:
        leaves[-1].text = "not-a-value-of-its-type-\u00e9"
    elif how == "attribute":
        body.set("extra", "1")
    envelope = etree.Element(f"{{{ENV}}}Envelope", nsmap={"soap": ENV})
    if how == "header":
        etree.SubElement(etree.SubElement(envelope, f"{{{ENV}}}Header"), "Something").text = "x"
    etree.SubElement(envelope, f"{{{ENV}}}Body").append(body)
    text = etree.tostring(envelope, pretty_print=(how == "pretty"))
    if how == "doctype":
        text = b'<!DOCTYPE Envelope [<!ENTITY e "x">]>' + text
    return b"<?xml version='1.0' encoding='utf-8'?>\n" + text


def _response(content: bytes, status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = content
    response.headers["Content-Type"] = "text/xml; charset=utf-8"
    return response


def _outcome(read: Any) -> tuple[str, Any]:
    try:
        return "value", _plain(read())
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return "error", type(exc).__name__


def _fast_or_zeep(client: Any, name: str, content: bytes) -> Any:
    binding = client.service._binding
    reader = soap_fast._reader(client, name)
    try:
        return reader.read(content)
    except (soap_fast._NotPlain, etree.XMLSyntaxError):
        return binding.process_reply(client, binding.get(name), _response(content))


@pytest.mark.parametrize(("wsdl", "name"), PLAIN, ids=[n for _, n in PLAIN])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), how=st.sampled_from(SPOILS))
def test_fast_reading_equals_zeep(wsdl: Path, name: str, data: st.DataObject, how: str) -> None:
    client = _client(wsdl)
    binding = client.service._binding
    body = binding.get(name).output.body
    content = _spoil(data.draw(_element(body.type, body.qname.text)), how)
    zeep = _outcome(lambda: binding.process_reply(client, binding.get(name), _response(content)))
    fast = _outcome(lambda: _fast_or_zeep(client, name, content))
    assert fast == zeep
    if how in ("none", "pretty"):   # an answer as the schema describes it never needs zeep
        soap_fast._reader(client, name).read(content)


def test_a_plain_answer_is_read_without_zeep() -> None:
    client = _client(REVENUES_WSDL)
    ns = "http://revenues.example.gov.uk/northgate/v1"
    content = (f'<soap:Envelope xmlns:soap="{ENV}"><soap:Body><DiscountApplyResponse xmlns="{ns}">'
               "<Request><Reference>RQ1</Reference><ClientReference>K1</ClientReference>"
               "<RequestType>DISCOUNT</RequestType><AccountRef>CT00000001</AccountRef>"
               "<Status>COMPLETED</Status><BalancePence>1234</BalancePence>"
               "<CreatedAt>2026-03-01T10:00:00+00:00</CreatedAt></Request>"
               "</DiscountApplyResponse></soap:Body></soap:Envelope>").encode()
    answer = soap_fast._reader(client, "DiscountApply").read(content)
    assert isinstance(answer, soap_fast.Answer)
    assert (answer.Reference, answer.Status, answer.Reason, answer.BalancePence) == (
        "RQ1", "COMPLETED", None, 1234)
    assert answer.CreatedAt == datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    assert "CT00000001" not in repr(answer), "reprs name fields, never values"
