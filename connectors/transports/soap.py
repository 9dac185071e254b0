"""SOAP over HTTP with zeep: one hardened client per process and classified failures.

Every connector that speaks SOAP builds its client with ``soap_client`` (WSDL loaded from the repo,
endpoint from the connection, explicit timeouts, strict XML settings) and calls operations through
``soap_call``, which turns every failure into a ``connectors.errors`` class:

============================================  ======================
failure                                       raised
============================================  ======================
connection refused, DNS, connect timeout      ``TransientError``
TLS handshake / certificate failure           ``PermanentError``
read timeout / connection lost after sending  ``UnknownOutcomeError``
HTTP 5xx without a SOAP fault, Server fault   ``TransientError``
HTTP 408 / 425 / 429 (not processed, later)   ``TransientError``
HTTP 401/403, authentication fault            ``PermanentError``
SOAP Client fault                             ``Rejected`` (code = subcode)
malformed response, schema mismatch, DTD      ``PermanentError``
a response value of the wrong type            ``PermanentError`` (zeep would log it, use None)
============================================  ======================

Messages carry operation names, HTTP statuses and fault codes only: never a request or response body.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
import zeep
from requests.structures import CaseInsensitiveDict
import zeep.exceptions
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from connectors.errors import (PermanentError, Rejected, TransientError, UnknownOutcomeError)
from connectors.transports import soap_fast

ZEEP_SETTINGS = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True,
                              forbid_external=True, xml_huge_tree=False)
"""Strict parsing; no DTDs, entities or external fetches in any WSDL or response."""

#: zeep loggers that write whole envelopes (personal data) at DEBUG.
_ENVELOPE_LOGGERS = ("zeep.transports", "zeep.wsdl.bindings.soap", "zeep.xsd", "zeep.wsdl")

#: SOAP fault codes (local part, any case) that mean the credentials are wrong.
_AUTH_CODES = ("authentication", "failedauthentication", "invalidsecurity",
               "invalidsecuritytoken", "unauthorized", "unauthorised", "accessdenied")

_MAX_FAULT_MESSAGE = 200

#: HTTP statuses that mean "not processed, try later" (timeout, too early, rate limited).
_RETRY_LATER_STATUSES = frozenset({408, 425, 429})

#: zeep loggers that, when a response value does not convert to its XSD type (a bad date, a
#: number that is not one), log the value itself at ERROR and carry on with None.
_TRANSLATION_LOGGERS = ("zeep.xsd.types.simple", "zeep.xsd.elements.attribute")
_translation = threading.local()

_clients: dict[tuple[str, str, str | None, str, float], zeep.Client] = {}
_clients_lock = threading.Lock()


class _TranslationErrorFilter(logging.Filter):
    """Drops zeep's "Error during xml -> python translation" records (their traceback holds the
    response value) and notes, for this thread, that the response was malformed."""

    def filter(self, record: logging.LogRecord) -> bool:
        _translation.failed = True
        return False


def quiet_zeep_logging() -> None:
    """zeep.transports logs whole envelopes at DEBUG (personal data): pin those loggers to INFO.
    zeep's value-translation errors are dropped from the logs and fail the call instead."""
    for name in _ENVELOPE_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)
    for name in _TRANSLATION_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level > logging.ERROR:  # the filter only runs for records the level lets in
            logger.setLevel(logging.ERROR)
        if not any(isinstance(f, _TranslationErrorFilter) for f in logger.filters):
            logger.addFilter(_TranslationErrorFilter())


class _StatusTransport(Transport):
    """zeep transport that refuses 401/403 before parsing and remembers the last HTTP status."""

    def __init__(self, *, timeout: float, endpoint: str) -> None:
        super().__init__(timeout=timeout, operation_timeout=timeout)
        self._local = threading.local()
        # requests would read proxy, netrc and CA-bundle settings from the environment on every
        # call (a measurable share of each call): read them once, for this endpoint, here.
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(endpoint))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.session.verify = bundle

    @property
    def last_status(self) -> int | None:
        return getattr(self._local, "status", None)

    def post(self, address: str, message: Any, headers: Any) -> requests.Response:
        self._local.status = None
        response = self._send(address, message, headers)
        self._local.status = response.status_code
        if response.status_code in (401, 403):
            raise zeep.exceptions.TransportError(
                f"HTTP {response.status_code}", status_code=response.status_code)
        return response


    def _send(self, address: str, message: bytes | str, headers: Mapping[str, str]) -> requests.Response:
        """POST through the session's connection pool without requests' per-call preparation
        (URL parsing, merging settings, cookie jar, redirects): the endpoint is fixed, only body
        and headers change. Failures are requests' own exceptions (the adapter translates them)."""
        body = message.encode("utf-8") if isinstance(message, str) else message
        request = requests.PreparedRequest()
        request.method = "POST"
        request.url = address
        request.headers = CaseInsensitiveDict(self.session.headers)
        request.headers.update(headers)
        request.headers["Content-Length"] = str(len(body))
        request.body = body
        request.hooks = {"response": []}
        adapter = self.session.get_adapter(address)
        response = adapter.send(request, stream=False, timeout=self.operation_timeout,
                                verify=self.session.verify, cert=self.session.cert,
                                proxies=self.session.proxies)
        _ = response.content   # read the whole answer now, under the timeout
        return response


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
                username: str | None = None, password: str | None = None) -> zeep.Client:
    """One client per process per (wsdl_path, endpoint, username): WSDL loaded from the repo file,
    service address overridden to ``endpoint``, zeep Transport(timeout=..., operation_timeout=...),
    WS-Security UsernameToken (zeep.wsse.username.UsernameToken) when username is given."""
    if timeout <= 0:
        raise PermanentError("SOAP timeout must be positive", code="config")
    quiet_zeep_logging()
    # The password's digest (never the password) is in the key so a rotated secret gets a new client.
    # (The path is keyed as given: resolving it on every call costs more than the rest of this.)
    secret = hashlib.sha256((password or "").encode()).hexdigest()
    key = (str(wsdl_path), endpoint, username, secret, float(timeout))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            path = Path(wsdl_path).resolve()
            if not path.is_file():
                raise PermanentError(f"WSDL file not found: {path.name}", code="config")
            wsse = UsernameToken(username, password or "") if username else None
            try:
                client = EndpointClient(str(path), endpoint=endpoint, wsse=wsse,
                                        transport=_StatusTransport(timeout=timeout, endpoint=endpoint),
                                        settings=ZEEP_SETTINGS)
            except (zeep.exceptions.Error, OSError, ValueError) as exc:
                raise PermanentError(f"cannot load WSDL {path.name}: {type(exc).__name__}",
                                     code="wsdl") from exc
            _clients[key] = client
        return client


def soap_call(client: zeep.Client, operation: str, /, **params: Any) -> Any:
    """client.service.<operation>(**params), failures classified (connectors.errors).

    Connection refused / DNS -> TransientError; read timeout after the request was sent ->
    UnknownOutcomeError; HTTP 5xx without a SOAP fault, or SOAP Server fault -> TransientError;
    HTTP 401/403 or an authentication fault -> PermanentError; SOAP Client fault ->
    Rejected(code=fault code/subcode); malformed response / schema mismatch -> PermanentError.
    """
    try:
        getattr(client.service, operation)
    except AttributeError as exc:
        raise PermanentError(f"SOAP operation {operation} is not in the WSDL", code="wsdl") from exc
    _translation.failed = False
    try:
        answer = soap_fast.call(client, operation, params)
    except requests.exceptions.SSLError as exc:
        raise PermanentError(f"{operation}: TLS handshake or certificate refused",
                             code="tls") from exc
    except requests.exceptions.ConnectTimeout as exc:
        raise TransientError(f"{operation}: connect timeout", code="connect-timeout") from exc
    except requests.exceptions.ReadTimeout as exc:
        raise UnknownOutcomeError(f"{operation}: no answer before the timeout",
                                  code="read-timeout") from exc
    except requests.exceptions.ConnectionError as exc:
        if _failed_before_sending(exc):
            raise TransientError(f"{operation}: cannot connect", code="connect") from exc
        raise UnknownOutcomeError(f"{operation}: connection lost after sending",
                                  code="connection-lost") from exc
    except (requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError) as exc:  # the answer was cut or garbled
        raise UnknownOutcomeError(f"{operation}: answer lost after sending",
                                  code="answer-lost") from exc
    except requests.exceptions.RequestException as exc:
        raise TransientError(f"{operation}: HTTP failure {type(exc).__name__}", code="http") from exc
    except zeep.exceptions.Fault as exc:
        raise _classify_fault(operation, exc, _last_status(client)) from exc
    except zeep.exceptions.TransportError as exc:
        raise _classify_http(operation, exc.status_code) from exc
    except (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden,
            zeep.exceptions.ExternalReferenceForbidden) as exc:
        raise PermanentError(f"{operation}: response holds a forbidden DTD or entity",
                             code="forbidden-xml") from exc
    except (zeep.exceptions.ValidationError, zeep.exceptions.XMLParseError,
            zeep.exceptions.XMLSyntaxError, zeep.exceptions.UnexpectedElementError,
            zeep.exceptions.LookupError, zeep.exceptions.Error) as exc:
        raise PermanentError(f"{operation}: malformed request or response "
                             f"({type(exc).__name__})", code="schema") from exc
    except TypeError as exc:  # zeep: unexpected or missing keyword for the operation
        raise PermanentError(f"{operation}: parameters do not match the WSDL",
                             code="schema") from exc
    if getattr(_translation, "failed", False):
        raise PermanentError(f"{operation}: malformed response (a value does not match its type)",
                             code="schema")
    return answer


def _last_status(client: zeep.Client) -> int | None:
    transport = getattr(client, "transport", None)
    return transport.last_status if isinstance(transport, _StatusTransport) else None


def _failed_before_sending(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection was never made (refused, DNS, connect timeout)."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _classify_http(operation: str, status: int | None) -> Exception:
    if status in (401, 403):
        return PermanentError(f"{operation}: HTTP {status}: credentials refused", code=f"http-{status}")
    if status is not None and (status >= 500 or status in _RETRY_LATER_STATUSES):
        return TransientError(f"{operation}: HTTP {status}", code=f"http-{status}")
    return PermanentError(f"{operation}: malformed response (HTTP {status})",
                          code=f"http-{status}" if status else "malformed")


def _fault_code(exc: zeep.exceptions.Fault) -> str:
    """The fault code without its namespace prefix, e.g. ``Client.UnknownAccount``."""
    code = exc.code
    text = getattr(code, "localname", None) or str(code or "")
    return text.rsplit(":", 1)[-1].rsplit("}", 1)[-1]


def _classify_fault(operation: str, exc: zeep.exceptions.Fault, status: int | None) -> Exception:
    code = _fault_code(exc)
    reason = (exc.message or "").strip()[:_MAX_FAULT_MESSAGE] or "no reason given"
    if not code:  # HTTP error status with an XML body that is not a SOAP fault
        return _classify_http(operation, status if status and status != 200 else 500)
    kind, _, subcode = code.partition(".")
    if code.lower() in _AUTH_CODES or subcode.lower() in _AUTH_CODES:
        return PermanentError(f"{operation}: authentication refused", code=code)
    if status in (401, 403):
        return PermanentError(f"{operation}: HTTP {status}: credentials refused", code=code)
    if kind.lower() in ("client", "sender"):
        return Rejected(f"{operation}: {reason}", code=subcode or kind)
    if kind.lower() in ("server", "receiver"):
        return TransientError(f"{operation}: server fault", code=code)
    return PermanentError(f"{operation}: unexpected fault code", code=code)
