"""Work items: what a machine could not finish, for the owning back-office team.

Each item is due by its kind's SLA (``hub/desk.yaml``); the desk (``hub.desk``) is where people
claim, resolve, correct and resend, or cancel them.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors import catalog
from hub import audit, desk_config
from hub.ledger.models import OPEN_WORK_ITEM_STATES, WorkItem, WorkItemState, utcnow

OPERATIONS_TEAM = "operations"


def team_for(system: str | None) -> str:
    """The team that owns a system's work items (operations when the system is unknown)."""
    if system and system in catalog.SYSTEMS:
        return catalog.entry(system).team
    return OPERATIONS_TEAM


def open_work_item(session: Session, *, dedupe_key: str, kind: str, reason: str,
                   system: str | None = None, team: str | None = None, case_id: int | None = None,
                   command_id: int | None = None, reopen: bool = False) -> WorkItem:
    """Open a work item once per ``dedupe_key``; a repeat returns the existing one.

    With ``reopen``, an existing item that a person already closed is opened again (a command that
    failed again after an operator replayed it).
    """
    now = utcnow()
    due = now + desk_config.current().kind(kind).sla
    existing = session.scalar(select(WorkItem).where(WorkItem.dedupe_key == dedupe_key))
    if existing is not None:
        if reopen and existing.state not in OPEN_WORK_ITEM_STATES:
            before = existing.state
            existing.state = WorkItemState.OPEN.value
            existing.reason = reason
            existing.assigned_to = None
            existing.closed_at = None
            existing.resolution_code = None
            existing.escalated_at = None
            existing.due_at = due
            existing.updated_at = now
            audit.record(session, actor=audit.SYSTEM_ACTOR, action="reopened",
                         target=f"work_item:{existing.id}", work_item_id=existing.id,
                         command_id=command_id, state_before=before, state_after=existing.state)
        return existing
    item = WorkItem(**work_item_row(dedupe_key=dedupe_key, kind=kind, reason=reason,
                                    system=system, team=team, case_id=case_id,
                                    command_id=command_id, now=now))
    session.add(item)
    session.flush()
    return item


def work_item_row(*, dedupe_key: str, kind: str, reason: str, system: str | None = None,
                  team: str | None = None, case_id: int | None = None,
                  command_id: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """A new open work item's values (as ``open_work_item`` opens it, due by its kind's SLA), for
    inserting many at once (``hub.outcomes.open_work_items``)."""
    now = now or utcnow()
    return {"dedupe_key": dedupe_key, "kind": kind, "reason": reason, "system": system,
            "team": team or team_for(system), "case_id": case_id, "command_id": command_id,
            "state": WorkItemState.OPEN.value, "created_at": now, "updated_at": now,
            "due_at": now + desk_config.current().kind(kind).sla}


def list_work_items(session: Session, *, team: str | None = None,
                    states: Sequence[str] = OPEN_WORK_ITEM_STATES,
                    teams: Sequence[str] | None = None, limit: int = 200) -> list[WorkItem]:
    """Items in ``states``, oldest first; ``team`` picks one team, ``teams`` limits to several."""
    query = select(WorkItem).where(WorkItem.state.in_(list(states))).order_by(WorkItem.id).limit(limit)
    if team:
        query = query.where(WorkItem.team == team)
    if teams is not None:
        query = query.where(WorkItem.team.in_(list(teams)))
    return list(session.scalars(query))


def close_work_item(session: Session, item_id: int, *, resolution: str, closed_by: str) -> WorkItem:
    """Close an item through the API (the caller has done whatever the item asked)."""
    item = session.get(WorkItem, item_id)
    if item is None:
        raise KeyError(f"no work item {item_id}")
    before = item.state
    item.state = WorkItemState.DONE.value
    item.resolution = resolution
    item.assigned_to = closed_by
    item.closed_at = utcnow()
    item.updated_at = item.closed_at
    audit.record(session, actor=f"api:{closed_by}", action="closed_by_api", target=f"work_item:{item.id}",
                 work_item_id=item.id, state_before=before, state_after=item.state)
    return item
