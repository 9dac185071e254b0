"""Replay: send failed commands again, under their own idempotency key, on an operator's word.

A command ``failed`` after repeated transient failures; one of those tries may have reached the
back office, so a replay keeps the key and sets ``maybe_sent`` (the connector looks before it
creates). Each replay is audited (who, when, failed -> pending), its ``delivery_failed`` work item
closes as ``replayed`` and reopens by itself if the command fails again.
"""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import audit
from hub.accounts import StaffUser
from hub.ledger.models import Command, CommandState, WorkItem, WorkItemState, utcnow

MAX_PER_REPLAY = 200


class ReplayRefused(ValueError):
    """The replay cannot be done as asked (the message says why)."""


def replay(session: Session, user: StaffUser, command_ids: Sequence[int]) -> list[int]:
    """Put the given failed commands back to pending; returns the ids replayed (others skipped)."""
    if not user.is_operations:
        raise ReplayRefused("only operations staff may replay commands")
    ids = sorted({int(i) for i in command_ids})
    if not ids:
        raise ReplayRefused("choose at least one failed command")
    if len(ids) > MAX_PER_REPLAY:
        raise ReplayRefused(f"replay at most {MAX_PER_REPLAY} commands at a time")
    now = utcnow()
    done = []
    for command in session.scalars(select(Command).where(Command.id.in_(ids),
                                                          Command.state == CommandState.FAILED.value)
                                   .with_for_update()):
        command.state = CommandState.PENDING.value
        command.attempts = 0
        command.maybe_sent = True
        command.next_attempt_at = None
        command.claim_token = None
        command.settled_at = None
        command.updated_at = now
        audit.record(session, actor=user.username, action="replayed", target=f"command:{command.id}",
                     command_id=command.id, state_before=CommandState.FAILED.value,
                     state_after=CommandState.PENDING.value, detail=f"key {command.key}")
        for item in session.scalars(select(WorkItem).where(
                WorkItem.command_id == command.id, WorkItem.kind == "delivery_failed",
                WorkItem.state.in_([WorkItemState.OPEN.value, WorkItemState.IN_PROGRESS.value]))):
            before = item.state
            item.state = WorkItemState.DONE.value
            item.resolution_code = "replayed"
            item.resolution = f"Sent again by {user.username} (operations replay)"
            item.closed_at = now
            item.updated_at = now
            audit.record(session, actor=user.username, action="replayed", target=f"work_item:{item.id}",
                         work_item_id=item.id, command_id=command.id, state_before=before,
                         state_after=item.state)
        done.append(command.id)
    return done
