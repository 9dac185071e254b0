"""Status sync: bring later back-office changes into the ledger and write each back to the CRM once.

Also settles commands left AWAITING (file exchange) when the back office's answer arrives, and opens a
work item for any answer that is overdue.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.base import Connector, OutcomeStatus, Update
from hub import outbox
from hub import outcomes as settle
from hub.ledger.db import session_scope
from hub.ledger.models import BackofficeUpdate, Command, CommandState, Cursor, as_utc, utcnow
from hub.workitems import open_work_item

log = logging.getLogger(__name__)
#: How far back the first sync of a system looks when it has no cursor and no commands.
FIRST_SYNC_LOOKBACK = timedelta(days=7)
#: Each sync re-reads this far behind its cursor: a back-office change committed late (its
#: timestamp older than one already fetched) is still found. Repeats are dropped by update id.
OVERLAP = timedelta(seconds=int(os.environ.get("HUB_SYNC_OVERLAP_SECONDS", "300")))


@dataclass
class SyncStats:
    fetched: int = 0
    applied: int = 0
    duplicates: int = 0
    unmatched: int = 0
    resolved: int = 0
    overdue: int = 0


def cursor_name(system: str) -> str:
    return f"status_sync:{system}"


def _since(session: Session, system: str) -> datetime:
    row = session.get(Cursor, cursor_name(system))
    if row is not None:
        return datetime.fromisoformat(row.value) - OVERLAP
    first = session.scalar(select(func.min(Command.created_at)).where(Command.system == system))
    return (first - timedelta(minutes=5)) if first else utcnow() - FIRST_SYNC_LOOKBACK


def sync_system(connector: Connector, system: str, *, url: str | None = None) -> SyncStats:
    """Fetch changes since the stored cursor, apply each once, advance the cursor."""
    stats = SyncStats()
    with session_scope(url) as session:
        since = _since(session, system)
    updates = connector.fetch_updates(since)
    stats.fetched = len(updates)
    newest = since
    for upd in sorted(updates, key=lambda u: u.changed_at):
        try:
            with session_scope(url) as session:
                _apply(session, system, upd, stats)
        except IntegrityError:
            stats.duplicates += 1   # applied by a concurrent run
        newest = max(newest, as_utc(upd.changed_at))
    with session_scope(url) as session:
        row = session.get(Cursor, cursor_name(system))
        if row is None:
            session.add(Cursor(name=cursor_name(system), value=newest.isoformat(), updated_at=utcnow()))
        elif newest > datetime.fromisoformat(row.value):
            row.value = newest.isoformat()
    stats.overdue = open_overdue(system, url=url)
    log.info("%s status sync: %d fetched, %d applied, %d already seen, %d not ours, %d answers, "
             "%d overdue", system, stats.fetched, stats.applied, stats.duplicates, stats.unmatched,
             stats.resolved, stats.overdue)
    return stats


def _find_command(session: Session, system: str, upd: Update) -> Command | None:
    if upd.key:
        found = session.scalar(select(Command).where(Command.key == upd.key))
        if found is not None:
            return found
    return session.scalar(select(Command).where(Command.system == system,
                                                Command.reference == upd.reference)
                          .order_by(Command.id.desc()).limit(1))


def _apply(session: Session, system: str, upd: Update, stats: SyncStats) -> None:
    if session.scalar(select(BackofficeUpdate.id).where(BackofficeUpdate.system == system,
                                                        BackofficeUpdate.update_id == upd.update_id)):
        stats.duplicates += 1
        return
    command = _find_command(session, system, upd)
    session.add(BackofficeUpdate(system=system, update_id=upd.update_id[:160],
                                 reference=upd.reference[:120], status=upd.status[:40],
                                 command_id=command.id if command else None,
                                 changed_at=as_utc(upd.changed_at)))
    session.flush()
    if command is None:
        stats.unmatched += 1   # a record the hub did not create: not ours to report
        return
    if upd.resolves is not None:
        if command.state in (CommandState.AWAITING.value, CommandState.SENDING.value,
                             CommandState.PENDING.value):
            if upd.resolves is OutcomeStatus.CONFIRMED:
                settle.confirm(session, command, reference=upd.reference)
            else:
                settle.reject(session, command, reason=upd.message or upd.status,
                              reference=upd.reference)
            stats.resolved += 1
        return
    status = "completed" if (upd.crm_status or "").lower() == "closed" else "in_progress"
    note = f"{command.system}: back-office status is now {upd.status}"
    if upd.note:
        note += f". {upd.note}"
    outbox.enqueue(session, dedupe_key=f"update:{system}:{upd.update_id}"[:160], case=command.case,
                   kind="update", status=status, note=note, system=system, command_id=command.id,
                   backoffice_reference=upd.reference)
    stats.applied += 1


def open_overdue(system: str, *, url: str | None = None, now: datetime | None = None) -> int:
    """A work item for each command whose answer is past due. Returns how many are overdue."""
    now = now or utcnow()
    with session_scope(url) as session:
        late = list(session.scalars(select(Command).where(
            Command.system == system, Command.state == CommandState.AWAITING.value,
            Command.due_by.is_not(None), Command.due_by < now)))
        for command in late:
            open_work_item(session, dedupe_key=f"command:{command.id}:response_overdue",
                           kind="response_overdue", system=system, case_id=command.case_id,
                           command_id=command.id,
                           reason=f"No answer from the back office for {command.operation} "
                                  f"(CRM case {command.case.crm_id}, delivered in "
                                  f"{command.reference}); it was due {command.due_by:%Y-%m-%d %H:%M} UTC")
        return len(late)
