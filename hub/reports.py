"""Per-system figures from the ledger, for operators, the CLI and the demo summary."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from hub.ledger.db import session_scope
from hub.ledger.models import (OPEN_WORK_ITEM_STATES, Attempt, Case, CaseState, Command, CommandState,
                               OutboxMessage, OutboxState, WorkItem)

FIGURES = ("received", "sent", "confirmed", "rejected", "awaiting", "pending", "failed",
           "written_back", "work_items", "open_work_items", "attempts")


def system_figures(url: str | None = None) -> dict[str, dict[str, int]]:
    """For each system: cases received, commands sent/confirmed/rejected..., write-backs, work items.

    ``rejected`` counts back-office refusals and cases the hub refused as invalid before sending
    (``rejected_invalid``); each rejection is written back to the CRM and opens one work item.
    ``written_back`` counts outcome messages delivered to the CRM (later status updates are counted
    separately as ``updates_written_back``, and what people on the work desk sent as
    ``desk_written_back``); an outcome superseded because reconciliation sent its record again
    (it had gone from the back office) is ``written_back_superseded``, not ``written_back``. Work
    items that reconciliation opened are ``reconcile_work_items``,
    not ``work_items``.
    """
    out: dict[str, dict[str, int]] = defaultdict(lambda: {name: 0 for name in FIGURES})
    with session_scope(url) as session:
        for systems, state, count in session.execute(
                select(Case.systems, Case.state, func.count()).group_by(Case.systems, Case.state)):
            for system in (systems or "").split(","):
                if system:
                    out[system]["received"] += count
                    if state == CaseState.INVALID.value:
                        out[system]["rejected"] += count
                        out[system]["rejected_invalid"] = out[system].get("rejected_invalid", 0) + count
        for system, state, count in session.execute(
                select(Command.system, Command.state, func.count()).group_by(Command.system, Command.state)):
            figures = out[system]
            if state == CommandState.CONFIRMED.value:
                figures["confirmed"] += count
            elif state == CommandState.REJECTED.value:
                figures["rejected"] += count
                figures["rejected_by_backoffice"] = figures.get("rejected_by_backoffice", 0) + count
            elif state == CommandState.AWAITING.value:
                figures["awaiting"] += count
            elif state == CommandState.FAILED.value:
                figures["failed"] += count
            elif state == CommandState.CANCELLED.value:
                figures["cancelled"] = figures.get("cancelled", 0) + count
            else:
                figures["pending"] += count
        for system, sent, attempts in session.execute(
                select(Command.system, func.count(func.distinct(Attempt.command_id)), func.count(Attempt.id))
                .join(Attempt, Attempt.command_id == Command.id).group_by(Command.system)):
            out[system]["sent"] = sent
            out[system]["attempts"] = attempts
        for system, kind, count in session.execute(
                select(OutboxMessage.system, OutboxMessage.kind, func.count())
                .where(OutboxMessage.state == OutboxState.SENT.value)
                .group_by(OutboxMessage.system, OutboxMessage.kind)):
            if system:
                key = {"update": "updates_written_back", "outcome": "written_back",
                       "invalid": "written_back"}.get(kind, "desk_written_back")
                out[system][key] = out[system].get(key, 0) + count
        for system, count in session.execute(
                select(OutboxMessage.system, func.count())
                .where(OutboxMessage.state == OutboxState.SENT.value,
                       OutboxMessage.kind == "outcome",
                       OutboxMessage.dedupe_key.like("%:outcome:resent:%"))
                .group_by(OutboxMessage.system)):
            if system:   # an outcome whose record reconciliation had to send again
                out[system]["written_back"] -= count
                out[system]["written_back_superseded"] = count
        for system, state, kind, count in session.execute(
                select(WorkItem.system, WorkItem.state, WorkItem.kind, func.count())
                .group_by(WorkItem.system, WorkItem.state, WorkItem.kind)):
            if system and kind.startswith("reconcile_"):
                key = "reconcile_work_items"   # drift found by reconciliation, counted apart
                out[system][key] = out[system].get(key, 0) + count
            elif system:
                out[system]["work_items"] += count
                if state in OPEN_WORK_ITEM_STATES:
                    out[system]["open_work_items"] += count
    return {system: dict(figures) for system, figures in sorted(out.items())}


def difference(after: dict[str, dict[str, Any]], before: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """What changed between two ``system_figures`` results."""
    return {system: {k: int(v) - int(before.get(system, {}).get(k, 0))
                     for k, v in figures.items() if isinstance(v, int)}
            for system, figures in after.items()}
