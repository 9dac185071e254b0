"""SOAP over HTTP: zeep writes the requests, the hub reads the answers (limited and tolerant).

Every connector that speaks SOAP builds its client with ``soap_client`` (WSDL loaded from the repo,
endpoint from the connection, explicit timeouts, answer limits) and calls operations through
``soap_call``. zeep builds each request from the WSDL (types, WS-Security UsernameToken). The answer
is *not* handed to zeep's strict deserialiser: it is read as it arrives, at most
``max_answer_bytes`` and ``max_answer_depth`` deep, by a hardened parser that refuses DTDs,
entities and XIncludes (``xmlreader.SafeXmlParser``), and ``soap_call`` returns the operation's
response element as a tolerant ``xmlreader.Node``: the connector reads by local name only what it
needs, so an element or attribute it does not use never fails a call, whatever its value.

============================================  ==========================================
failure                                       raised
============================================  ==========================================
connection refused, DNS, connect timeout      ``TransientError``
TLS handshake / certificate failure           ``PermanentError``
read timeout / connection lost after sending  ``UnknownOutcomeError``
HTTP 5xx without a SOAP fault, Server fault   ``TransientError``
HTTP 408 / 425 / 429 (not processed, later)   ``TransientError``
HTTP 401/403, authentication fault            ``PermanentError``
SOAP Client fault                             ``Rejected`` (code = subcode)
DTD, entity or XInclude (any HTTP status)     ``UnsafeAnswer`` (security-flagged)
answer too large, too deep, not well-formed,  ``UnreadableAnswer``; to a write
not SOAP                                      (``write=True``): ``UnknownOutcomeError``
request does not fit the WSDL, WSDL unusable  ``PermanentError`` (``schema`` / ``wsdl``)
============================================  ==========================================

Messages carry the operation, the HTTP status, the answer's size and a SHA-256 digest of it:
never a request or answer body. Third-party exceptions are chained only as ``scrubbed`` causes
(zeep's ``TransportError`` and ``ValidationError`` quote bodies and values).
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import zeep
import zeep.exceptions
from lxml import etree
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from connectors.errors import (ConnectorError, PermanentError, Rejected, TransientError,
                               UnknownOutcomeError, UnreadableAnswer, UnsafeAnswer, scrubbed)
from connectors.transports.httplog import redact_http_client_logs
from connectors.transports.xmlreader import Node, SafeXmlParser, local_name, namespace

ZEEP_SETTINGS = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True,
                              forbid_external=True, xml_huge_tree=False, raw_response=True)
"""Strict WSDL loading; no DTDs, entities or external fetches in any WSDL. ``raw_response``: zeep
hands the answer back unread (the transport below has already read it, under limits)."""

DEFAULT_MAX_ANSWER_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_ANSWER_DEPTH = 64
_CHUNK = 64 * 1024

#: zeep loggers that write whole envelopes (personal data) at DEBUG.
_ENVELOPE_LOGGERS = ("zeep.transports", "zeep.wsdl.bindings.soap", "zeep.xsd", "zeep.wsdl")

#: SOAP fault codes (local part, any case) that mean the credentials are wrong.
_AUTH_CODES = ("authentication", "failedauthentication", "invalidsecurity",
               "invalidsecuritytoken", "unauthorized", "unauthorised", "accessdenied")

_MAX_FAULT_MESSAGE = 200

#: HTTP statuses that mean "not processed, try later" (timeout, too early, rate limited).
_RETRY_LATER_STATUSES = frozenset({408, 425, 429})
_SOAP_ENVELOPES = frozenset({"http://schemas.xmlsoap.org/soap/envelope/",
                             "http://www.w3.org/2003/05/soap-envelope"})

_clients: dict[tuple[Any, ...], zeep.Client] = {}
_clients_lock = threading.Lock()


def quiet_zeep_logging() -> None:
    """zeep.transports logs whole envelopes at DEBUG (personal data): pin those loggers to INFO."""
    for name in _ENVELOPE_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)
    redact_http_client_logs()


@dataclass(frozen=True)
class Answer:
    """What came back over HTTP, already parsed (or not) under the limits."""

    status: int
    content_type: str
    size: int
    digest: str
    """SHA-256 hex of the bytes read: lets two people compare an answer without seeing it."""
    root: etree._Element | None
    problem: str | None
    """Why the body is not usable XML (None when ``root`` is set)."""

    def describe(self) -> str:
        return f"HTTP {self.status}, answer of {self.size} bytes sha256:{self.digest[:16]}"


class AnswerTooLarge(UnreadableAnswer):
    """The answer went past ``max_answer_bytes``; reading stopped there."""


class _LimitedTransport(Transport):
    """Posts with a timeout and reads the answer incrementally, at most ``max_bytes``.

    The endpoint is fixed, so what requests would work out on every call is worked out once:
    proxy, netrc and CA-bundle settings are read from the environment here, for this endpoint
    (``trust_env`` off), and each POST goes straight to the session's connection pool without
    requests' per-call preparation (URL parsing, settings merge, cookie jar, redirects).
    """

    def __init__(self, *, timeout: float, max_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                 max_depth: int = DEFAULT_MAX_ANSWER_DEPTH, endpoint: str | None = None) -> None:
        super().__init__(timeout=timeout, operation_timeout=timeout)
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.session.trust_env = False
        if endpoint:
            self.session.proxies.update(requests.utils.get_environ_proxies(endpoint))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.session.verify = bundle

    def post(self, address: str, message: Any, headers: Any) -> Answer:  # type: ignore[override]
        response = self._send(address, message, headers)
        try:
            return self.read(response)
        finally:
            response.close()

    def _send(self, address: str, message: bytes | str, headers: Any) -> requests.Response:
        """POST through the session's connection pool, the answer left unread (streamed) for
        ``read``; redirects are not followed. Failures are requests' own exceptions."""
        body = message.encode("utf-8") if isinstance(message, str) else message
        request = requests.PreparedRequest()
        request.method = "POST"
        request.url = address
        request.headers = CaseInsensitiveDict(self.session.headers)
        request.headers.update(headers or {})
        request.headers["Content-Length"] = str(len(body))
        request.body = body
        request.hooks = {"response": []}
        adapter = self.session.get_adapter(address)
        return adapter.send(request, stream=True, timeout=self.operation_timeout,
                            verify=self.session.verify, cert=self.session.cert,
                            proxies=self.session.proxies)

    def read(self, response: requests.Response) -> Answer:
        content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise AnswerTooLarge(f"HTTP {response.status_code}: the answer declares "
                                 f"{int(declared)} bytes, over the limit of {self.max_bytes}",
                                 code="answer-too-large")
        xmlish = "html" not in content_type
        parser = SafeXmlParser(what=f"HTTP {response.status_code}",
                               max_depth=self.max_depth) if xmlish else None
        digest = hashlib.sha256()
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise AnswerTooLarge(f"HTTP {response.status_code}: the answer went past the "
                                     f"limit of {self.max_bytes} bytes; reading stopped",
                                     code="answer-too-large")
            digest.update(chunk)
            if parser is not None:
                parser.feed(chunk)
        root = parser.close() if parser is not None and size else None
        problem = None if root is not None else (
            "empty answer" if not size else
            "not XML" if parser is None else parser.problem or "not XML")
        return Answer(response.status_code, content_type, size, digest.hexdigest(), root, problem)


class EndpointClient(zeep.Client):
    """A zeep client whose default service posts to ``endpoint`` instead of the WSDL's address."""

    def __init__(self, wsdl: str, *, endpoint: str, **kwargs: Any) -> None:
        super().__init__(wsdl, **kwargs)
        self.endpoint = endpoint
        service = next(iter(self.wsdl.services.values()))
        port = next(iter(service.ports.values()))
        self._endpoint_service = self.create_service(port.binding.name, endpoint)

    @property
    def service(self) -> Any:  # zeep's ServiceProxy
        return self._endpoint_service


def soap_client(wsdl_path: Path, endpoint: str, *, timeout: float,
                username: str | None = None, password: str | None = None,
                max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                max_answer_depth: int = DEFAULT_MAX_ANSWER_DEPTH) -> zeep.Client:
    """One client per process per (wsdl_path, endpoint, username, limits): WSDL loaded from the
    repo file, service address overridden to ``endpoint``, explicit timeouts, answers read at most
    ``max_answer_bytes`` and ``max_answer_depth`` deep, WS-Security UsernameToken when
    ``username`` is given."""
    if timeout <= 0:
        raise PermanentError("SOAP timeout must be positive", code="config")
    if max_answer_bytes <= 0 or max_answer_depth <= 0:
        raise PermanentError("SOAP answer limits must be positive", code="config")
    quiet_zeep_logging()
    # The password's digest (never the password) is in the key so a rotated secret gets a new client.
    # (The path is keyed as given: resolving it on every call costs more than the rest of this.)
    secret = hashlib.sha256((password or "").encode()).hexdigest()
    key = (str(wsdl_path), endpoint, username, secret, float(timeout), max_answer_bytes,
           max_answer_depth)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _load_client(Path(wsdl_path).resolve(), endpoint, username, password,
                                  timeout, max_answer_bytes, max_answer_depth)
            _clients[key] = client
        return client


def _load_client(path: Path, endpoint: str, username: str | None, password: str | None,
                 timeout: float, max_bytes: int, max_depth: int) -> zeep.Client:
    if not path.is_file():
        raise PermanentError(f"WSDL file not found: {path.name}", code="wsdl")
    wsse = UsernameToken(username, password or "") if username else None
    try:
        return EndpointClient(str(path), endpoint=endpoint, wsse=wsse, settings=ZEEP_SETTINGS,
                              transport=_LimitedTransport(timeout=timeout, max_bytes=max_bytes,
                                                          max_depth=max_depth, endpoint=endpoint))
    except Exception as exc:  # zeep, lxml, OSError, a WSDL without a service...: all one class
        cause = scrubbed(exc)
        kind = type(exc).__name__
    raise PermanentError(f"cannot load WSDL {path.name}: {kind}", code="wsdl") from cause


def soap_call(client: zeep.Client, operation: str, /, *, write: bool = False,
              **params: Any) -> Node:
    """``client.service.<operation>(**params)``; the response element as a tolerant ``Node``.

    Failures are classified (see the module's table). ``write=True`` for a call that changes
    the back office: an answer that cannot be read then means the change may have been applied
    (``UnknownOutcomeError``: look the key up before sending again).
    """
    method = getattr(client.service, operation, None)
    if method is None:
        raise PermanentError(f"SOAP operation {operation} is not in the WSDL", code="wsdl")
    error: ConnectorError | None = None
    cause: BaseException | None = None
    try:
        answer = method(**params)
    except ConnectorError as exc:  # the transport refused the answer while reading it
        error, cause = _for_call(operation, exc, write, prefix=True), exc
    except Exception as exc:
        error, cause = _classify_exception(operation, exc), scrubbed(exc)
    if error is not None:
        raise error from cause
    if not isinstance(answer, Answer):
        raise PermanentError(f"{operation}: the SOAP client was not built by soap_client",
                             code="config")
    try:
        return _interpret(operation, answer)
    except UnreadableAnswer as exc:
        converted = _for_call(operation, exc, write, prefix=False)
        if converted is exc:
            raise
        raise converted from exc


def _for_call(operation: str, exc: ConnectorError, write: bool, *, prefix: bool) -> ConnectorError:
    """The error as this call reports it: an unreadable answer to a write is an unknown outcome;
    the transport's own errors get the operation's name."""
    message = f"{operation}: {exc.message}" if prefix else exc.message
    if isinstance(exc, UnsafeAnswer):
        return UnsafeAnswer(message, code=exc.code, field=exc.field) if prefix else exc
    if isinstance(exc, UnreadableAnswer):
        if write:
            return UnknownOutcomeError(f"{message}; the request may have been applied",
                                       code=exc.code, field=exc.field)
        return UnreadableAnswer(message, code=exc.code, field=exc.field) if prefix else exc
    return exc


def _classify_exception(operation: str, exc: Exception) -> ConnectorError:
    if isinstance(exc, requests.exceptions.SSLError):
        return PermanentError(f"{operation}: TLS handshake or certificate refused", code="tls")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransientError(f"{operation}: connect timeout", code="connect-timeout")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return UnknownOutcomeError(f"{operation}: no answer before the timeout",
                                   code="read-timeout")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if _failed_before_sending(exc):
            return TransientError(f"{operation}: cannot connect", code="connect")
        return UnknownOutcomeError(f"{operation}: connection lost after sending",
                                   code="connection-lost")
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError)):
        return UnknownOutcomeError(f"{operation}: answer lost after sending", code="answer-lost")
    if isinstance(exc, requests.exceptions.RequestException):
        return TransientError(f"{operation}: HTTP failure {type(exc).__name__}", code="http")
    if isinstance(exc, zeep.exceptions.TransportError):
        status = exc.status_code
        if status in (401, 403):
            return PermanentError(f"{operation}: HTTP {status}: credentials refused",
                                  code=f"http-{status}")
        if status and (status >= 500 or status in _RETRY_LATER_STATUSES):
            return TransientError(f"{operation}: HTTP {status}", code=f"http-{status}")
        return PermanentError(f"{operation}: HTTP {status}", code=f"http-{status}")
    if isinstance(exc, (zeep.exceptions.Error, TypeError, ValueError)):
        # zeep could not build the request from these parameters (unknown or missing element,
        # a value that does not fit its XSD type): a defect in the connector or its mapping.
        return PermanentError(f"{operation}: the request does not match the WSDL "
                              f"({type(exc).__name__})", code="schema")
    return PermanentError(f"{operation}: unexpected failure ({type(exc).__name__})",
                          code="internal")


def _failed_before_sending(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection was never made (refused, DNS, connect timeout)."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _interpret(operation: str, answer: Answer) -> Node:
    """The operation's response element, or the classified error the answer amounts to."""
    status = answer.status
    if status in (401, 403):
        raise PermanentError(f"{operation}: HTTP {status}: credentials refused",
                             code=f"http-{status}")
    body = _soap_body(answer.root)
    fault = None if body is None else next(
        (e for e in body if isinstance(e.tag, str) and local_name(e) == "Fault"), None)
    if fault is not None:
        raise _classify_fault(operation, Node(fault, "Fault", operation), answer)
    if status >= 500 or status in _RETRY_LATER_STATUSES:
        raise TransientError(f"{operation}: {answer.describe()}", code=f"http-{status}")
    if not 200 <= status < 300:
        raise PermanentError(f"{operation}: unexpected {answer.describe()}", code=f"http-{status}")
    if answer.root is None:
        raise UnreadableAnswer(f"{operation}: {answer.problem}; {answer.describe()}",
                               code="malformed")
    if body is None:
        raise UnreadableAnswer(f"{operation}: not a SOAP envelope; {answer.describe()}",
                               code="not-soap")
    response = Node(body, "Body", operation).first_child()
    if response is None:
        raise UnreadableAnswer(f"{operation}: empty SOAP body; {answer.describe()}",
                               code="empty-body")
    return Node(response.element, response.name, operation)


def _soap_body(root: etree._Element | None) -> etree._Element | None:
    if root is None or local_name(root) != "Envelope" or namespace(root) not in _SOAP_ENVELOPES:
        return None
    return next((e for e in root if isinstance(e.tag, str) and local_name(e) == "Body"), None)


def _fault_code(fault: Node) -> str:
    """The fault code without its namespace prefix (``Client.UnknownAccount``); SOAP 1.1 or 1.2."""
    code = fault.child("faultcode")
    text = code.element.text if code is not None else None
    if text is None:  # SOAP 1.2: Code/Value, with an optional Subcode/Value
        code12 = fault.child("Code")
        if code12 is not None:
            value = code12.child("Value")
            sub = code12.child("Subcode")
            sub_value = sub.child("Value") if sub is not None else None
            text = (value.element.text if value is not None else "") or ""
            kind = text.strip().rsplit(":", 1)[-1]
            if kind == "Sender":
                kind = "Client"
            elif kind == "Receiver":
                kind = "Server"
            if sub_value is not None and (sub_value.element.text or "").strip():
                return f"{kind}.{(sub_value.element.text or '').strip().rsplit(':', 1)[-1]}"
            return kind
    return (text or "").strip().rsplit(":", 1)[-1].rsplit("}", 1)[-1]


def _fault_reason(fault: Node) -> str:
    node = fault.child("faultstring")
    if node is None:
        reason = fault.child("Reason")
        node = reason.child("Text") if reason is not None else None
    text = " ".join("".join(node.element.itertext()).split()) if node is not None else ""
    return text[:_MAX_FAULT_MESSAGE] or "no reason given"


def _classify_fault(operation: str, fault: Node, answer: Answer) -> ConnectorError:
    code = _fault_code(fault)
    status = answer.status
    if not code:
        return PermanentError(f"{operation}: a SOAP fault without a code; {answer.describe()}",
                              code="fault-without-code")
    kind, _, subcode = code.partition(".")
    if code.lower() in _AUTH_CODES or subcode.lower() in _AUTH_CODES:
        return PermanentError(f"{operation}: authentication refused", code=code)
    if kind.lower() in ("client", "sender"):
        # The reason goes to the owning team's work item; the back office wrote it for people.
        return Rejected(f"{operation}: {_fault_reason(fault)}", code=subcode or kind)
    if kind.lower() in ("server", "receiver"):
        return TransientError(f"{operation}: server fault", code=code)
    return PermanentError(f"{operation}: unexpected fault code", code=code)
