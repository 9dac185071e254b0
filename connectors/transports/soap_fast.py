"""A plain-lxml reading of ordinary SOAP answers, beside zeep, for the hottest calls.

zeep builds every request (it knows the WSDL, WS-Security and the request types) and stays the
reader of everything unusual. What costs most per call is zeep reading a plain answer: a
document/literal response of a sequence of elements, each once, simple values converted by their
XSD types. For answers of that shape this module reads the bytes with lxml and zeep's own type
conversions, returning an object with the same attribute names and values zeep would return.

The moment an answer is not plain (a fault, a header, an attribute such as ``xsi:nil``, an element
the schema does not declare, a repeated or missing element, a value that does not convert, a
DOCTYPE, an HTTP status other than 200) the same response goes to zeep, which reads or refuses it
exactly as before: the fast path never decides anything zeep would decide differently.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree
from zeep import xsd
from zeep.xsd.elements.attribute import Attribute
from zeep.xsd.elements.element import Element
from zeep.xsd.elements.indicators import Sequence
from zeep.xsd.types.simple import AnySimpleType

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_ENVELOPE = f"{{{SOAP11_ENV}}}Envelope"
_BODY = f"{{{SOAP11_ENV}}}Body"
_parsers = threading.local()


def _parser() -> etree.XMLParser:
    """This thread's parser (an lxml parser is not shared between threads): no entities, DTDs
    or network, no huge trees."""
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=False, remove_comments=True, remove_pis=True)
    return parser


class _NotPlain(Exception):
    """This answer is not of the plain shape: zeep reads it."""


class Answer:
    """A read answer: one attribute per declared element (``None`` when an optional one is
    absent), like zeep's objects. Its repr names the fields, never their values."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)

    def __getitem__(self, name: str) -> Any:
        return self.__dict__[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.__dict__)

    def __len__(self) -> int:
        return len(self.__dict__)

    def __repr__(self) -> str:
        return f"Answer({', '.join(self.__dict__)})"


@dataclass(frozen=True)
class _Field:
    name: str
    tag: str
    required: bool
    convert: Callable[[str], Any] | None
    """The XSD simple type's conversion; None for a complex element."""
    shape: "_Shape | None"


@dataclass(frozen=True)
class _Attribute:
    name: str
    key: str
    convert: Callable[[str], Any]


@dataclass(frozen=True)
class _Shape:
    """A complex type that is a plain sequence of elements, each at most once, with optional
    simple attributes."""

    fields: tuple[_Field, ...]
    attributes: tuple[_Attribute, ...] = ()

    def read(self, node: etree._Element) -> Answer | None:
        if (node.text or "").strip():
            raise _NotPlain()
        if not (self.fields or self.attributes) or (len(node) == 0 and not node.attrib):
            return None   # zeep reads an empty complex element (or type) as None
        values: dict[str, Any] = {f.name: None for f in self.fields}
        if node.attrib:
            known = {a.key: a for a in self.attributes}
            for key, text in node.attrib.items():
                attribute = known.get(key)
                if attribute is None:
                    raise _NotPlain()   # xsi:nil, xsi:type or an undeclared attribute
                try:
                    values[attribute.name] = attribute.convert(text)
                except (TypeError, ValueError) as exc:
                    raise _NotPlain() from exc
        for attribute in self.attributes:
            values.setdefault(attribute.name, None)
        children = [c for c in node if isinstance(c.tag, str)]
        position = 0
        for field in self.fields:
            if position < len(children) and children[position].tag == field.tag:
                values[field.name] = _value(field, children[position])
                position += 1
            elif field.required:
                raise _NotPlain()
        if position != len(children):
            raise _NotPlain()   # an undeclared, repeated or out-of-order element
        return Answer(values)


def _value(field: _Field, node: etree._Element) -> Any:
    if field.shape is not None:
        return field.shape.read(node)
    if node.attrib:
        raise _NotPlain()
    if len(node):
        raise _NotPlain()
    if node.text is None:
        return None
    try:
        return field.convert(node.text)  # type: ignore[misc]
    except (TypeError, ValueError) as exc:
        raise _NotPlain() from exc


def _shape(xsd_type: Any, depth: int = 0) -> _Shape:
    """The plain shape of a zeep complex type, or ``_NotPlain`` when it has anything else."""
    if depth > 8 or not isinstance(xsd_type, xsd.ComplexType):
        raise _NotPlain()
    if xsd_type.elements and not isinstance(getattr(xsd_type, "_element", None), Sequence):
        raise _NotPlain()
    attributes = []
    for name, attribute in xsd_type.attributes:
        if not isinstance(attribute, Attribute) or not isinstance(attribute.type, AnySimpleType) \
                or attribute.default is not None or getattr(attribute, "fixed", None) is not None:
            raise _NotPlain()
        attributes.append(_Attribute(name, attribute.qname.text if attribute.qname is not None
                                     else name, attribute.type.pythonvalue))
    fields = []
    for name, element in xsd_type.elements:
        # (a nillable element is read as usual; one that says xsi:nil goes to zeep)
        if not isinstance(element, Element) or element.max_occurs != 1:
            raise _NotPlain()
        if isinstance(element.type, AnySimpleType):
            convert, shape = element.type.pythonvalue, None
        else:
            convert, shape = None, _shape(element.type, depth + 1)
        fields.append(_Field(name, element.qname.text, element.min_occurs > 0, convert, shape))
    return _Shape(tuple(fields), tuple(attributes))


@dataclass(frozen=True)
class _Reader:
    """Reads one operation's plain answers, returning what zeep's ``process_reply`` would."""

    body_tag: str
    body: _Shape

    def read(self, content: bytes) -> Any:
        root = etree.fromstring(content, parser=_parser())
        if root.tag != _ENVELOPE or root.getroottree().docinfo.doctype:
            raise _NotPlain()
        parts = [c for c in root if isinstance(c.tag, str)]
        if len(parts) != 1 or parts[0].tag != _BODY:
            raise _NotPlain()   # a SOAP header: zeep reads it
        answers = [c for c in parts[0] if isinstance(c.tag, str)]
        if len(answers) != 1 or answers[0].tag != self.body_tag:
            raise _NotPlain()
        wrapper = self.body.read(answers[0])
        return None if wrapper is None else _unwrap(wrapper, self.body)


def _unwrap(wrapper: Answer, shape: _Shape) -> Any:
    """zeep's convenience: an answer of one element is that element's value, and a value of one
    element is that element's value (``SoapMessage.deserialize``)."""
    if len(shape.fields) == 0:
        return None
    if len(shape.fields) > 1:
        return wrapper
    only = shape.fields[0]
    value = wrapper[only.name]
    if isinstance(value, Answer) and only.shape is not None and len(only.shape.fields) == 1 \
            and not only.shape.attributes:
        return value[only.shape.fields[0].name]
    return value


def _reader(client: Any, operation: str) -> _Reader | None:
    """The operation's reader (made once per client), or None when its answer is not plain."""
    readers: dict[str, _Reader | None] = client.__dict__.setdefault("_plain_readers", {})
    if operation not in readers:
        try:
            binding_operation = client.service._binding.get(operation)
            body = binding_operation.output.body
            readers[operation] = _Reader(body.qname.text, _shape(body.type))
        except (_NotPlain, AttributeError, KeyError, ValueError):
            readers[operation] = None
    return readers[operation]


def call(client: Any, operation: str, params: Mapping[str, Any]) -> Any:
    """``client.service.<operation>(**params)``: zeep builds and sends; a plain 200 answer is read
    here, anything else by zeep (so its errors and classification are unchanged)."""
    reader = _reader(client, operation)
    if reader is None:
        return getattr(client.service, operation)(**params)
    proxy = client.service
    binding = proxy._binding
    options = proxy._binding_options
    envelope, headers = binding._create(operation, (), dict(params), client=client,
                                        options=options)
    response = client.transport.post_xml(options["address"], envelope, headers)
    if response.status_code == 200 and not client.settings.raw_response:
        try:
            return reader.read(response.content)
        except (_NotPlain, etree.XMLSyntaxError):
            pass
    return binding.process_reply(client, binding.get(operation), response)
