"""JSON over HTTP with httpx: one client per back office per process, classified failures.

Every connector (and the CRM client) that speaks REST builds its client with ``shared_client``
(or ``RestClient`` directly) and calls ``request``/``get``/``post`` with a *path template*
(``/api/v2/jobs/{job_id}``) and its values, so that logs and error messages name the template,
never a value. Failures are classified (``connectors.errors``):

==============================================  ==========================================
failure                                         raised
==============================================  ==========================================
connection refused, DNS, connect/pool timeout   ``TransientError`` (nothing was sent)
TLS handshake or certificate refused            ``PermanentError`` (``tls``)
timeout or connection lost after a write was    ``UnknownOutcomeError`` (look before creating
sent (POST, PUT, PATCH, DELETE)                 again); for GET/HEAD a ``TransientError``
HTTP 401 / 403                                  ``PermanentError`` (after one token renewal)
HTTP 408 / 425 / 429 / 5xx                      ``TransientError`` with ``retry_after`` from
                                                ``Retry-After`` (seconds or an HTTP date)
HTTP 3xx (redirects are never followed)         ``PermanentError`` (check the base URL)
HTTP 405 / 406 / 407 / 411 / 414 / 415 / 426 /  ``PermanentError``: the request itself is
431                                             misbuilt; no record can succeed
any other 4xx                                   ``Rejected`` (``field`` when the body names
                                                one; ``vendor_code`` the body's error code)
an answer larger than ``max_answer_bytes``      ``AnswerTooLarge``, an ``UnreadableAnswer``
                                                (``answer-too-large``); read incrementally and
                                                cut off, never buffered whole
an answer that is not the JSON expected (syntax ``UnreadableAnswer`` (``contract``); parsed by
NaN/Infinity, nested deeper than                ``jsonreader``: never a ``RecursionError``
``max_answer_depth``, not an object)
either of those two in answer to a write        ``UnknownOutcomeError``: it may have been applied
==============================================  ==========================================

Authentication: ``BearerToken``, ``BasicAuth``, ``ClientCredentials`` (OAuth2 client credentials,
the token cached until shortly before it expires and renewed once when a call answers 401).
``RestConfig`` is the connection settings every REST connector shares (subclass it and add the
system's own); ``RestConfig.client(system)`` gives the process's shared client for them.

Pagination: ``page_number_pages``, ``cursor_pages`` and ``next_link_pages`` yield the items of
every page, with a page limit and loop detection.

Logs carry the system, the method, the path template and the status only. httpx logs every
request's full URL (path values and query string included) at INFO, and httpcore its traffic at
DEBUG: building a client calls ``httplog.redact_http_client_logs`` (pins both to WARNING, and cuts
query strings out of whatever HTTP client logging is still switched on).
"""
from __future__ import annotations

import email.utils
import hashlib
import logging
import re
import ssl
import string
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal, Self, TypeVar
from urllib.parse import quote, urljoin

import httpx
from pydantic import Field, SecretStr, model_validator

from connectors.base import Command, Connector, ConnectorConfig, Outcome
from connectors.errors import (PermanentError, Rejected, TransientError, UnknownOutcomeError,
                               UnreadableAnswer)
from connectors.transports.httplog import redact_http_client_logs
from connectors.transports.jsonreader import DEFAULT_MAX_DEPTH, BodyNotJson, parse_json_body

log = logging.getLogger(__name__)

DEFAULT_MAX_ANSWER_BYTES = 10 * 1024 * 1024
"""Largest answer body read by default (decoded bytes)."""
MAX_ERROR_BODY_BYTES = 64 * 1024
"""An error answer is read this far at most, to find the field and code it names."""
RETRY_LATER_STATUSES = frozenset({408, 425, 429})
"""4xx statuses that mean "not processed, try later"."""
MISBUILT_REQUEST_STATUSES = frozenset({405, 406, 407, 411, 414, 415, 426, 431})
"""4xx statuses that blame the request's form, not the record: a configuration or code fault."""
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\[\]/#:-]{1,100}$")
_SAFE_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,60}$")


class AnswerTooLarge(UnreadableAnswer):
    """The back office's answer is larger than the configured cap."""


class HttpRejected(Rejected):
    """The back office refused the request with a 4xx status (this record only).

    ``code`` is the body's error code when it gives one (``unknown_property``), else the status;
    ``field`` is the field the body names, translated by the client's ``field_names``.
    """

    def __init__(self, message: str, *, status: int, field: str | None = None,
                 vendor_code: str | None = None) -> None:
        super().__init__(message, code=vendor_code or str(status), field=field)
        self.status = status
        #: The error code the body gives (``duplicate_client_reference``), when it gives one.
        self.vendor_code = vendor_code


# -- answers -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """A response read in full (within the size cap)."""

    status: int
    headers: httpx.Headers
    content: bytes
    url: httpx.URL
    what: str
    """``<system> <METHOD> <template>``: for messages."""
    method: str = "GET"
    max_depth: int = DEFAULT_MAX_DEPTH
    """Deepest JSON nesting read (``jsonreader``)."""

    def _unreadable(self, message: str) -> Exception:
        if self.method in READ_METHODS:
            return UnreadableAnswer(f"{self.what}: {message}", code="contract")
        return UnknownOutcomeError(f"{self.what}: {message}; it may have been applied",
                                   code="contract")

    def json(self) -> Any:
        """The body as JSON, or ``UnreadableAnswer`` (``contract``); for a write, whose answer
        cannot be read but which may have been applied, ``UnknownOutcomeError``."""
        try:
            return parse_json_body(self.content, max_depth=self.max_depth)
        except BodyNotJson as exc:
            raise self._unreadable(f"answer is not JSON the hub reads ({exc})") from exc

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (failures as ``json``)."""
        body = self.json()
        if not isinstance(body, dict):
            raise self._unreadable("answer is not a JSON object")
        return body

    def next_link(self) -> str | None:
        """The ``Link: <...>; rel="next"`` header's target, if any."""
        for part in self.headers.get_list("link", split_commas=True):
            target, _, params = part.partition(";")
            rels = re.findall(r'rel\s*=\s*"?([^";]+)"?', params)
            if any("next" in r.split() for r in rels):
                return target.strip().strip("<>").strip() or None
        return None


# -- authentication --------------------------------------------------------------------------

class Auth:
    """How a client authenticates: headers for each request, and one renewal after a 401."""

    def headers(self, client: RestClient) -> dict[str, str]:
        return {}

    def renew(self, client: RestClient) -> bool:
        """Drop a cached credential after a 401; True when one more try may succeed."""
        return False

    def cache_key(self) -> str:
        """Distinguishes clients with other credentials (a digest, never the secret)."""
        return type(self).__name__


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


class BearerToken(Auth):
    """A fixed API token sent as ``Authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        if not token:
            raise PermanentError("API token is empty", code="config")
        self._token = token

    def headers(self, client: RestClient) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def cache_key(self) -> str:
        return f"bearer:{_digest(self._token)}"


class BasicAuth(Auth):
    """HTTP Basic with a user name and password."""

    def __init__(self, username: str, password: str) -> None:
        if not username:
            raise PermanentError("user name is empty", code="config")
        self._header = httpx.BasicAuth(username, password)._auth_header
        self._key = f"basic:{_digest(username, password)}"

    def headers(self, client: RestClient) -> dict[str, str]:
        return {"Authorization": self._header}

    def cache_key(self) -> str:
        return self._key


class ClientCredentials(Auth):
    """OAuth2 client credentials (RFC 6749 4.4): a token from ``token_url``, cached until
    ``expiry_margin_seconds`` before it expires, renewed once when a call answers 401.

    The client authenticates to the token endpoint with HTTP Basic (``client_secret_basic``) or,
    with ``send_secret_in_body=True``, with form fields (``client_secret_post``).
    """

    def __init__(self, token_url: str, client_id: str, client_secret: str, *,
                 scope: str | None = None, send_secret_in_body: bool = False,
                 expiry_margin_seconds: float = 30.0) -> None:
        if not client_id or not client_secret:
            raise PermanentError("OAuth2 client id or secret is empty", code="config")
        self.token_url = token_url
        self._client_id = client_id
        self._secret = client_secret
        self._scope = scope
        self._in_body = send_secret_in_body
        self._margin = expiry_margin_seconds
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetched = 0
        """How many tokens were fetched (for tests and metrics)."""

    def cache_key(self) -> str:
        return f"oauth2:{_digest(self.token_url, self._client_id, self._secret, self._scope or '')}"

    def headers(self, client: RestClient) -> dict[str, str]:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                self._token, self._expires_at = self._fetch(client)
            return {"Authorization": f"Bearer {self._token}"}

    def renew(self, client: RestClient) -> bool:
        with self._lock:
            self._token = None
        return True

    def _fetch(self, client: RestClient) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        headers: dict[str, str] = {}
        if self._in_body:
            form |= {"client_id": self._client_id, "client_secret": self._secret}
        else:
            headers["Authorization"] = httpx.BasicAuth(self._client_id, self._secret)._auth_header
        try:
            body = client.send("POST", "token", client.resolve(self.token_url), data=form,
                               headers=headers, authenticate=False).json_object()
        except HttpRejected as exc:   # invalid_client / invalid_grant / invalid_scope
            raise PermanentError(f"{client.system}: token request refused "
                                 f"({exc.vendor_code or exc.status})",
                                 code=f"auth-{exc.vendor_code or exc.status}") from exc
        except UnknownOutcomeError as exc:   # asking for a token changes nothing
            if exc.code in ("timeout", "connection-lost"):
                raise TransientError(f"{client.system}: token request timed out",
                                     code=exc.code) from exc
            raise PermanentError(f"{client.system}: token answer cannot be read",
                                 code=exc.code) from exc
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token:
            raise PermanentError(f"{client.system}: token answer has no access_token",
                                 code="contract")
        if str(body.get("token_type", "bearer")).lower() != "bearer":
            raise PermanentError(f"{client.system}: token type is not bearer", code="contract")
        seconds = float(lifetime) if isinstance(lifetime, (int, float)) and lifetime > 0 else 300.0
        self.fetched += 1
        log.debug("%s: OAuth2 token fetched (valid %.0f s)", client.system, seconds)
        return token, time.monotonic() + max(1.0, seconds - self._margin)


# -- the client --------------------------------------------------------------------------------

class RestClient:
    """An httpx client for one JSON back office, with explicit timeouts and classified errors.

    ``system`` labels logs and messages (``housing_repairs``, ``CRM``). ``timeout`` is in seconds
    (connect, read, write and pool) or an ``httpx.Timeout``. Redirects are never followed.
    ``field_names`` translates the fields refusals name (``location.property_reference``) into the
    connector's payload fields (``uprn``). ``transport`` is for tests (``httpx.MockTransport``).
    """

    def __init__(self, base_url: str, *, system: str, auth: Auth | None = None,
                 timeout: float | httpx.Timeout = 30.0,
                 max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                 max_answer_depth: int = DEFAULT_MAX_DEPTH,
                 headers: Mapping[str, str] | None = None,
                 field_names: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None, verify: bool | str = True) -> None:
        if not re.match(r"^https?://[^/]", base_url or ""):
            raise PermanentError(f"{system}: base URL must start with http:// or https://",
                                 code="config")
        if isinstance(timeout, (int, float)) and timeout <= 0:
            raise PermanentError(f"{system}: timeout must be positive", code="config")
        if max_answer_bytes <= 0 or max_answer_depth <= 0:
            raise PermanentError(f"{system}: max_answer_bytes and max_answer_depth must be "
                                 "positive", code="config")
        redact_http_client_logs()
        self.system = system
        self.field_names = dict(field_names or {})
        self.auth = auth or Auth()
        self.max_answer_bytes = max_answer_bytes
        self.max_answer_depth = max_answer_depth
        self.base_url = base_url.rstrip("/") + "/"
        self._http = httpx.Client(
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            follow_redirects=False, transport=transport, verify=verify,
            headers={"Accept": "application/json", "User-Agent": "council-integration-hub",
                     **(headers or {})})

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    # -- requests ----------------------------------------------------------------------------
    def resolve(self, path: str) -> httpx.URL:
        """An absolute URL for ``path`` (relative to the base URL) or ``path`` if absolute."""
        return httpx.URL(urljoin(self.base_url, path.lstrip("/")) if "://" not in path else path)

    def url_for(self, template: str, values: Mapping[str, Any] | None = None) -> httpx.URL:
        """``template`` with each ``{name}`` replaced by its value, percent-encoded whole."""
        names = [n for _, n, _, _ in string.Formatter().parse(template) if n is not None]
        values = values or {}
        missing = [n for n in names if str(values.get(n, "")).strip() == ""]
        if missing:
            raise ValueError(f"path template {template}: no value for {missing}")
        return self.resolve(template.format_map({n: quote(str(values[n]), safe="") for n in names}))

    def request(self, method: str, template: str, *, path: Mapping[str, Any] | None = None,
                params: Mapping[str, Any] | None = None, json: Any = None,
                data: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
                allow: Collection[int] = ()) -> Answer:
        """Send one request; 2xx and the statuses in ``allow`` are answers, the rest raise."""
        return self.send(method, template, self.url_for(template, path), params=params,
                         json=json, data=data, headers=headers, allow=allow)

    def get(self, template: str, **kwargs: Any) -> Answer:
        return self.request("GET", template, **kwargs)

    def post(self, template: str, **kwargs: Any) -> Answer:
        return self.request("POST", template, **kwargs)

    def send(self, method: str, template: str, url: httpx.URL, *,
             params: Mapping[str, Any] | None = None, json: Any = None,
             data: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
             allow: Collection[int] = (), authenticate: bool = True) -> Answer:
        """Send to a ready URL (a next-page link); ``template`` is what logs and messages name."""
        method = method.upper()
        what = f"{self.system} {method} {template}"
        for attempt in (1, 2):
            sent_headers = {**(self.auth.headers(self) if authenticate else {}), **(headers or {})}
            answer = self._exchange(method, url, what, params=params, json=json, data=data,
                                    headers=sent_headers)
            if answer.status == 401 and authenticate and attempt == 1 and self.auth.renew(self):
                log.info("%s: HTTP 401; renewing the credential once", what)
                continue
            break
        log.log(logging.DEBUG if answer.status < 400 else logging.INFO, "%s -> %d", what,
                answer.status)
        if 200 <= answer.status < 300 or answer.status in allow:
            return answer
        raise _status_error(answer, retry_after=_retry_after(answer.headers.get("retry-after")),
                            field_names=self.field_names)

    def _exchange(self, method: str, url: httpx.URL, what: str, **kwargs: Any) -> Answer:
        try:
            with self._http.stream(method, url, **kwargs) as response:
                is_error = response.status_code >= 400
                content = self._read(response, what,
                                     MAX_ERROR_BODY_BYTES if is_error else self.max_answer_bytes,
                                     truncate=is_error)
                return Answer(response.status_code, response.headers, content, response.url, what,
                              method, self.max_answer_depth)
        except AnswerTooLarge as exc:
            if method in READ_METHODS:
                raise
            raise UnknownOutcomeError(f"{what}: answer too large to read; it may have been "
                                      "applied", code="answer-too-large") from exc
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientError(f"{what}: connect timeout", code="connect-timeout") from exc
        except httpx.ConnectError as exc:
            if _is_tls_failure(exc):
                raise PermanentError(f"{what}: TLS handshake or certificate refused",
                                     code="tls") from exc
            raise TransientError(f"{what}: cannot connect", code="connect") from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise PermanentError(f"{what}: invalid URL", code="config") from exc
        except httpx.DecodingError as exc:
            raise PermanentError(f"{what}: answer cannot be decoded", code="contract") from exc
        except httpx.TimeoutException as exc:
            if method in READ_METHODS:
                raise TransientError(f"{what}: timed out", code="timeout") from exc
            raise UnknownOutcomeError(f"{what}: timed out after sending", code="timeout") from exc
        except httpx.TransportError as exc:   # connection reset or closed mid-exchange
            if method in READ_METHODS:
                raise TransientError(f"{what}: connection lost", code="network") from exc
            raise UnknownOutcomeError(f"{what}: connection lost after sending",
                                      code="connection-lost") from exc

    def _read(self, response: httpx.Response, what: str, cap: int, *, truncate: bool) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap and not truncate:
            raise AnswerTooLarge(f"{what}: answer of {declared} bytes is over the "
                                 f"{cap}-byte limit", code="answer-too-large")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > cap:
                if truncate:   # an error answer: the start is enough to find its field
                    chunks.append(chunk[:cap - (size - len(chunk))])
                    break
                raise AnswerTooLarge(f"{what}: answer is over the {cap}-byte limit",
                                     code="answer-too-large")
            chunks.append(chunk)
        return b"".join(chunks)


# -- one client per process ------------------------------------------------------------------

_clients: dict[tuple[Any, ...], RestClient] = {}
_clients_lock = threading.Lock()


def shared_client(base_url: str, *, system: str, auth: Auth | None = None,
                  timeout: float = 30.0, max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                  max_answer_depth: int = DEFAULT_MAX_DEPTH,
                  field_names: Mapping[str, str] | None = None,
                  transport: httpx.BaseTransport | None = None) -> RestClient:
    """One ``RestClient`` per process per (system, base URL, credentials, limits): connection
    pools and OAuth2 tokens are shared by every connector built for that back office. With a
    ``transport`` (tests) a new client is made each time."""
    options: dict[str, Any] = {"system": system, "auth": auth, "timeout": timeout,
                               "max_answer_bytes": max_answer_bytes,
                               "max_answer_depth": max_answer_depth, "field_names": field_names}
    if transport is not None:
        return RestClient(base_url, transport=transport, **options)
    key = (system, base_url.rstrip("/"), (auth or Auth()).cache_key(), float(timeout),
           max_answer_bytes, max_answer_depth, tuple(sorted((field_names or {}).items())))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = RestClient(base_url, **options)
        return client


def close_shared_clients() -> None:
    """Close every shared client (tests; process shutdown)."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


class RestConfig(ConnectorConfig):
    """Connection settings of a REST back office: ``host`` is the service root, ``login`` and
    ``password`` the client id and secret (OAuth2 client credentials by default; ``auth`` in the
    extras picks ``basic`` or ``bearer``, where the password is the API token)."""

    connection_fields: ClassVar[Mapping[str, str]] = {
        "host": "base_url", "login": "client_id", "password": "client_secret"}

    base_url: str = Field(pattern=r"^https?://[^/]")
    client_id: str = ""
    client_secret: SecretStr
    auth: Literal["oauth2", "basic", "bearer"] = "oauth2"
    token_url: str = "/oauth/token"
    """OAuth2 token endpoint, relative to ``base_url`` or absolute."""
    scope: str | None = None

    @model_validator(mode="after")
    def _client_id_when_needed(self) -> Self:
        if self.auth != "bearer" and not self.client_id:
            raise ValueError("client_id is required for oauth2 and basic authentication")
        return self

    def client(self, system: str, *, field_names: Mapping[str, str] | None = None,
               transport: httpx.BaseTransport | None = None) -> RestClient:
        """This process's shared client for these settings."""
        secret = self.client_secret.get_secret_value()
        auth: Auth = (BearerToken(secret) if self.auth == "bearer"
                      else BasicAuth(self.client_id, secret) if self.auth == "basic"
                      else ClientCredentials(self.token_url, self.client_id, secret, scope=self.scope))
        return shared_client(self.base_url, system=system, auth=auth, timeout=self.timeout_seconds,
                             max_answer_bytes=self.max_answer_bytes,
                             max_answer_depth=self.max_answer_depth, field_names=field_names,
                             transport=transport)


RestConfigT = TypeVar("RestConfigT", bound=RestConfig)


class RestConnector(Connector[RestConfigT]):
    """The common part of a connector over one REST back office: ``self.http`` is this
    process's shared client for its settings, ``check()`` GETs ``check_path`` (a cheap
    authenticated call), and ``submit`` runs ``apply_one`` per command through ``submit_each``
    (retries, classification, one outcome per command). A subclass adds ``apply_one`` and
    ``fetch_updates`` (and whatever else it answers: ``lookup``, ``records``...)."""

    check_path: ClassVar[str] = "/"
    field_names: ClassVar[Mapping[str, str]] = {}
    """The API's request field names as its refusals name them -> the payload's field names."""

    def __init__(self, config: RestConfigT, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(config)
        self.http = config.client(self.system_id(), field_names=self.field_names,
                                  transport=transport)

    def check(self) -> None:
        self.retrying()(self.http.get, self.check_path)

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        return self.submit_each(commands, self.apply_one)

    def apply_one(self, command: Command) -> Outcome:
        """Apply one command (validate it, look before creating...) or raise a classified error."""
        raise NotImplementedError(f"{type(self).__name__} has no apply_one")


# -- pagination --------------------------------------------------------------------------------

def _items(body: dict[str, Any], key: str, what: str) -> list[Any]:
    value: Any = body
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise UnreadableAnswer(f"{what}: '{key}' is not a list", code="contract", field=key)
    return value


def _dig(body: Any, key: str) -> Any:
    for part in key.split("."):
        body = body.get(part) if isinstance(body, dict) else None
    return body


def page_number_pages(client: RestClient, template: str, *, path: Mapping[str, Any] | None = None,
                      params: Mapping[str, Any] | None = None, items: str = "items",
                      page_param: str = "page", size_param: str = "page_size",
                      page_size: int = 100, first_page: int = 1,
                      total_pages: str | None = "total_pages",
                      max_pages: int = 100) -> Iterator[Any]:
    """Items of ``?page=1,2,...``: stops at an empty or short page, or at ``total_pages``."""
    page = first_page
    for _ in range(max_pages):
        answer = client.get(template, path=path,
                            params={**(params or {}), page_param: page, size_param: page_size})
        body = answer.json_object()
        found = _items(body, items, answer.what)
        yield from found
        total = _dig(body, total_pages) if total_pages else None
        last = (isinstance(total, int) and page - first_page + 1 >= total)
        if not found or len(found) < page_size or last:
            return
        page += 1
    raise PermanentError(f"{client.system} GET {template}: more than {max_pages} pages",
                         code="too-many-pages")


def cursor_pages(client: RestClient, template: str, *, path: Mapping[str, Any] | None = None,
                 params: Mapping[str, Any] | None = None, items: str = "items",
                 cursor_param: str = "cursor", next_cursor: str = "next_cursor",
                 max_pages: int = 100) -> Iterator[Any]:
    """Items of pages chained by an opaque cursor in the body; stops when it is absent."""
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(max_pages):
        query = dict(params or {}) | ({cursor_param: cursor} if cursor else {})
        answer = client.get(template, path=path, params=query)
        body = answer.json_object()
        yield from _items(body, items, answer.what)
        following = _dig(body, next_cursor)
        if following in (None, ""):
            return
        if not isinstance(following, str) or following in seen:
            raise PermanentError(f"{answer.what}: '{next_cursor}' repeats or is not text",
                                 code="pagination-loop")
        seen.add(cursor := following)
    raise PermanentError(f"{client.system} GET {template}: more than {max_pages} pages",
                         code="too-many-pages")


def next_link_pages(client: RestClient, template: str, *, path: Mapping[str, Any] | None = None,
                    params: Mapping[str, Any] | None = None, items: str = "items",
                    next_link: str | None = "links.next", max_pages: int = 100) -> Iterator[Any]:
    """Items of pages chained by a next-page link: the body's ``next_link`` key (dotted), else
    the ``Link: rel="next"`` header. A link to another host than the first page's is refused
    (credentials never leave the back office)."""
    answer = client.get(template, path=path, params=params)
    origin = (answer.url.scheme, answer.url.host, answer.url.port)
    seen: set[str] = set()
    for _ in range(max_pages):
        body = answer.json_object()
        yield from _items(body, items, answer.what)
        link = (_dig(body, next_link) if next_link else None) or answer.next_link()
        if link in (None, ""):
            return
        if not isinstance(link, str):
            raise PermanentError(f"{answer.what}: next link is not text", code="contract")
        url = httpx.URL(urljoin(str(answer.url), link))
        if (url.scheme, url.host, url.port) != origin:
            raise PermanentError(f"{answer.what}: next link points to another host",
                                 code="foreign-next-link")
        if str(url) in seen:
            raise PermanentError(f"{answer.what}: next link repeats", code="pagination-loop")
        seen.add(str(url))
        answer = client.send("GET", f"{template} (next page)", url)
    raise PermanentError(f"{client.system} GET {template}: more than {max_pages} pages",
                         code="too-many-pages")


# -- classification ----------------------------------------------------------------------------

def _status_error(answer: Answer, *, retry_after: float | None,
                  field_names: Mapping[str, str]) -> Exception:
    status, what = answer.status, answer.what
    if status >= 500 or status in RETRY_LATER_STATUSES:
        return TransientError(f"{what}: HTTP {status}", code=str(status), retry_after=retry_after)
    if status in (401, 403):
        return PermanentError(f"{what}: HTTP {status}: credentials refused", code=str(status))
    if 300 <= status < 400:
        return PermanentError(f"{what}: HTTP {status}: redirected (check the base URL)",
                              code=str(status))
    if status in MISBUILT_REQUEST_STATUSES or not 400 <= status < 500:
        return PermanentError(f"{what}: HTTP {status}: the request is not accepted in this form",
                              code=str(status))
    field, vendor_code = error_details(answer.content)
    field = field_names.get(field, field) if field else None
    detail = "".join([f" (field {field})" if field else "",
                      f" [{vendor_code}]" if vendor_code else ""])
    return HttpRejected(f"{what}: refused: HTTP {status}{detail}", status=status, field=field,
                        vendor_code=vendor_code)


def error_details(content: bytes) -> tuple[str | None, str | None]:
    """(field, code) named by a JSON error body, in the common shapes: FastAPI/pydantic
    ``detail[].loc``/``type``; RFC 9457 problem details ``invalid-params[].name``,
    ``errors[].pointer``; JSON:API ``errors[].source.pointer``/``code``; ``errors[].field``/``code``;
    ``error.code``/``error.target`` (and the string ``error`` of OAuth2). Names that do not look
    like a field or code are ignored: an error body may echo a value, and values never go into
    messages."""
    try:
        body = parse_json_body(content)
    except BodyNotJson:
        return None, None
    if not isinstance(body, dict):
        return None, None
    first: dict[str, Any] = {}
    for key in ("detail", "errors", "invalid-params", "invalid_params"):
        entries = body.get(key)
        if isinstance(entries, list) and entries and isinstance(entries[0], dict):
            first = entries[0]
            break
    error = body.get("error")
    error_obj = error if isinstance(error, dict) else {}
    loc = first.get("loc")
    field = (".".join(str(p) for p in loc if p not in ("body", "query", "header", "path"))
             if isinstance(loc, list) else None)
    field = field or first.get("field") or first.get("name") or first.get("pointer") \
        or _dig(first, "source.pointer") or error_obj.get("target") or error_obj.get("field") \
        or body.get("field")
    code = (first.get("code") or first.get("type") or error_obj.get("code")
            or (error if isinstance(error, str) else None) or body.get("code"))
    if isinstance(field, str):
        field = field.lstrip("#/").replace("/", ".").removeprefix("data.attributes.")
    return (field if isinstance(field, str) and _SAFE_NAME.match(field) else None,
            code if isinstance(code, str) and _SAFE_CODE.match(code) else None)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _is_tls_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(cause):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
