"""Scheduled pull of the CRM change feed: the backstop that catches every case a push missed."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from crm_adapter.models import CrmCase
from crm_adapter.rest import CrmClient, InvalidCaseHandler

log = logging.getLogger(__name__)


class CursorStore(Protocol):
    """Where the feed position is kept between runs (a ledger table in the hub)."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...


def pull_cases(client: CrmClient, cursors: CursorStore, record: Callable[[CrmCase], object], *,
               cursor_name: str = "crm_pull", page_size: int = 200, max_pages: int = 100,
               record_invalid: InvalidCaseHandler | None = None) -> int:
    """Record every case changed since the stored cursor; returns how many were recorded.

    ``record`` must be idempotent on ``(crm_id, version)``: after a crash between recording a page
    and storing its cursor, that page is read again. The cursor is stored after each page, so a
    long backlog resumes where it stopped; at most ``max_pages`` pages are read per call. Items
    that are not valid cases go to ``record_invalid`` when given (otherwise the pull stops with a
    ``PermanentError`` and the cursor stays before them: nothing is dropped).
    """
    cursor = cursors.get(cursor_name)
    recorded = 0
    for _ in range(max_pages):
        cases, next_cursor = client.cases_changed_since(cursor, page_size, invalid=record_invalid)
        for case in cases:
            record(case)
            recorded += 1
        if next_cursor is None:
            break
        cursors.set(cursor_name, next_cursor)
        cursor = next_cursor
    else:
        log.info("CRM pull %s stopped after %d pages; the rest follows next run",
                 cursor_name, max_pages)
    log.info("CRM pull %s recorded %d case versions", cursor_name, recorded)
    return recorded


class MemoryCursorStore:
    """A ``CursorStore`` in a dict (tests and the demo)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value
