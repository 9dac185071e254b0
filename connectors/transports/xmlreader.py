"""Reading XML answers tolerantly, and safely: incremental parsing under limits, then a reader that
asks only for what the connector needs.

``SafeXmlParser`` is fed the answer chunk by chunk as it arrives. It refuses a DTD, an entity or an
XInclude at once (``UnsafeAnswer``), stops at ``max_depth`` nesting levels, and notes (without
raising) that a body is not well-formed, so the caller can still classify by HTTP status.

``Node`` is the tolerant reader (Fowler's *Tolerant Reader*): children are found by local name in
any namespace (vendors move leaf elements between namespaces, or send them without one); elements
and attributes the connector does not ask for are never looked at, whatever they hold; an absent,
empty or ``xsi:nil`` element is ``None``. What the connector *needs* it asks for with
``required``/``reference``/typed readers, which raise ``UnreadableAnswer`` naming the path of the
field (``ServiceRequests_GetResult/ServiceRequest[2]/ServiceCode``), never quoting its value.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from lxml import etree

from connectors.errors import UnreadableAnswer, UnsafeAnswer, scrubbed
from connectors.fields import is_reference, is_status_word

XSI = "http://www.w3.org/2001/XMLSchema-instance"
XINCLUDE_NAMESPACES = frozenset({"http://www.w3.org/2001/XInclude",
                                 "http://www.w3.org/2003/XInclude"})



class SafeXmlParser:
    """An incremental, hardened XML parser with a nesting limit.

    ``feed(chunk)`` as bytes arrive; ``close()`` returns the root element, or None when the body
    was not well-formed XML (``problem`` says why, without quoting it).
    """

    def __init__(self, *, what: str, max_depth: int) -> None:
        self.what = what
        self.max_depth = max_depth
        self.problem: str | None = None
        self._depth = 0
        self._checked_prolog = False
        self._root: etree._Element | None = None
        self._parser = etree.XMLPullParser(
            events=("start", "end", "start-ns"), resolve_entities=False, no_network=True,
            load_dtd=False, dtd_validation=False, huge_tree=False, remove_comments=True,
            remove_pis=True)

    def feed(self, chunk: bytes) -> None:
        if self.problem is not None or not chunk:
            return
        try:
            self._parser.feed(chunk)
        except etree.XMLSyntaxError:
            self._events()  # a DTD or XInclude before the error is still refused
            self.problem = "not well-formed XML"
            return
        self._events()

    def close(self) -> etree._Element | None:
        if self.problem is None:
            try:
                self._root = self._parser.close()
            except etree.XMLSyntaxError:
                self.problem = "not well-formed XML"
            self._events()
        if self.problem is None and self._root is not None:
            self._refuse_entities(self._root)
        return None if self.problem is not None else self._root

    def _events(self) -> None:
        for event, item in self._parser.read_events():
            if event == "start-ns":
                continue
            if event == "end":
                self._depth -= 1
                continue
            self._depth += 1
            if not self._checked_prolog:
                self._checked_prolog = True
                self._refuse_dtd(item)
            if namespace(item) in XINCLUDE_NAMESPACES:
                raise UnsafeAnswer(f"{self.what}: the answer holds an XInclude", code="xinclude")
            if self._depth > self.max_depth:
                raise UnreadableAnswer(f"{self.what}: the answer nests deeper than "
                                       f"{self.max_depth} levels", code="too-deep")

    def _refuse_dtd(self, element: etree._Element) -> None:
        info = element.getroottree().docinfo
        if info.doctype or info.internalDTD is not None or info.externalDTD is not None \
                or info.system_url or info.public_id:
            raise UnsafeAnswer(f"{self.what}: the answer holds a DTD", code="dtd")

    def _refuse_entities(self, root: etree._Element) -> None:
        for node in root.iter(etree.Entity):
            raise UnsafeAnswer(f"{self.what}: the answer holds an entity reference",
                               code="entity")
        info = root.getroottree().docinfo
        if info.doctype or info.internalDTD is not None:
            raise UnsafeAnswer(f"{self.what}: the answer holds a DTD", code="dtd")


def parse_xml(data: bytes, *, what: str, max_depth: int = 64) -> etree._Element:
    """A whole document at once (a recorded answer, a file): root element or ``UnreadableAnswer``."""
    parser = SafeXmlParser(what=what, max_depth=max_depth)
    parser.feed(data)
    root = parser.close()
    if root is None:
        raise UnreadableAnswer(f"{what}: {parser.problem or 'empty answer'}", code="malformed")
    return root


def namespace(element: etree._Element) -> str | None:
    """The element's namespace URI (None without one); never fails on an odd tag."""
    tag = element.tag
    if isinstance(tag, str) and tag.startswith("{"):
        return tag[1:].split("}", 1)[0]
    return None


def local_name(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


class Node:
    """One element of an answer, read tolerantly. ``path`` names it in errors."""

    __slots__ = ("element", "path", "what")

    def __init__(self, element: etree._Element, path: str, what: str = "answer") -> None:
        self.element = element
        self.path = path
        self.what = what

    def __repr__(self) -> str:
        return f"Node({self.path})"

    @property
    def name(self) -> str:
        return local_name(self.element)

    # -- navigation ------------------------------------------------------------------------------
    def _elements(self, name: str) -> list[etree._Element]:
        return [e for e in self.element if isinstance(e.tag, str) and local_name(e) == name]

    def child(self, name: str) -> Node | None:
        """The first child element called ``name`` (any namespace), or None."""
        found = self._elements(name)
        if not found or _is_nil(found[0]):
            return None
        return Node(found[0], f"{self.path}/{name}", self.what)

    def need(self, name: str) -> Node:
        """The child ``name``; ``UnreadableAnswer`` naming it when absent."""
        node = self.child(name)
        if node is None:
            raise self.missing(name)
        return node

    def children(self, name: str) -> list[Node]:
        """Every child element called ``name`` (any namespace), in document order."""
        return [Node(e, f"{self.path}/{name}[{i}]", self.what)
                for i, e in enumerate(self._elements(name), start=1) if not _is_nil(e)]

    def first_child(self) -> Node | None:
        for element in self.element:
            if isinstance(element.tag, str):
                return Node(element, f"{self.path}/{local_name(element)}", self.what)
        return None

    def field(self, name: str) -> str:
        return f"{self.path}/{name}"

    # -- values ----------------------------------------------------------------------------------
    def value(self) -> str | None:
        """This element's own text, stripped; None when empty. Markup inside is an error."""
        if any(isinstance(e.tag, str) for e in self.element):
            raise UnreadableAnswer(f"{self.what}: field {self.path} holds markup where a value "
                                   "belongs", code="markup-in-value", field=self.path)
        text = (self.element.text or "").strip()
        return text or None

    def text(self, name: str) -> str | None:
        """The stripped text of child ``name``; None when absent, nil or empty."""
        node = self.child(name)
        return None if node is None else node.value()

    def required(self, name: str) -> str:
        """The text of child ``name``; ``UnreadableAnswer`` naming it when absent or empty."""
        value = self.text(name)
        if value is None:
            raise self.missing(name)
        return value

    def reference(self, name: str) -> str:
        """A back-office reference: present, no markup, not a placeholder word, sane characters."""
        value = self.required(name)
        if not is_reference(value):
            raise UnreadableAnswer(f"{self.what}: field {self.field(name)} is not a reference",
                                   code="bad-reference", field=self.field(name))
        return value

    def status(self, name: str) -> str:
        """A status word (upper-cased): present, no markup, letters/digits/space/``_``/``-``."""
        value = self.required(name)
        if not is_status_word(value):
            raise UnreadableAnswer(f"{self.what}: field {self.field(name)} is not a status word",
                                   code="bad-status", field=self.field(name))
        return value.upper()

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.required(name) if required else self.text(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError as exc:
            cause = scrubbed(exc)
        raise self.bad(name, "an integer") from cause

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.required(name) if required else self.text(name)
        if value is None:
            return None
        try:
            number = Decimal(value)
        except InvalidOperation as exc:
            cause = scrubbed(exc)
        else:
            if number.is_finite():
                return number
            cause = None
        raise self.bad(name, "a number") from cause

    def boolean(self, name: str, *, required: bool = False) -> bool | None:
        value = self.required(name) if required else self.text(name)
        if value is None:
            return None
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise self.bad(name, "true or false")

    def datetime(self, name: str, *, required: bool = False) -> datetime | None:
        """An ISO-8601 date and time (with or without an offset); ``0001-01-01T00:00:00`` (.NET's
        empty date) counts as absent."""
        value = self.required(name) if required else self.text(name)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(_iso(value))
        except ValueError as exc:
            cause = scrubbed(exc)
        else:
            cause = None
        if cause is not None:
            raise self.bad(name, "a date and time") from cause
        if moment.year <= 1:
            if required:
                raise self.missing(name)
            return None
        return moment

    def date(self, name: str, *, required: bool = False) -> date | None:
        value = self.required(name) if required else self.text(name)
        if value is None:
            return None
        try:
            return date.fromisoformat(value[:10])
        except ValueError as exc:
            cause = scrubbed(exc)
        raise self.bad(name, "a date") from cause

    def attr(self, name: str) -> str | None:
        """An attribute's stripped value (any namespace), or None."""
        for key, value in self.element.attrib.items():
            if key.rsplit("}", 1)[-1] == name:
                return value.strip() or None
        return None

    # -- errors ----------------------------------------------------------------------------------
    def missing(self, name: str) -> UnreadableAnswer:
        return UnreadableAnswer(f"{self.what}: field {self.field(name)} is missing or empty",
                                code="missing-value", field=self.field(name))

    def bad(self, name: str, expected: str) -> UnreadableAnswer:
        return UnreadableAnswer(f"{self.what}: field {self.field(name)} is not {expected}",
                                code="bad-value", field=self.field(name))


def _is_nil(element: etree._Element) -> bool:
    return (element.get(f"{{{XSI}}}nil") or "").strip().lower() in ("true", "1")


def _iso(value: str) -> str:
    """Python 3.11 reads most ISO-8601; .NET sends 7 fraction digits and ``Z``."""
    text = value.strip()
    match = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)\.(\d+)(.*)", text)
    if match:
        text = f"{match.group(1)}.{match.group(2)[:6].ljust(6, '0')}{match.group(3)}"
    return text
