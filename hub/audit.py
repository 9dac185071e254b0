"""The audit trail: one row per action a person (or the hub on their behalf) takes.

Rows carry who, what, when, the target and the state before and after, with codes and references
only: never a comment's text, a payload or any other personal data.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.ledger.models import AuditEntry, utcnow

SYSTEM_ACTOR = "hub"


def record(session: Session, *, actor: str, action: str, target: str,
           work_item_id: int | None = None, command_id: int | None = None,
           state_before: str | None = None, state_after: str | None = None,
           detail: str | None = None) -> AuditEntry:
    """Add one audit row to the caller's transaction (it commits or rolls back with the action)."""
    entry = AuditEntry(at=utcnow(), actor=actor[:80], action=action[:40], target=target[:120],
                       work_item_id=work_item_id, command_id=command_id,
                       state_before=state_before[:40] if state_before else None,
                       state_after=state_after[:40] if state_after else None,
                       detail=detail[:500] if detail else None)
    session.add(entry)
    return entry


def trail_for_work_item(session: Session, item_id: int, command_ids: list[int]) -> list[AuditEntry]:
    """The item's own rows and those of its commands, oldest first."""
    query = select(AuditEntry).where(AuditEntry.work_item_id == item_id)
    if command_ids:
        query = select(AuditEntry).where((AuditEntry.work_item_id == item_id)
                                         | AuditEntry.command_id.in_(command_ids))
    return list(session.scalars(query.order_by(AuditEntry.at, AuditEntry.id)))


def recent(session: Session, *, target_prefix: str | None = None, limit: int = 100) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if target_prefix:
        query = query.where(AuditEntry.target.startswith(target_prefix))
    return list(session.scalars(query))


__all__ = ["SYSTEM_ACTOR", "record", "recent", "trail_for_work_item"]
