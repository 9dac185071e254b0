"""Operations figures per back-office system, from the ledger: what the operations page and
``/metrics`` show (the same numbers, computed once here).

- backlog: commands ``pending``, ``sending`` and ``awaiting`` an answer, and the oldest pending one's age;
- throughput: commands confirmed in the last hour, and per hour over the last 24 hours;
- failure rate: the share of send attempts in the last 24 hours that did not succeed
  (a retry outcome or a refusal);
- latency: p50 and p95 of the time from the hub's receipt of the CRM case to the back office's
  confirmation, over commands confirmed in the last 7 days;
- recent failures by error class (24 hours), failed commands waiting for a replay, and the CRM
  write-back backlog.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors import catalog
from hub.ledger.models import (Attempt, Case, Command, CommandState, OutboxMessage, OutboxState,
                               WorkItem, utcnow)

FAILURE_WINDOW = timedelta(hours=24)
LATENCY_WINDOW = timedelta(days=7)
SUCCESS_OUTCOMES = ("confirmed", "awaiting")


@dataclass
class SystemFigures:
    system: str
    pending: int = 0
    sending: int = 0
    awaiting: int = 0
    failed: int = 0
    oldest_pending_seconds: float | None = None
    confirmed_last_hour: int = 0
    confirmed_per_hour: list[int] = field(default_factory=lambda: [0] * 24)
    """Oldest hour first; the last entry is the hour up to now."""
    attempts_24h: int = 0
    failed_attempts_24h: int = 0
    latency_p50_seconds: float | None = None
    latency_p95_seconds: float | None = None
    latency_samples: int = 0

    @property
    def failure_rate(self) -> float | None:
        return self.failed_attempts_24h / self.attempts_24h if self.attempts_24h else None

    @property
    def throughput_per_hour_24h(self) -> float:
        return sum(self.confirmed_per_hour) / 24

    @property
    def backlog(self) -> int:
        return self.pending + self.sending + self.awaiting


@dataclass
class FailureGroup:
    system: str
    error_class: str
    count: int
    last_at: datetime
    last_code: str | None
    last_message: str | None
    last_run_id: str | None


@dataclass
class FailedCommand:
    id: int
    system: str
    operation: str
    key: str
    crm_id: str
    attempts: int
    message: str | None
    failed_at: datetime | None
    work_item_id: int | None


@dataclass
class OperationsFigures:
    at: datetime
    systems: dict[str, SystemFigures]
    failures: list[FailureGroup]
    failed_commands: list[FailedCommand]
    writeback_pending: int
    writeback_failed: int
    open_work_items: int


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def collect(session: Session, now: datetime | None = None) -> OperationsFigures:
    now = now or utcnow()
    systems: dict[str, SystemFigures] = {s: SystemFigures(s) for s in catalog.SYSTEMS}

    def fig(system: str) -> SystemFigures:
        return systems.setdefault(system, SystemFigures(system))

    for system, state, count in session.execute(
            select(Command.system, Command.state, func.count())
            .where(Command.state.in_([CommandState.PENDING.value, CommandState.SENDING.value,
                                      CommandState.AWAITING.value, CommandState.FAILED.value]))
            .group_by(Command.system, Command.state)):
        setattr(fig(system), state, int(count))
    for system, oldest in session.execute(
            select(Command.system, func.min(Command.created_at))
            .where(Command.state == CommandState.PENDING.value).group_by(Command.system)):
        if oldest is not None:
            fig(system).oldest_pending_seconds = max(0.0, (now - _aware(oldest)).total_seconds())
    day_ago = now - timedelta(hours=24)
    for system, settled in session.execute(
            select(Command.system, Command.settled_at)
            .where(Command.state == CommandState.CONFIRMED.value, Command.settled_at >= day_ago)):
        hours_ago = int((now - _aware(settled)).total_seconds() // 3600)
        if 0 <= hours_ago < 24:
            fig(system).confirmed_per_hour[23 - hours_ago] += 1
            if hours_ago == 0:
                fig(system).confirmed_last_hour += 1
    for system, outcome, count in session.execute(
            select(Command.system, Attempt.outcome, func.count())
            .join(Command, Command.id == Attempt.command_id)
            .where(Attempt.started_at >= now - FAILURE_WINDOW)
            .group_by(Command.system, Attempt.outcome)):
        fig(system).attempts_24h += int(count)
        if outcome not in SUCCESS_OUTCOMES:
            fig(system).failed_attempts_24h += int(count)
    latencies: dict[str, list[float]] = defaultdict(list)
    for system, settled, received in session.execute(
            select(Command.system, Command.settled_at, Case.received_at)
            .join(Case, Case.id == Command.case_id)
            .where(Command.state == CommandState.CONFIRMED.value,
                   Command.settled_at >= now - LATENCY_WINDOW)):
        latencies[system].append(max(0.0, (_aware(settled) - _aware(received)).total_seconds()))
    for system, values in latencies.items():
        f = fig(system)
        f.latency_p50_seconds = percentile(values, 0.50)
        f.latency_p95_seconds = percentile(values, 0.95)
        f.latency_samples = len(values)
    return OperationsFigures(
        at=now, systems=dict(sorted(systems.items())), failures=_failures(session, now),
        failed_commands=failed_commands(session),
        writeback_pending=_count(session, OutboxMessage.state == OutboxState.PENDING.value),
        writeback_failed=_count(session, OutboxMessage.state == OutboxState.FAILED.value),
        open_work_items=int(session.scalar(select(func.count(WorkItem.id)).where(
            WorkItem.state.in_(["open", "in_progress"]))) or 0))


def _count(session: Session, condition) -> int:  # type: ignore[no-untyped-def]
    return int(session.scalar(select(func.count(OutboxMessage.id)).where(condition)) or 0)


def _aware(value: datetime) -> datetime:
    from hub.ledger.models import as_utc

    return as_utc(value)


def _failures(session: Session, now: datetime) -> list[FailureGroup]:
    groups: dict[tuple[str, str], FailureGroup] = {}
    rows = session.execute(
        select(Command.system, Attempt.error_class, Attempt.started_at, Attempt.code,
               Attempt.message, Attempt.run_id)
        .join(Command, Command.id == Attempt.command_id)
        .where(Attempt.started_at >= now - FAILURE_WINDOW, Attempt.error_class.is_not(None))
        .order_by(Attempt.started_at.desc(), Attempt.id.desc()).limit(5000))
    for system, error_class, at, code, message, run_id in rows:
        key = (system, error_class)
        if key not in groups:
            groups[key] = FailureGroup(system, error_class, 0, _aware(at), code, message, run_id)
        groups[key].count += 1
    return sorted(groups.values(), key=lambda g: (-g.count, g.system, g.error_class))


def failed_commands(session: Session, *, ids: list[int] | None = None,
                    limit: int = 200) -> list[FailedCommand]:
    """Commands that gave up after repeated transient failures (what replay can send again)."""
    query = (select(Command, Case.crm_id, WorkItem.id)
             .join(Case, Case.id == Command.case_id)
             .outerjoin(WorkItem, (WorkItem.command_id == Command.id)
                        & (WorkItem.kind == "delivery_failed"))
             .where(Command.state == CommandState.FAILED.value)
             .order_by(Command.settled_at, Command.id).limit(limit))
    if ids is not None:
        query = query.where(Command.id.in_(ids))
    return [FailedCommand(id=c.id, system=c.system, operation=c.operation, key=c.key, crm_id=crm_id,
                          attempts=c.attempts, message=c.message,
                          failed_at=_aware(c.settled_at) if c.settled_at else None,
                          work_item_id=item_id)
            for c, crm_id, item_id in session.execute(query)]
