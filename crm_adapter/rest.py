"""REST client for the CRM: the change feed (pull), single cases, and write-backs.

Every failure is classified (``connectors.errors``): network errors, timeouts, 5xx, 408 and 429 are
``TransientError``; 401/403, redirects and answers that break the API contract are
``PermanentError``; a refusal of one case or write-back (400, 404, 409, 410, 422) is ``Rejected``.
Messages carry status codes, CRM ids and field names, never case data.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from connectors.errors import (PermanentError, Rejected, TransientError,
                               UnknownOutcomeError, UnreadableAnswer)
from connectors.transports.httplog import redact_http_client_logs
from crm_adapter.models import BodyNotJson, CrmCase, WriteBack, parse_json_body, validation_summary

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
_TRANSIENT_STATUS = {408, 425, 429}
_REJECTED_STATUS = {400, 404, 409, 410, 422}

#: ``invalid(delivery_id, error_text, raw_json)``: called for a feed item that is not a CrmCase.
InvalidCaseHandler = Callable[[str, str, bytes], object]


class CrmClient:
    """Talks to the CRM's REST API with a bearer token and explicit timeouts."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None,
                 max_answer_bytes: int = 20 * 1024 * 1024) -> None:
        if not token:
            raise PermanentError("CRM token is empty", code="config")
        redact_http_client_logs()   # httpx logs every URL at INFO: never with its query string
        self.max_answer_bytes = max_answer_bytes
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout), follow_redirects=False, transport=transport)

    def __enter__(self) -> CrmClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    # -- reads ---------------------------------------------------------------------------------

    def cases_changed_since(self, cursor: str | None, limit: int = 200, *,
                            invalid: InvalidCaseHandler | None = None,
                            ) -> tuple[list[CrmCase], str | None]:
        """One page of the change feed after ``cursor``, and the cursor to store next.

        The cursor is ``None`` when there was nothing new. A feed item that is not a valid case is
        handed to ``invalid`` (and skipped) when given; otherwise it raises ``PermanentError``.
        """
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        try:
            response = self._request("GET", f"{API_PREFIX}/cases", params=params)
        except Rejected as exc:
            raise PermanentError(f"CRM refused the change feed request ({exc.code})",
                                 code=exc.code) from exc
        body = _json_object(response, "change feed")
        items = body.get("cases")
        next_cursor = body.get("next_cursor")
        if not isinstance(items, list):
            raise PermanentError("CRM change feed has no 'cases' list", code="contract")
        if not items:
            return [], None
        if not isinstance(next_cursor, str) or not next_cursor:
            raise PermanentError("CRM change feed returned cases without 'next_cursor'",
                                 code="contract")
        cases: list[CrmCase] = []
        for position, item in enumerate(items):
            try:
                cases.append(CrmCase.model_validate(item))
            except ValidationError as exc:
                summary = validation_summary(exc)
                delivery_id = _feed_delivery_id(item, cursor, position)
                if invalid is None:
                    raise PermanentError(f"CRM feed item {delivery_id} is not a case: {summary}",
                                         code="contract") from exc
                log.warning("CRM feed item %s is not a case: %s", delivery_id,
                            _fields_only(summary))
                invalid(delivery_id, summary, json.dumps(item, sort_keys=True).encode())
        return cases, next_cursor

    def get_case(self, crm_id: str) -> CrmCase:
        """The current version of one case (``Rejected`` if the CRM does not know it)."""
        response = self._request("GET", _case_path(crm_id), crm_id=crm_id)
        body = _json_object(response, "case")
        try:
            return CrmCase.model_validate(body)
        except ValidationError as exc:
            raise PermanentError(f"CRM case {crm_id} is not a valid case: "
                                 f"{validation_summary(exc)}", code="contract") from exc

    # -- writes --------------------------------------------------------------------------------

    def write_back(self, crm_id: str, update: WriteBack) -> None:
        """Report an outcome on a case; the CRM applies each ``idempotency_key`` once.

        A timeout after sending raises ``UnknownOutcomeError`` (a ``TransientError``): sending the
        same update again is safe because of the key.
        """
        body = update.model_dump(mode="json", exclude={"idempotency_key"})
        self._request("POST", f"{_case_path(crm_id)}/updates", body=body, crm_id=crm_id,
                      headers={"Idempotency-Key": update.idempotency_key})

    # -- plumbing ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, crm_id: str | None = None,
                 params: Mapping[str, Any] | None = None, body: Any = None,
                 headers: Mapping[str, str] | None = None) -> httpx.Response:
        what = f"CRM {method} {path.split('?')[0]}"
        try:
            request = self._http.build_request(method, path, params=params, json=body,
                                               headers=headers)
            response = self._read_limited(self._http.send(request, stream=True), what,
                                          write=method != "GET")
        except httpx.TimeoutException as exc:
            sent = not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            if sent and method != "GET":
                raise UnknownOutcomeError(f"{what}: timed out after sending",
                                          code="timeout") from exc
            raise TransientError(f"{what}: timed out", code="timeout") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"{what}: {type(exc).__name__}", code="network") from exc
        _raise_for_status(response, what, crm_id)
        return response

    def _read_limited(self, response: httpx.Response, what: str, *, write: bool) -> httpx.Response:
        """The answer read incrementally, at most ``max_answer_bytes``; past it reading stops."""
        try:
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > self.max_answer_bytes:
                    message = f"{what}: the answer went past {self.max_answer_bytes} bytes"
                    if write:   # the write may have been applied: the key makes a resend safe
                        raise UnknownOutcomeError(message, code="answer-too-large")
                    raise UnreadableAnswer(message, code="answer-too-large")
        finally:
            response.close()
        return httpx.Response(response.status_code, headers=response.headers,
                              content=bytes(data), request=response.request)


def _raise_for_status(response: httpx.Response, what: str, crm_id: str | None) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    code = str(status)
    if status >= 500 or status in _TRANSIENT_STATUS:
        raise TransientError(f"{what}: HTTP {status}", code=code)
    if status in (401, 403):
        raise PermanentError(f"{what}: HTTP {status} (check the CRM token)", code=code)
    if status in _REJECTED_STATUS:
        field = _error_field(response)
        subject = f"case {crm_id}" if crm_id else "request"
        detail = f" (field {field})" if field else ""
        raise Rejected(f"{what}: CRM refused {subject}: HTTP {status}{detail}", code=code,
                       field=field)
    raise PermanentError(f"{what}: unexpected HTTP {status}", code=code)


def _error_field(response: httpx.Response) -> str | None:
    """The field a 4xx answer names (FastAPI-style ``detail[].loc``), if any."""
    try:
        detail = parse_json_body(response.content).get("detail")
    except (BodyNotJson, AttributeError):
        return None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = [str(p) for p in detail[0].get("loc", []) if p not in ("body", "header", "query")]
        return ".".join(loc) or None
    return None


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = parse_json_body(response.content)   # nesting-limited, no NaN, no RecursionError
    except BodyNotJson as exc:
        raise PermanentError(f"CRM {what} answer is not JSON the hub accepts ({exc})",
                             code="contract") from None
    if not isinstance(body, dict):
        raise PermanentError(f"CRM {what} answer is not a JSON object", code="contract")
    return body


def _case_path(crm_id: str) -> str:
    return f"{API_PREFIX}/cases/{quote(crm_id, safe='')}"


def _feed_delivery_id(item: Any, cursor: str | None, position: int) -> str:
    """A stable id for an invalid feed item, so recording it twice is harmless."""
    if isinstance(item, dict) and isinstance(item.get("crm_id"), str):
        return f"pull:{item['crm_id']}:v{item.get('version')}"
    return f"pull:{cursor or 'start'}:{position}"


def _fields_only(summary: str) -> str:
    return ", ".join(part.split(":", 1)[0] for part in summary.split("; "))
