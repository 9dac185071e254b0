"""Retention: personal data in the ledger is kept only as long as the council's policy allows.

Payloads of finished cases and commands (and unreadable inbound bodies) older than the retention
period are blanked; references, states, attempts and work items stay for audit. The period comes
from ``HUB_RETENTION_DAYS`` (default 90) or the caller.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from hub.ledger.db import session_scope
from hub.ledger.models import (Case, CaseState, Command, CommandState, InboundRejection, utcnow)

FINISHED = (CommandState.CONFIRMED.value, CommandState.REJECTED.value, CommandState.FAILED.value,
            CommandState.CANCELLED.value)


def retention_days() -> int:
    return int(os.environ.get("HUB_RETENTION_DAYS", "90"))


@dataclass
class PurgeStats:
    cases: int = 0
    commands: int = 0
    inbound: int = 0


def purge_personal_data(*, days: int | None = None, url: str | None = None) -> PurgeStats:
    """Blank payloads of finished work older than ``days``. Open work keeps its data."""
    cutoff = utcnow() - timedelta(days=retention_days() if days is None else days)
    now = utcnow()
    stats = PurgeStats()
    with session_scope(url) as session:
        unfinished = select(Command.case_id).where(Command.state.not_in(FINISHED))
        stats.commands = session.execute(
            update(Command).where(Command.state.in_(FINISHED), Command.updated_at < cutoff,
                                  Command.payload.is_not(None))
            .values(payload=None).execution_options(synchronize_session=False)).rowcount or 0
        stats.cases = session.execute(
            update(Case).where(Case.received_at < cutoff, Case.purged_at.is_(None),
                               Case.state != CaseState.RECEIVED.value, Case.id.not_in(unfinished))
            .values(payload=None, purged_at=now).execution_options(synchronize_session=False)).rowcount or 0
        stats.inbound = session.execute(
            update(InboundRejection).where(InboundRejection.received_at < cutoff,
                                           InboundRejection.purged_at.is_(None))
            .values(body=None, purged_at=now).execution_options(synchronize_session=False)).rowcount or 0
    return stats
