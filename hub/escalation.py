"""Escalation: work items past their SLA are e-mailed to their team's address, once per item.

One message per team per run lists the overdue items by number, kind, system, CRM case id and due
time, with a link to each on the desk; no personal data. An item is marked escalated (and audited)
only after its team's message was accepted by the SMTP server, so a failed send is tried again on
the next run. Runs in the ``hub_housekeeping`` DAG's ``escalate_overdue`` task every 15 minutes
and from ``hub escalate-overdue``.
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from connectors.errors import ConnectorError
from hub import audit, desk_config, mail
from hub.ledger.db import session_scope
from hub.ledger.models import OPEN_WORK_ITEM_STATES, Case, WorkItem, utcnow

log = logging.getLogger(__name__)


@dataclass
class EscalationStats:
    items: int = 0
    emails: int = 0
    failed_teams: int = 0
    no_address: int = 0


def desk_link(item_id: int) -> str:
    base = os.environ.get("HUB_WEB_BASE_URL", "").rstrip("/")
    return f"{base}/desk/items/{item_id}" if base else f"/desk/items/{item_id}"


def _message(team_label: str, rows: list[tuple[WorkItem, str | None]], now: datetime) -> tuple[str, str]:
    subject = f"[Integration hub] {len(rows)} overdue work item{'s' if len(rows) != 1 else ''} for {team_label}"
    config = desk_config.current()
    lines = [f"These {team_label} work items are past their due time and nobody has closed them:", ""]
    for item, crm_id in rows:
        late = now - item.due_at if item.due_at else None
        hours = int(late.total_seconds() // 3600) if late else 0
        lines.append(f"- #{item.id} {config.kind(item.kind).label} ({item.system or 'no system'}), "
                     f"CRM case {crm_id or '-'}, due {item.due_at:%d %b %Y %H:%M} UTC "
                     f"({hours} h late), {'assigned to ' + item.assigned_to if item.assigned_to else 'unassigned'}")
        lines.append(f"  {desk_link(item.id)}")
    lines += ["", "Open the work desk to claim and resolve them. This message holds no case details."]
    return subject, "\n".join(lines)


def escalate_overdue(*, url: str | None = None, now: datetime | None = None,
                     settings: mail.SmtpSettings | None = None) -> EscalationStats:
    """E-mail each team its newly overdue items; mark them escalated once sent."""
    now = now or utcnow()
    settings = settings or mail.SmtpSettings.from_env()
    stats = EscalationStats()
    config = desk_config.current()
    with session_scope(url) as session:
        found = session.execute(
            select(WorkItem.id, WorkItem.team).where(
                WorkItem.state.in_(OPEN_WORK_ITEM_STATES), WorkItem.due_at.is_not(None),
                WorkItem.due_at < now, WorkItem.escalated_at.is_(None))
            .order_by(WorkItem.due_at)).all()
    by_team: dict[str, list[int]] = defaultdict(list)
    for item_id, team in found:
        by_team[team].append(item_id)
    if by_team and settings is None:
        log.warning("%d overdue work items not escalated: HUB_SMTP_HOST is not set", len(found))
        stats.failed_teams = len(by_team)
        return stats
    for team, ids in sorted(by_team.items()):
        address = config.team_email(team) or config.team_email("operations")
        if not address:
            log.warning("team %s has no e-mail address in the desk configuration", team)
            stats.no_address += 1
            continue
        with session_scope(url) as session:
            rows = [(item, crm_id) for item, crm_id in session.execute(
                select(WorkItem, Case.crm_id).outerjoin(Case, Case.id == WorkItem.case_id)
                .where(WorkItem.id.in_(ids), WorkItem.escalated_at.is_(None))
                .order_by(WorkItem.due_at))]
            if not rows:
                continue
            subject, body = _message(config.team_label(team), rows, now)
            try:
                assert settings is not None
                mail.send(settings, [address], subject, body)
            except ConnectorError as exc:
                log.warning("escalation e-mail for team %s failed (%s); will retry", team, exc.code)
                stats.failed_teams += 1
                continue
            for item, _ in rows:
                item.escalated_at = now
                audit.record(session, actor=audit.SYSTEM_ACTOR, action="escalated",
                             target=f"work_item:{item.id}", work_item_id=item.id,
                             state_before=item.state, state_after=item.state,
                             detail=f"overdue; e-mailed {team} team")
            stats.items += len(rows)
            stats.emails += 1
    if stats.items:
        log.info("escalated %d overdue work items in %d e-mails", stats.items, stats.emails)
    return stats
