"""Dispatch: send pending commands to a back-office system in batches, record every attempt.

A batch is claimed atomically (state ``sending`` + a claim token), sent through the connector, and each
outcome recorded. A task that dies mid-batch leaves commands ``sending``; once the lease expires they
are claimed again with ``maybe_sent`` so the connector looks before it creates.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, insert, or_, select, update
from sqlalchemy.orm import Session, load_only, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from connectors.base import Command as ConnectorCommand
from connectors.base import Connector, Outcome, OutcomeStatus
from connectors.errors import PermanentError
from hub import outcomes as settle
from hub.ledger import bulk
from hub.ledger.db import session_scope
from hub.ledger.models import Attempt, Case, Command, CommandState, as_utc, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=15)
#: Each claimed command's case, loaded with the command (one query per batch) and only its CRM
#: id: the case's payload (personal data, and the bulk of the row) is not needed to send or settle.
_CASE_REFERENCE = selectinload(Command.case).load_only(Case.crm_id)
MAX_ATTEMPTS = 8
DEFAULT_RESPONSE_DUE = timedelta(hours=24)


def _claimable(system: str, now: datetime):  # type: ignore[no-untyped-def]
    return and_(Command.system == system, or_(
        and_(Command.state == CommandState.PENDING.value,
             or_(Command.next_attempt_at.is_(None), Command.next_attempt_at <= now)),
        and_(Command.state == CommandState.SENDING.value, Command.claimed_at < now - LEASE)))


def pending_count(system: str, *, url: str | None = None) -> int:
    """Commands ready to send now (including stale claims)."""
    with session_scope(url) as session:
        return int(session.scalar(select(func.count(Command.id)).where(_claimable(system, utcnow())))
                   or 0)


def plan_batches(system: str, *, batch_size: int, max_batches: int, url: str | None = None) -> list[int]:
    """Batch numbers for the dispatch task group: enough to cover what is pending now."""
    count = pending_count(system, url=url)
    return list(range(min(max_batches, -(-count // batch_size))))


def claim_batch(session: Session, system: str, limit: int) -> tuple[str, list[Command]]:
    """Move up to ``limit`` ready commands to ``sending`` under a fresh claim token."""
    now = utcnow()
    token = uuid.uuid4().hex
    ids_query = select(Command.id).where(_claimable(system, now)).order_by(Command.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        return token, _claim_returning(session, system, token, now, ids_query)
    ids = list(session.scalars(ids_query))
    if not ids:
        return token, []
    stale = and_(Command.state == CommandState.SENDING.value, Command.claimed_at < now - LEASE)
    session.execute(update(Command).where(Command.id.in_(ids), stale)
                    .values(maybe_sent=True).execution_options(synchronize_session=False))
    session.execute(update(Command).where(Command.id.in_(ids), _claimable(system, now))
                    .values(state=CommandState.SENDING.value, claim_token=token, claimed_at=now,
                            attempts=Command.attempts + 1, updated_at=now)
                    .execution_options(synchronize_session=False))
    claimed = list(session.scalars(select(Command).where(Command.claim_token == token)
                                   .options(_CASE_REFERENCE).order_by(Command.id)))
    return token, claimed


def _claim_returning(session: Session, system: str, token: str, now: datetime,
                     ids_query: Select[tuple[int]]) -> list[Command]:
    """PostgreSQL: the claim in one ``WITH picked AS MATERIALIZED (SELECT ... FOR UPDATE SKIP
    LOCKED) UPDATE ... FROM picked RETURNING``, then the cases' CRM ids in one query. A stale claim taken over is marked
    ``maybe_sent`` in the same statement (SET reads the row as it was)."""
    stale = and_(Command.state == CommandState.SENDING.value, Command.claimed_at < now - LEASE)
    # A materialized CTE: the locked ids are picked once (an IN (subquery) may be re-run by the
    # planner and pick more than ``limit``).
    picked = ids_query.with_for_update(skip_locked=True).cte("picked").prefix_with(
        "MATERIALIZED")
    claimed = sorted(session.scalars(
        update(Command).where(Command.id == picked.c.id, _claimable(system, now))
        .values(state=CommandState.SENDING.value, claim_token=token, claimed_at=now,
                attempts=Command.attempts + 1, updated_at=now,
                maybe_sent=or_(Command.maybe_sent, stale))
        .returning(Command).execution_options(synchronize_session=False,
                                              populate_existing=True)),
        key=lambda c: c.id)
    if claimed:
        cases = {case.id: case for case in session.scalars(
            select(Case).options(load_only(Case.crm_id))
            .where(Case.id.in_({c.case_id for c in claimed})))}
        for command in claimed:   # loaded, not changed
            set_committed_value(command, "case", cases[command.case_id])
    return claimed


@dataclass
class BatchStats:
    claimed: int = 0
    confirmed: int = 0
    rejected: int = 0
    awaiting: int = 0
    retry: int = 0
    failed: int = 0
    by_error: dict[str, int] = field(default_factory=dict)

    def add(self, other: "BatchStats") -> None:
        for name in ("claimed", "confirmed", "rejected", "awaiting", "retry", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, value in other.by_error.items():
            self.by_error[key] = self.by_error.get(key, 0) + value


def dispatch_batch(connector: Connector, system: str, *, batch_size: int = 100,
                   url: str | None = None, run_id: str | None = None) -> BatchStats:
    """Claim one batch for ``system``, submit it, record outcomes. Fails on a PermanentError."""
    stats = BatchStats()
    with session_scope(url) as session:
        token, claimed = claim_batch(session, system, batch_size)
        to_send = [ConnectorCommand(key=c.key, system=c.system, operation=c.operation,
                                    payload=c.payload or {}, case_ref=c.case.crm_id,
                                    maybe_sent=c.maybe_sent or c.attempts > 1)
                   for c in claimed]
    stats.claimed = len(to_send)
    if not to_send:
        return stats
    started = utcnow()
    try:
        results = connector.submit(to_send)
    except Exception:
        _release(token, url)
        raise
    if len(results) != len(to_send):
        _release(token, url)
        raise PermanentError(f"{type(connector).__name__} returned {len(results)} outcomes "
                             f"for {len(to_send)} commands")
    permanent = _record(token, to_send, results, started, stats, url, run_id)
    log.info("%s batch: %d claimed, %d confirmed, %d rejected, %d awaiting, %d to retry, %d failed",
             system, stats.claimed, stats.confirmed, stats.rejected, stats.awaiting, stats.retry,
             stats.failed)
    if permanent is not None:
        raise PermanentError(f"{system}: {permanent.message or permanent.error_class}; "
                             "commands left pending until the connection is fixed",
                             code=permanent.code)
    return stats


def _release(token: str, url: str | None) -> None:
    """Return a batch to pending after an unexpected error (outcome unknown: look before creating)."""
    with session_scope(url) as session:
        session.execute(update(Command).where(Command.claim_token == token,
                                              Command.state == CommandState.SENDING.value)
                        .values(state=CommandState.PENDING.value, maybe_sent=True, claim_token=None)
                        .execution_options(synchronize_session=False))


def _record(token: str, sent: Sequence[ConnectorCommand], results: Sequence[Outcome],
            started: datetime, stats: BatchStats, url: str | None,
            run_id: str | None) -> Outcome | None:
    """Settle a batch in a few statements: the claimed rows (and their cases) are read in two
    queries, the attempts inserted in one, the command rows written together, and the CRM notes
    and work items looked up and inserted together (``outcomes.Settlement``)."""
    permanent: Outcome | None = None
    with session_scope(url) as session:
        rows = {r.key: r for r in _claimed_rows(session, token)}
        settlement = settle.Settlement(session)
        attempts: list[dict[str, Any]] = []
        settled: list[_Row] = []
        finished = utcnow()
        for command, outcome in zip(sent, results, strict=True):
            row = rows.get(command.key)
            if row is None or row.state != CommandState.SENDING.value:
                continue   # reclaimed by another worker after our lease ran out
            attempts.append({"command_id": row.id, "started_at": started, "finished_at": finished,
                             "outcome": outcome.status.value, "error_class": outcome.error_class,
                             "code": outcome.code,
                             "message": (outcome.message or "")[:500] or None, "run_id": run_id})
            row.claim_token = None
            settled.append(row)
            if outcome.error_class:
                stats.by_error[outcome.error_class] = stats.by_error.get(outcome.error_class, 0) + 1
            _apply(settlement, row, outcome, stats)
            if outcome.error_class == "PermanentError" and permanent is None:
                permanent = outcome
        _write_settled(session, settled)
        if attempts:
            session.execute(insert(Attempt.__table__), attempts)
        settlement.flush()
    return permanent


#: Command columns a settlement may change (each row writes all of them, so one UPDATE serves all).
_SETTLED_COLUMNS = ("state", "reference", "message", "held", "maybe_sent", "attempts",
                    "next_attempt_at", "due_by", "claim_token", "settled_at")
_READ_COLUMNS = ("id", "key", "system", "operation", "case_id", *_SETTLED_COLUMNS)


@dataclass
class _CaseRef:
    id: int
    crm_id: str


@dataclass
class _Row:
    """A claimed command as settlement sees it: the attributes ``outcomes.Settlement`` reads and
    changes, as plain values (no ORM bookkeeping; written back in one UPDATE)."""

    id: int
    key: str
    system: str
    operation: str
    case_id: int
    state: str
    reference: str | None
    message: str | None
    held: bool
    maybe_sent: bool
    attempts: int
    next_attempt_at: datetime | None
    due_by: datetime | None
    claim_token: str | None
    settled_at: datetime | None
    case: _CaseRef


def _claimed_rows(session: Session, token: str) -> list[_Row]:
    table = Command.__table__
    query = (select(*(table.c[name] for name in _READ_COLUMNS), Case.__table__.c.crm_id)
             .join(Case.__table__, Case.__table__.c.id == table.c.case_id)
             .where(table.c.claim_token == token))
    return [_Row(*row[:-1], case=_CaseRef(row.case_id, row.crm_id))
            for row in session.execute(query)]


def _write_settled(session: Session, rows: Sequence[_Row]) -> None:
    """Write the settled rows in one statement (``bulk.update_by_id``)."""
    now = utcnow()
    bulk.update_by_id(session, Command.__table__,
                      [{"id": row.id, "updated_at": now,
                        **{name: getattr(row, name) for name in _SETTLED_COLUMNS}} for row in rows],
                      (*_SETTLED_COLUMNS, "updated_at"))


def _apply(settlement: settle.Settlement, row: _Row, outcome: Outcome, stats: BatchStats) -> None:
    if outcome.status is OutcomeStatus.CONFIRMED:
        extra = "; ".join(f"{k} {v}" for k, v in sorted(outcome.details.items())) or None
        if outcome.warnings:
            extra = "; ".join(filter(None, [extra, *outcome.warnings]))
        settlement.confirm(row, reference=outcome.reference, note_extra=extra)
        stats.confirmed += 1
    elif outcome.status is OutcomeStatus.REJECTED:
        settlement.reject(row, reason=outcome.message or "no reason given", held=outcome.held,
                          reference=outcome.reference)
        stats.rejected += 1
    elif outcome.status is OutcomeStatus.AWAITING:
        row.state = CommandState.AWAITING.value
        row.reference = outcome.reference
        row.due_by = _due_by(outcome)
        stats.awaiting += 1
    else:
        # Unknown outcome, or a stop whose cause may have come after sending (an unsafe answer,
        # a defect while reading): look the key up before creating again (one read, harmless).
        row.maybe_sent = row.maybe_sent or outcome.error_class in ("UnknownOutcomeError",
                                                                   "PermanentError")
        if outcome.error_class == "PermanentError":
            row.state = CommandState.PENDING.value
            row.attempts = max(0, row.attempts - 1)   # not the record's fault: do not use up tries
            stats.retry += 1
        elif row.attempts >= MAX_ATTEMPTS:
            settlement.fail(row, reason=outcome.message or outcome.error_class or "unknown")
            stats.failed += 1
        else:
            row.state = CommandState.PENDING.value
            row.next_attempt_at = utcnow() + timedelta(seconds=min(3600, 15 * 2 ** row.attempts))
            stats.retry += 1


def _due_by(outcome: Outcome) -> datetime:
    """When an AWAITING command's answer is due (the connector may say; else a default)."""
    due = outcome.details.get("due_by") if outcome.details else None
    if isinstance(due, str):
        due = datetime.fromisoformat(due)
    if isinstance(due, datetime):
        return as_utc(due)
    return utcnow() + DEFAULT_RESPONSE_DUE


def dispatch_all(connector: Connector, system: str, *, batch_size: int = 100, max_batches: int = 50,
                 url: str | None = None, run_id: str | None = None) -> BatchStats:
    """Send batches until nothing is ready (or ``max_batches``)."""
    total = BatchStats()
    for _ in range(max_batches):
        stats = dispatch_batch(connector, system, batch_size=batch_size, url=url, run_id=run_id)
        total.add(stats)
        if stats.claimed < batch_size:
            break
    return total
