"""REST client for the CRM: the change feed (pull), single cases, and write-backs.

Built on the shared REST transport (``connectors.transports.rest``; crm_adapter may import
connectors' transports and errors, never the other way round), so failures are classified the same
way as every back office's: network errors, timeouts, 5xx, 408, 425 and 429 are ``TransientError``
(a write that timed out after sending is ``UnknownOutcomeError``); 401/403, redirects and misbuilt
requests are ``PermanentError``; an answer that is too large (read incrementally, cut off at
``max_answer_bytes``), not JSON, nested too deep or without a value the hub needs is
``UnreadableAnswer`` (a ``PermanentError``), and to a write-back ``UnknownOutcomeError`` (the key
makes sending it again safe); a refusal of one case or write-back (any other 4xx) is
``Rejected``. Messages carry status codes, path templates and field names, never case data.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from pydantic import ValidationError

from connectors.errors import PermanentError, Rejected, UnreadableAnswer
from connectors.transports.rest import (DEFAULT_MAX_ANSWER_BYTES, BearerToken, RestClient,
                                        cursor_pages)
from crm_adapter.models import CrmCase, CrmCaseState, WriteBack, validation_summary

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
CASE_PATH = f"{API_PREFIX}/cases/{{crm_id}}"
CASE_STATES_PATH = f"{API_PREFIX}/case-states"
MAX_CASE_STATES_PAGE = 1000
MAX_CASE_STATES_PAGES = 1_000_000

#: ``invalid(delivery_id, error_text, raw_json)``: called for a feed item that is not a CrmCase.
InvalidCaseHandler = Callable[[str, str, bytes], object]

#: ``invalid(entry, error_text)``: a case-state entry that could not be read (``entry`` names it by
#: its ``crm_id`` or its position; ``error_text`` names fields, never values).
InvalidStateHandler = Callable[[str, str], object]


class CrmClient:
    """Talks to the CRM's REST API with a bearer token and explicit timeouts."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0,
                 max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not token:
            raise PermanentError("CRM token is empty", code="config")
        self._http = RestClient(base_url, system="CRM", auth=BearerToken(token), timeout=timeout,
                                max_answer_bytes=max_answer_bytes, transport=transport)

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
            body = self._http.get(f"{API_PREFIX}/cases", params=params).json_object()
        except Rejected as exc:
            raise PermanentError(f"CRM refused the change feed request ({exc.code})",
                                 code=exc.code) from exc
        items = body.get("cases")
        next_cursor = body.get("next_cursor")
        if not isinstance(items, list):
            raise UnreadableAnswer("CRM change feed has no 'cases' list", code="contract",
                                   field="cases")
        if not items:
            return [], None
        if not isinstance(next_cursor, str) or not next_cursor:
            raise UnreadableAnswer("CRM change feed returned cases without 'next_cursor'",
                                   code="contract", field="next_cursor")
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
        body = self._http.get(CASE_PATH, path={"crm_id": crm_id}).json_object()
        try:
            return CrmCase.model_validate(body)
        except ValidationError as exc:
            raise PermanentError(f"CRM case {crm_id} is not a valid case: "
                                 f"{validation_summary(exc)}", code="contract") from exc

    def iter_case_states(self, page_size: int = 200, *,
                         invalid: InvalidStateHandler | None = None) -> Iterator[CrmCaseState]:
        """Every case's CRM state (status, back-office reference and system the hub wrote back),
        in ascending ``crm_id`` order, read page by page (``GET /api/v1/case-states``); never the
        whole list in memory.

        ``page_size`` is 1 to 1000; each answer is capped at ``max_answer_bytes``. An entry that is
        not a readable state is reported to ``invalid`` (else logged by field name) and skipped:
        one bad entry does not stop reconciliation. An answer that breaks the contract (no list,
        a repeated cursor, ``crm_id`` going backwards, which would make a sorted merge wrong)
        raises ``UnreadableAnswer``/``PermanentError``; transport failures are classified as
        everywhere (``TransientError``...).
        """
        if not 1 <= page_size <= MAX_CASE_STATES_PAGE:
            raise PermanentError(f"CRM case-states page size must be 1 to {MAX_CASE_STATES_PAGE}",
                                 code="config")
        previous: str | None = None
        pages = cursor_pages(self._http, CASE_STATES_PATH, params={"limit": page_size},
                             items="case_states", max_pages=MAX_CASE_STATES_PAGES)
        try:
            for position, item in enumerate(pages):
                entry = _state_entry(item, position)
                try:
                    state = CrmCaseState.model_validate(item)
                except ValidationError as exc:
                    summary = validation_summary(exc)
                    log.warning("CRM case state %s is unreadable: %s", entry, _fields_only(summary))
                    if invalid is not None:
                        invalid(entry, summary)
                    continue
                if previous is not None and state.crm_id <= previous:
                    raise UnreadableAnswer(f"CRM case states are not in ascending crm_id order"
                                           f" at {entry}", code="contract", field="crm_id")
                previous = state.crm_id
                yield state
        except Rejected as exc:
            raise PermanentError(f"CRM refused the case-states request ({exc.code})",
                                 code=exc.code) from exc

    # -- writes --------------------------------------------------------------------------------

    def write_back(self, crm_id: str, update: WriteBack) -> None:
        """Report an outcome on a case; the CRM applies each ``idempotency_key`` once.

        A timeout after sending raises ``UnknownOutcomeError`` (a ``TransientError``): sending the
        same update again is safe because of the key.
        """
        body = update.model_dump(mode="json", exclude={"idempotency_key"})
        self._http.post(f"{CASE_PATH}/updates", path={"crm_id": crm_id}, json=body,
                        headers={"Idempotency-Key": update.idempotency_key})


def _feed_delivery_id(item: Any, cursor: str | None, position: int) -> str:
    """A stable id for an invalid feed item, so recording it twice is harmless."""
    if isinstance(item, dict) and isinstance(item.get("crm_id"), str):
        return f"pull:{item['crm_id']}:v{item.get('version')}"
    return f"pull:{cursor or 'start'}:{position}"


def _state_entry(item: Any, position: int) -> str:
    crm_id = item.get("crm_id") if isinstance(item, dict) else None
    if isinstance(crm_id, str) and 0 < len(crm_id) <= 64 and crm_id.isprintable():
        return f"case-states[{position}] {crm_id}"
    return f"case-states[{position}]"


def _fields_only(summary: str) -> str:
    return ", ".join(part.split(":", 1)[0] for part in summary.split("; "))
