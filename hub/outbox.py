"""The write-back outbox: messages to the CRM, each delivered at least once and applied once.

The CRM applies each message once by its idempotency key (``hub-outbox-<id>``), so a retry after a
lost acknowledgement is safe.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, func, insert, or_, select
from sqlalchemy.orm import Session

from connectors.errors import PermanentError, Rejected, TransientError
from crm_adapter.models import WriteBack
from crm_adapter.rest import CrmClient
from hub.ledger import bulk
from hub.ledger.db import session_scope
from hub.ledger.models import Case, OutboxMessage, OutboxState, utcnow
from hub.workitems import OPERATIONS_TEAM, open_work_item

log = logging.getLogger(__name__)
MAX_WRITEBACK_ATTEMPTS = 8
#: How many dedupe keys one ``IN (...)`` look-up carries.
_CHUNK = 500


def message_row(*, dedupe_key: str, case: Case, kind: str, status: str, note: str,
                system: str | None, command_id: int | None = None,
                backoffice_reference: str | None = None) -> dict[str, Any]:
    """The outbox row for one write-back (for ``enqueue_many``)."""
    return {"dedupe_key": dedupe_key, "case_id": case.id, "command_id": command_id,
            "crm_id": case.crm_id, "system": system, "kind": kind, "status": status,
            "note": note[:2000], "backoffice_reference": backoffice_reference,
            "state": OutboxState.PENDING.value, "attempts": 0, "created_at": utcnow()}


def enqueue(session: Session, *, dedupe_key: str, case: Case, kind: str, status: str, note: str,
            system: str | None, command_id: int | None = None,
            backoffice_reference: str | None = None) -> OutboxMessage | None:
    """Queue one write-back; a repeat of ``dedupe_key`` queues nothing."""
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)):
        return None
    message = OutboxMessage(**message_row(dedupe_key=dedupe_key, case=case, kind=kind,
                                          status=status, note=note, system=system,
                                          command_id=command_id,
                                          backoffice_reference=backoffice_reference))
    session.add(message)
    session.flush()
    return message


def enqueue_many(session: Session, messages: Sequence[dict[str, Any]]) -> int:
    """Queue many write-backs (rows from ``message_row``) in one statement; a dedupe key already
    queued (or repeated in ``messages``) queues nothing. Returns how many were queued."""
    return insert_new(session, OutboxMessage.__table__, messages)


def insert_new(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert the rows whose ``dedupe_key`` is new (the first of a repeated key wins); returns how
    many. PostgreSQL and SQLite: one ``INSERT ... ON CONFLICT DO NOTHING`` (race-free); other
    backends: a look-up, then an insert."""
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["dedupe_key"], row)
    if not unique:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        return len(bulk.insert_new_returning(session, table, list(unique.values()),
                                             conflict=("dedupe_key",), returning=("id",)))
    fresh = new_by_dedupe_key(session, table.c.dedupe_key, list(unique.values()))
    if fresh:
        session.execute(insert(table), fresh)
    return len(fresh)


def new_by_dedupe_key(session: Session, column: Any,
                      rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` whose ``dedupe_key`` is neither stored in ``column`` nor repeated earlier in
    ``rows`` (the first of a repeated key wins), looked up ``_CHUNK`` keys at a time."""
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["dedupe_key"], row)
    keys = list(unique)
    for start in range(0, len(keys), _CHUNK):
        for known in session.scalars(select(column).where(column.in_(keys[start:start + _CHUNK]))):
            unique.pop(known, None)
    return list(unique.values())


def _due(now: datetime):  # type: ignore[no-untyped-def]
    return and_(OutboxMessage.state == OutboxState.PENDING.value,
                or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now))


@dataclass
class DeliveryStats:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


WRITEBACK_CONCURRENCY_ENV = "HUB_WRITEBACK_CONCURRENCY"


def writeback_concurrency() -> int:
    """``HUB_WRITEBACK_CONCURRENCY`` (4): CRM calls in flight at once when delivering on
    PostgreSQL (one at a time elsewhere). Messages of one CRM case are always sent in order."""
    return max(1, int(os.environ.get(WRITEBACK_CONCURRENCY_ENV, "4")))


def deliver_pending(client: CrmClient, *, limit: int = 500, url: str | None = None,
                    system: str | None = None, stop_on_transient: bool = False,
                    concurrency: int | None = None) -> DeliveryStats:
    """Send pending write-backs to the CRM (only ``system``'s when given), oldest first.
    Raises PermanentError after recording. ``stop_on_transient``: stop at the first message the
    CRM did not answer, leaving the rest pending (for callers that must not wait on a slow CRM).

    On PostgreSQL up to ``concurrency`` (default ``writeback_concurrency()``) messages are in
    flight at once, each in its own transaction holding its row (``SKIP LOCKED``), the messages of
    one CRM case one after the other in id order; the CRM's round trip is most of a write-back's
    time, so this overlaps them. Elsewhere (SQLite: one writer) one at a time."""
    stats = DeliveryStats()
    with session_scope(url) as session:
        now = utcnow()
        query = select(OutboxMessage.id, OutboxMessage.crm_id).where(_due(now))
        if system is not None:
            query = query.where(OutboxMessage.system == system)
        rows = session.execute(query.order_by(OutboxMessage.id).limit(limit)).all()
        postgresql = session.get_bind().dialect.name == "postgresql"
    lanes: dict[str, list[int]] = {}
    for message_id, crm_id in rows:
        lanes.setdefault(crm_id, []).append(message_id)
    workers = min(len(lanes), concurrency or writeback_concurrency()) if postgresql else 1
    stop = threading.Event()
    lock = threading.Lock()
    permanent: list[PermanentError] = []

    def deliver(ids: list[int]) -> None:
        for message_id in ids:
            if stop.is_set():
                return
            outcome = _deliver_one(client, message_id, url, stats, lock)
            if isinstance(outcome, PermanentError):
                with lock:
                    permanent.append(outcome)
                stop.set()
                return
            if outcome == "transient":
                if stop_on_transient:
                    stop.set()
                return   # this case's later messages wait: they must follow this one

    if workers <= 1:
        for ids in lanes.values():
            deliver(ids)
            if stop.is_set():
                break
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="writeback") as pool:
            for future in [pool.submit(deliver, ids) for ids in lanes.values()]:
                future.result()
    log.info("write-back: %d sent, %d to retry, %d failed", stats.sent, stats.retry, stats.failed)
    if permanent:
        raise PermanentError(f"CRM write-back stopped: {permanent[0].message}") from permanent[0]
    return stats


def _deliver_one(client: CrmClient, message_id: int, url: str | None, stats: DeliveryStats,
                 lock: threading.Lock) -> str | PermanentError:
    """Send one message in a transaction of its own: "sent", "skipped", "transient", "failed",
    or the PermanentError that stops delivery (recorded on the message)."""
    with session_scope(url) as session:
        # Two deliverers at once (a dispatch task and the write-back DAG): on PostgreSQL the
        # second skips a message the first is sending. Elsewhere the CRM's key dedupes it.
        skip_locked = session.get_bind().dialect.name == "postgresql"
        message = session.get(OutboxMessage, message_id,
                              with_for_update={"skip_locked": True} if skip_locked else None)
        if message is None or message.state != OutboxState.PENDING.value:
            return "skipped"
        update = WriteBack(idempotency_key=f"hub-outbox-{message.id}", status=message.status,
                           note=message.note, backoffice_reference=message.backoffice_reference,
                           backoffice_system=message.system)
        message.attempts += 1
        try:
            client.write_back(message.crm_id, update)
        except TransientError as exc:
            with lock:
                _retry_later(message, exc, stats)
            if message.state == OutboxState.FAILED.value:
                _writeback_work_item(session, message)
            return "transient"
        except Rejected as exc:
            message.state = OutboxState.FAILED.value
            message.last_error = f"Rejected: {exc.message}"[:500]
            with lock:
                stats.failed += 1
            _writeback_work_item(session, message)
            return "failed"
        except PermanentError as exc:
            message.last_error = f"PermanentError: {exc.message}"[:500]
            return exc
        message.state = OutboxState.SENT.value
        message.sent_at = utcnow()
        message.last_error = None
        with lock:
            stats.sent += 1
        return "sent"


def _retry_later(message: OutboxMessage, exc: TransientError, stats: DeliveryStats) -> None:
    message.last_error = f"TransientError: {exc.message}"[:500]
    if message.attempts >= MAX_WRITEBACK_ATTEMPTS:
        message.state = OutboxState.FAILED.value
        stats.failed += 1
        return
    message.next_attempt_at = utcnow() + timedelta(seconds=min(3600, 30 * 2 ** message.attempts))
    stats.retry += 1


def _writeback_work_item(session: Session, message: OutboxMessage) -> None:
    open_work_item(session, dedupe_key=f"writeback:{message.id}", kind="writeback_failed",
                   team=OPERATIONS_TEAM, system=message.system, case_id=message.case_id,
                   command_id=message.command_id,
                   reason=f"Could not write the outcome back to CRM case {message.crm_id}: "
                          f"{message.last_error}")


def due_count(*, system: str | None = None, url: str | None = None) -> int:
    """Write-backs pending and due now (only ``system``'s when given)."""
    with session_scope(url) as session:
        query = select(func.count(OutboxMessage.id)).where(_due(utcnow()))
        if system is not None:
            query = query.where(OutboxMessage.system == system)
        return int(session.scalar(query) or 0)
