"""Work items: what a machine could not finish, for the owning back-office team."""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors import catalog
from hub.ledger.models import WorkItem, WorkItemState, utcnow

OPERATIONS_TEAM = "operations"


def team_for(system: str | None) -> str:
    """The team that owns a system's work items (operations when the system is unknown)."""
    if system and system in catalog.SYSTEMS:
        return catalog.entry(system).team
    return OPERATIONS_TEAM


def open_work_item(session: Session, *, dedupe_key: str, kind: str, reason: str,
                   system: str | None = None, team: str | None = None, case_id: int | None = None,
                   command_id: int | None = None) -> WorkItem:
    """Open a work item once per ``dedupe_key``; a repeat returns the existing one."""
    existing = session.scalar(select(WorkItem).where(WorkItem.dedupe_key == dedupe_key))
    if existing is not None:
        return existing
    item = WorkItem(dedupe_key=dedupe_key, kind=kind, reason=reason, system=system,
                    team=team or team_for(system), case_id=case_id, command_id=command_id,
                    state=WorkItemState.OPEN.value, created_at=utcnow())
    session.add(item)
    session.flush()
    return item


def list_work_items(session: Session, *, team: str | None = None,
                    states: Sequence[str] = (WorkItemState.OPEN.value, WorkItemState.IN_PROGRESS.value),
                    limit: int = 200) -> list[WorkItem]:
    query = select(WorkItem).where(WorkItem.state.in_(list(states))).order_by(WorkItem.id).limit(limit)
    if team:
        query = query.where(WorkItem.team == team)
    return list(session.scalars(query))


def close_work_item(session: Session, item_id: int, *, resolution: str, closed_by: str) -> WorkItem:
    item = session.get(WorkItem, item_id)
    if item is None:
        raise KeyError(f"no work item {item_id}")
    item.state = WorkItemState.DONE.value
    item.resolution = resolution
    item.assigned_to = closed_by
    item.closed_at = utcnow()
    return item
