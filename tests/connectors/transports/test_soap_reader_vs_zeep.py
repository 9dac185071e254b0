"""The hub's tolerant reading of SOAP answers reads what zeep reads, and more tolerantly.

``soap_call`` does not hand answers to zeep's deserialiser: the transport parses them under limits
and the connector reads the response element by local name (``xmlreader.Node``). Answers are
generated here from each operation's own schema in the Revenues and Waste WSDLs (every value its
XSD type allows, optional elements present or not, attributes present or not) and:

- as the schema describes them (compact or pretty-printed), every value zeep reads is read the same
  by the tolerant reader at the same place, with the readers connectors use (``integer``,
  ``decimal``, ``boolean``, ``datetime``, ``date``, ``text``);
- spoiled as a back office might (an element or attribute the schema does not declare, a SOAP
  header), the tolerant reader reads exactly what it read before: what the hub does not use never
  changes or fails a call; with ``xsi:nil``, a repeat or a value of the wrong type the response is
  still handed back (only asking for that value can fail, naming the field); a DOCTYPE is refused.
"""
from __future__ import annotations

import copy
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from zeep import xsd
from zeep.xsd.elements.element import Element

from connectors.errors import UnsafeAnswer
from connectors.revenues.northgate import WSDL_PATH as REVENUES_WSDL
from connectors.transports import soap
from connectors.transports.soap import soap_client
from connectors.transports.xmlreader import Node
from connectors.waste.bartec import WSDL_PATH as WASTE_WSDL

ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _client(wsdl: Path) -> Any:
    return soap_client(wsdl, f"http://reader-{wsdl.stem}.test/soap", timeout=5,
                       username="u" if wsdl == REVENUES_WSDL else None, password="p")


OPERATIONS = [(wsdl, name) for wsdl in (REVENUES_WSDL, WASTE_WSDL)
              for name in _client(wsdl).service._binding._operations]


def test_every_operation_of_both_wsdls_is_covered() -> None:
    names = {name for _, name in OPERATIONS}
    assert {"MoveOut", "MoveIn", "DiscountApply", "RequestFind", "ChangesGet", "Authenticate",
            "ServiceRequest_Create", "ServiceRequests_Get", "Premises_Get"} <= names


# -- answers from the schema ------------------------------------------------------------------------
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=12)


def _kind(xsd_type: Any) -> str:
    names = {cls.__name__ for cls in type(xsd_type).__mro__}
    if "Boolean" in names:
        return "boolean"
    if names & {"Integer", "Long", "Int", "Short", "Byte", "NonNegativeInteger",
                "PositiveInteger", "UnsignedInt", "UnsignedLong", "UnsignedShort"}:
        return "integer"
    if names & {"Decimal", "Float", "Double"}:
        return "decimal"
    if "DateTime" in names:
        return "datetime"
    if "Date" in names:
        return "date"
    return "text"


def _simple_text(xsd_type: Any) -> st.SearchStrategy[str]:
    kind = _kind(xsd_type)
    if kind == "boolean":
        return st.sampled_from(["true", "false", "1", "0"])
    if kind == "integer":
        return st.integers(0, 10 ** 12).map(str)
    if kind == "decimal":
        return st.decimals(-10 ** 6, 10 ** 6, places=2, allow_nan=False).map(str)
    if kind == "datetime":
        return st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1),
                            timezones=st.sampled_from([None, timezone.utc])).map(
                                lambda d: d.isoformat())
    if kind == "date":
        return st.dates(min_value=date(1990, 1, 1)).map(date.isoformat)
    return _TEXT


@st.composite
def _element(draw: st.DrawFn, xsd_type: Any, tag: str) -> etree._Element:
    node = etree.Element(tag)
    if isinstance(xsd_type, xsd.ComplexType):
        for _, attribute in xsd_type.attributes:
            if draw(st.booleans()):
                node.set(attribute.qname.text if attribute.qname is not None else attribute.name,
                         draw(_simple_text(attribute.type)))
        for _, child in xsd_type.elements:
            if not isinstance(child, Element):
                continue
            count = 1 if child.max_occurs == 1 else draw(st.integers(0, 2))
            if child.min_occurs == 0 and child.max_occurs == 1 and draw(st.booleans()):
                count = 0
            for _ in range(max(count, child.min_occurs)):
                node.append(draw(_element(child.type, child.qname.text)))
    else:
        node.text = draw(_simple_text(xsd_type))
    return node


def _envelope(body: etree._Element, *, header: bool = False, pretty: bool = False,
              doctype: bool = False) -> bytes:
    envelope = etree.Element(f"{{{ENV}}}Envelope", nsmap={"soap": ENV})
    if header:
        etree.SubElement(etree.SubElement(envelope, f"{{{ENV}}}Header"), "Something").text = "x"
    etree.SubElement(envelope, f"{{{ENV}}}Body").append(body)
    text = etree.tostring(envelope, pretty_print=pretty)
    if doctype:
        text = b'<!DOCTYPE Envelope [<!ENTITY e "x">]>' + text
    return b"<?xml version='1.0' encoding='utf-8'?>\n" + text


# -- the two readings -------------------------------------------------------------------------------
def _tolerant(client: Any, name: str, content: bytes) -> Node:
    """The response element as ``soap_call`` returns it (transport read + interpretation)."""
    response = requests.Response()
    response.status_code = 200
    response._content = content
    response._content_consumed = True
    response.headers["Content-Type"] = "text/xml; charset=utf-8"
    return soap._interpret(name, client.transport.read(response))


def _zeep(client: Any, name: str, content: bytes) -> Any:
    """zeep's own reading of the same response element, by its schema."""
    body = client.service._binding.get(name).output.body
    root = etree.fromstring(content)
    response = next(e for e in root.find(f"{{{ENV}}}Body") if isinstance(e.tag, str))
    return _plain(body.parse(response, client.wsdl.types), body.type)


def _plain(value: Any, xsd_type: Any) -> Any:
    """zeep's objects as plain values (strings as the tolerant reader gives them: stripped, empty
    is absent; an element holding nothing is absent)."""
    if isinstance(xsd_type, xsd.ComplexType):
        if value is None:
            return None
        out: dict[str, Any] = {}
        for name, attribute in xsd_type.attributes:
            raw = getattr(value, name, None)
            out[f"@{name}"] = raw.strip() or None if isinstance(raw, str) else raw
        for name, element in xsd_type.elements:
            if not isinstance(element, Element):
                continue
            raw = getattr(value, name, None)
            if element.max_occurs != 1:
                out[name] = [_plain(v, element.type) for v in (raw or [])]
            else:
                out[name] = _plain(raw, element.type)
        return out if any(v not in (None, []) for v in out.values()) else None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def _read(node: Node | None, xsd_type: Any) -> Any:
    """The same values read the way connectors read them, through ``Node`` only."""
    if node is None:
        return None
    out: dict[str, Any] = {}
    for name, attribute in xsd_type.attributes:
        text = node.attr(name)
        out[f"@{name}"] = None if text is None else attribute.type.pythonvalue(text)
        if isinstance(out[f"@{name}"], str):
            out[f"@{name}"] = out[f"@{name}"].strip() or None
    for name, element in xsd_type.elements:
        if not isinstance(element, Element):
            continue
        complex_ = isinstance(element.type, xsd.ComplexType)
        if element.max_occurs != 1:
            out[name] = [_read(child, element.type) if complex_ else _leaf(child, element.type)
                         for child in node.children(name)]
        elif complex_:
            out[name] = _read(node.child(name), element.type)
        else:
            out[name] = _typed(node, name, _kind(element.type))
    return out if any(v not in (None, []) for v in out.values()) else None


def _typed(parent: Node, name: str, kind: str) -> Any:
    reader = {"boolean": parent.boolean, "integer": parent.integer, "decimal": parent.decimal,
              "datetime": parent.datetime, "date": parent.date}.get(kind)
    return reader(name) if reader is not None else parent.text(name)


def _leaf(node: Node, xsd_type: Any) -> Any:
    text = node.value()
    kind = _kind(xsd_type)
    if text is None or kind == "text":
        return text
    return xsd_type.pythonvalue(text)


# -- the properties ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("wsdl", "name"), OPERATIONS, ids=[n for _, n in OPERATIONS])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), pretty=st.booleans())
def test_the_tolerant_reader_reads_what_zeep_reads(wsdl: Path, name: str, data: st.DataObject,
                                                   pretty: bool) -> None:
    client = _client(wsdl)
    body = client.service._binding.get(name).output.body
    content = _envelope(data.draw(_element(body.type, body.qname.text)), pretty=pretty)
    node = _tolerant(client, name, content)
    assert node.name == body.qname.localname
    assert _read(node, body.type) == _zeep(client, name, content)


SPOILS = ["unknown-element", "attribute", "header", "nil", "repeat", "bad-value", "doctype"]


@pytest.mark.parametrize(("wsdl", "name"), OPERATIONS, ids=[n for _, n in OPERATIONS])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), how=st.sampled_from(SPOILS))
def test_what_the_hub_does_not_use_never_fails_a_call(wsdl: Path, name: str,
                                                      data: st.DataObject, how: str) -> None:
    client = _client(wsdl)
    body_type = client.service._binding.get(name).output.body
    body = data.draw(_element(body_type.type, body_type.qname.text))
    clean = _read(_tolerant(client, name, _envelope(copy.deepcopy(body))), body_type.type)
    leaves = [n for n in body.iter() if len(n) == 0 and n is not body]
    if how == "unknown-element":
        body.append(etree.Element(f"{{{body.tag.split('}')[0][1:]}}}NotInTheSchema"))
        body.insert(0, etree.Element("NotInTheSchemaEither"))
    elif how == "attribute":
        body.set("extra", "1")
        for leaf in leaves:
            leaf.set("{urn:vendor}flag", "yes")
    elif how == "nil" and leaves:
        leaves[0].set(f"{{{XSI}}}nil", "true")
        leaves[0].text = None
    elif how == "repeat" and leaves:
        leaves[0].addnext(copy.deepcopy(leaves[0]))
    elif how == "bad-value" and leaves:
        leaves[-1].text = "not-a-value-of-its-type-\u00e9"
    content = _envelope(body, header=(how == "header"), doctype=(how == "doctype"))
    if how == "doctype":
        with pytest.raises(UnsafeAnswer):
            _tolerant(client, name, content)
        return
    node = _tolerant(client, name, content)   # the response is handed back whatever it holds
    assert node.name == body_type.qname.localname
    if how in ("unknown-element", "attribute", "header"):
        assert _read(node, body_type.type) == clean, "extra material changes nothing read"
