"""The work desk: each team's queue of work items and what a person may do with one.

Every function takes the signed-in ``StaffUser`` and enforces what they may see: a team member
sees and acts on their own teams' items only (another team's item is ``Forbidden``, and never
appears in a list, a count or a search); operations staff see every team. Personal data of a case
(its CRM fields and the command's payload) is shown to members of the owning team only.

Actions (claim, unassign, comment, resolve, fix and retry, cancel) each write an audit row with
who, what, when and the state before and after. Resolving and cancelling tell the CRM through the
outbox; fix and retry queues a corrected command under a new idempotency key.
"""
from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors import catalog
from hub import audit, desk_config, outbox
from hub.accounts import StaffUser
from hub.ledger.models import (OPEN_WORK_ITEM_STATES, Attempt, Case, Command, CommandState,
                               WorkItem, WorkItemComment, WorkItemState, utcnow)

MAX_COMMENT = 2000
MAX_NOTE = 500
AGES = {"1d": timedelta(days=1), "3d": timedelta(days=3), "7d": timedelta(days=7),
        "30d": timedelta(days=30)}
STATE_FILTERS = {"active": OPEN_WORK_ITEM_STATES, "open": (WorkItemState.OPEN.value,),
                 "in_progress": (WorkItemState.IN_PROGRESS.value,),
                 "done": (WorkItemState.DONE.value,), "cancelled": (WorkItemState.CANCELLED.value,),
                 "all": tuple(s.value for s in WorkItemState)}


class DeskError(Exception):
    """Base of the desk's refusals; ``str()`` is a sentence for the person."""


class NotFound(DeskError):
    """No such work item."""


class Forbidden(DeskError):
    """The item belongs to a team the person is not in."""


class Conflict(DeskError):
    """The item's state does not allow this action (someone else acted first)."""


class Invalid(DeskError):
    """The input is not acceptable; ``errors`` maps field names to what is wrong."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


# -- who sees what -----------------------------------------------------------------------------

def _visible(user: StaffUser):  # type: ignore[no-untyped-def]
    teams = user.visible_teams()
    return True if teams is None else WorkItem.team.in_(sorted(teams))


def visible_teams(user: StaffUser) -> list[str]:
    """The teams whose queues the person has (operations: every team in the configuration)."""
    teams = user.visible_teams()
    if teams is None:
        from hub.accounts import known_teams

        return known_teams()
    return sorted(teams)


def _load(session: Session, user: StaffUser, item_id: int) -> WorkItem:
    item = session.get(WorkItem, item_id)
    if item is None:
        raise NotFound(f"There is no work item {item_id}.")
    if not user.can_see_team(item.team):
        raise Forbidden("This work item belongs to another team.")
    return item


# -- the queue ---------------------------------------------------------------------------------

@dataclass
class QueueFilter:
    team: str = ""
    kind: str = ""
    system: str = ""
    state: str = "active"
    assignee: str = ""
    """``me``, ``unassigned``, or a user name."""
    age: str = ""
    """Opened more than ``1d``, ``3d``, ``7d`` or ``30d`` ago."""
    q: str = ""
    """Search: an item number (``#12``), a CRM case id, a back-office reference or command key."""
    overdue: bool = False


@dataclass
class QueueRow:
    item: WorkItem
    crm_id: str | None
    case_type: str | None
    reference: str | None
    overdue: bool
    kind_label: str


def queue(session: Session, user: StaffUser, filt: QueueFilter, *, limit: int = 300,
          now: datetime | None = None) -> tuple[list[QueueRow], int]:
    """Items the person may see that match the filter, soonest due first; and how many match."""
    now = now or utcnow()
    query = (select(WorkItem, Case.crm_id, Case.case_type, Command.reference)
             .outerjoin(Case, Case.id == WorkItem.case_id)
             .outerjoin(Command, Command.id == WorkItem.command_id)
             .where(_visible(user)))
    query = query.where(WorkItem.state.in_(STATE_FILTERS.get(filt.state, OPEN_WORK_ITEM_STATES)))
    if filt.team:
        query = query.where(WorkItem.team == filt.team)
    if filt.kind:
        query = query.where(WorkItem.kind == filt.kind)
    if filt.system:
        query = query.where(WorkItem.system == filt.system)
    if filt.assignee == "me":
        query = query.where(WorkItem.assigned_to == user.username)
    elif filt.assignee == "unassigned":
        query = query.where(WorkItem.assigned_to.is_(None))
    elif filt.assignee:
        query = query.where(WorkItem.assigned_to == filt.assignee[:80])
    if filt.age in AGES:
        query = query.where(WorkItem.created_at < now - AGES[filt.age])
    if filt.overdue:
        query = query.where(WorkItem.due_at < now, WorkItem.state.in_(OPEN_WORK_ITEM_STATES))
    term = filt.q.strip()[:120]
    if term:
        number = re.fullmatch(r"#?(\d{1,9})", term)
        conditions = [Case.crm_id == term, Command.reference == term, Command.key == term]
        if number:
            conditions.append(WorkItem.id == int(number.group(1)))
        query = query.where(or_(*conditions))
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    ordered = query.order_by(case((WorkItem.due_at.is_(None), 1), else_=0), WorkItem.due_at,
                             WorkItem.id).limit(limit)
    config = desk_config.current()
    rows = [QueueRow(item=item, crm_id=crm_id, case_type=case_type, reference=reference,
                     overdue=is_overdue(item, now), kind_label=config.kind(item.kind).label)
            for item, crm_id, case_type, reference in session.execute(ordered)]
    return rows, total


def is_overdue(item: WorkItem, now: datetime | None = None) -> bool:
    return (item.state in OPEN_WORK_ITEM_STATES and item.due_at is not None
            and item.due_at < (now or utcnow()))


def team_counts(session: Session, user: StaffUser, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Active and overdue items per team the person may see."""
    now = now or utcnow()
    rows = session.execute(
        select(WorkItem.team, func.count(),
               func.sum(case((WorkItem.due_at < now, 1), else_=0)))
        .where(_visible(user), WorkItem.state.in_(OPEN_WORK_ITEM_STATES))
        .group_by(WorkItem.team))
    counts = {team: {"active": 0, "overdue": 0} for team in visible_teams(user)}
    for team, active, overdue in rows:
        counts.setdefault(team, {})
        counts[team] = {"active": int(active or 0), "overdue": int(overdue or 0)}
    return counts


def filter_choices(session: Session, user: StaffUser) -> dict[str, list[str]]:
    """Kinds, systems and assignees that occur among the person's visible items."""
    visible = _visible(user)
    kinds = sorted(k for k in session.scalars(select(WorkItem.kind).where(visible).distinct()) if k)
    systems = sorted(s for s in session.scalars(select(WorkItem.system).where(visible).distinct()) if s)
    people = sorted(p for p in session.scalars(select(WorkItem.assigned_to).where(visible).distinct()) if p)
    return {"kinds": kinds, "systems": systems, "assignees": people}


# -- one item ----------------------------------------------------------------------------------

@dataclass
class FormField:
    name: str
    widget: str
    """``text``, ``choice`` or ``json``."""
    value: str
    required: bool
    choices: list[str] = field(default_factory=list)
    description: str = ""


@dataclass
class ItemView:
    item: WorkItem
    case: Case | None
    commands: list[Command]
    """The item's command and any corrected resends of it, oldest first."""
    attempts: list[Attempt]
    trail: list[Any]
    comments: list[WorkItemComment]
    comment_count: int
    personal: bool
    """Whether the person may see the case's personal data (member of the owning team)."""
    kind_label: str
    team_label: str
    resolutions: list[desk_config.Resolution]
    overdue: bool
    can_act: bool
    can_fix: bool
    can_cancel: bool
    fix_fields: list[FormField]
    case_data: dict[str, Any] | None
    payload: dict[str, Any] | None


def _chain(session: Session, first: Command | None) -> list[Command]:
    if first is None:
        return []
    chain = [first]
    while True:
        nxt = session.scalar(select(Command).where(Command.replaces_command_id == chain[-1].id)
                             .order_by(Command.id).limit(1))
        if nxt is None or len(chain) > 20:
            return chain
        chain.append(nxt)


def view_item(session: Session, user: StaffUser, item_id: int) -> ItemView:
    item = _load(session, user, item_id)
    config = desk_config.current()
    case_row = session.get(Case, item.case_id) if item.case_id else None
    first = session.get(Command, item.command_id) if item.command_id else None
    commands = _chain(session, first)
    ids = [c.id for c in commands]
    attempts = list(session.scalars(select(Attempt).where(Attempt.command_id.in_(ids))
                                    .order_by(Attempt.started_at, Attempt.id))) if ids else []
    personal = user.owns_team(item.team)
    comments = list(session.scalars(select(WorkItemComment).where(
        WorkItemComment.work_item_id == item.id).order_by(WorkItemComment.at, WorkItemComment.id)))
    active = item.state in OPEN_WORK_ITEM_STATES
    can_fix = active and personal and fixable(item, first)
    return ItemView(
        item=item, case=case_row, commands=commands, attempts=attempts,
        trail=audit.trail_for_work_item(session, item.id, ids),
        comments=comments if personal else [], comment_count=len(comments), personal=personal,
        kind_label=config.kind(item.kind).label, team_label=config.team_label(item.team),
        resolutions=list(config.kind(item.kind).resolutions), overdue=is_overdue(item),
        can_act=active, can_fix=can_fix,
        can_cancel=active and case_row is not None and not _done_in_back_office(commands),
        fix_fields=fix_form(first) if can_fix and first is not None else [],
        case_data=(case_row.payload if personal and case_row is not None else None),
        payload=(first.payload if personal and first is not None else None))


def _done_in_back_office(commands: list[Command]) -> bool:
    return any(c.state == CommandState.CONFIRMED.value for c in commands)


def fixable(item: WorkItem, command: Command | None) -> bool:
    """A refused (not held) command whose payload is still kept can be corrected and resent.

    Held moves exist in the back office already, and a failed delivery may have arrived: both are
    sent again under their own key (operations replay), never under a new one.
    """
    return (command is not None and item.kind == "backoffice_rejected"
            and command.state == CommandState.REJECTED.value and not command.held
            and command.payload is not None and command.system in catalog.SYSTEMS
            and command.operation in catalog.operations(command.system))


def _model(command: Command) -> type[BaseModel]:
    return catalog.operations(command.system)[command.operation]


def _is_structured(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, dict, set, frozenset):
        return True
    if origin is not None:
        return any(_is_structured(a) for a in typing.get_args(annotation) if a is not type(None))
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _choices(annotation: Any) -> list[str]:
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    if typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _choices(arg)
            if found:
                return found
    return []


def fix_form(command: Command) -> list[FormField]:
    """One field per field of the operation's model, filled from the command's payload."""
    model = _model(command)
    payload = command.payload or {}
    fields = []
    for name, info in model.model_fields.items():
        value = payload.get(name)
        structured = _is_structured(info.annotation) or isinstance(value, (dict, list))
        choices = [] if structured else _choices(info.annotation)
        if structured:
            text = json.dumps(value, indent=1, ensure_ascii=False) if value is not None else ""
        else:
            text = "" if value is None else str(value)
        fields.append(FormField(name=name, widget="json" if structured else "choice" if choices else "text",
                                value=text, required=info.is_required(), choices=choices,
                                description=(info.description or "")[:200]))
    return fields


def parse_fix(command: Command, submitted: dict[str, str]) -> dict[str, Any]:
    """The corrected payload from the form, validated against the operation's model.

    Raises ``Invalid`` whose ``errors`` name each wrong field (never echoing the values).
    """
    model = _model(command)
    fields = {f.name: f for f in fix_form(command)}
    raw: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, spec in fields.items():
        text = (submitted.get(name) or "").strip()
        if len(text) > 5000:
            errors[name] = "is too long"
            continue
        if not text:
            continue
        if spec.widget == "json":
            try:
                raw[name] = json.loads(text)
            except json.JSONDecodeError:
                errors[name] = "is not valid JSON"
        else:
            raw[name] = text
    if not errors:
        try:
            return model.model_validate(raw).model_dump(mode="json", exclude_none=True)
        except ValidationError as exc:
            for error in exc.errors(include_input=False, include_url=False):
                where = ".".join(str(p) for p in error["loc"]) or "payload"
                errors.setdefault(where, error["msg"])
    raise Invalid("Some fields need correcting.", errors)


# -- actions -----------------------------------------------------------------------------------

def _active(item: WorkItem) -> None:
    if item.state not in OPEN_WORK_ITEM_STATES:
        raise Conflict(f"This item is already {item.state.replace('_', ' ')}.")


def _touch(item: WorkItem) -> None:
    item.updated_at = utcnow()


def claim(session: Session, user: StaffUser, item_id: int) -> WorkItem:
    item = _load(session, user, item_id)
    _active(item)
    if item.assigned_to and item.assigned_to != user.username:
        raise Conflict(f"{item.assigned_to} is working on this item. Ask them, or unassign it first.")
    before = item.state
    item.state = WorkItemState.IN_PROGRESS.value
    item.assigned_to = user.username
    _touch(item)
    audit.record(session, actor=user.username, action="claimed", target=f"work_item:{item.id}",
                 work_item_id=item.id, state_before=before, state_after=item.state)
    return item


def unassign(session: Session, user: StaffUser, item_id: int) -> WorkItem:
    item = _load(session, user, item_id)
    _active(item)
    before = item.state
    previous = item.assigned_to
    item.state = WorkItemState.OPEN.value
    item.assigned_to = None
    _touch(item)
    audit.record(session, actor=user.username, action="unassigned", target=f"work_item:{item.id}",
                 work_item_id=item.id, state_before=before, state_after=item.state,
                 detail=f"was {previous}" if previous else None)
    return item


def comment(session: Session, user: StaffUser, item_id: int, body: str) -> WorkItemComment:
    item = _load(session, user, item_id)
    text = (body or "").strip()
    if not text:
        raise Invalid("Write a comment first.", {"body": "is empty"})
    if len(text) > MAX_COMMENT:
        raise Invalid(f"A comment can be at most {MAX_COMMENT} characters.", {"body": "is too long"})
    note = WorkItemComment(work_item_id=item.id, author=user.username, at=utcnow(), body=text)
    session.add(note)
    _touch(item)
    audit.record(session, actor=user.username, action="commented", target=f"work_item:{item.id}",
                 work_item_id=item.id, state_before=item.state, state_after=item.state,
                 detail=f"{len(text)} characters")
    return note


def _close(item: WorkItem, user: StaffUser, state: str, code: str, text: str) -> None:
    item.state = state
    item.resolution_code = code
    item.resolution = text[:1000]
    item.assigned_to = item.assigned_to or user.username
    item.closed_at = utcnow()
    item.updated_at = item.closed_at


def resolve(session: Session, user: StaffUser, item_id: int, code: str, note: str = "") -> WorkItem:
    """Close the item with a resolution code from its kind's list; tell the CRM when configured."""
    item = _load(session, user, item_id)
    _active(item)
    config = desk_config.current()
    resolution = config.kind(item.kind).resolution(code)
    if resolution is None:
        raise Invalid("Choose how the item was resolved.", {"code": "is not a resolution for this kind"})
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise Invalid(f"The note can be at most {MAX_NOTE} characters.", {"note": "is too long"})
    before = item.state
    _close(item, user, WorkItemState.DONE.value, resolution.code,
           resolution.label + (f". {note}" if note else ""))
    case_row = session.get(Case, item.case_id) if item.case_id else None
    told = ""
    if resolution.crm_status and case_row is not None:
        team = config.team_label(item.team)
        text = f"{resolution.label} ({team} team)." + (f" {note}" if note else "")
        outbox.enqueue(session, dedupe_key=f"workitem:{item.id}:resolved", case=case_row,
                       kind="resolution", status=resolution.crm_status, note=text,
                       system=item.system, command_id=item.command_id)
        told = f"; CRM told {resolution.crm_status}"
    audit.record(session, actor=user.username, action="resolved", target=f"work_item:{item.id}",
                 work_item_id=item.id, state_before=before, state_after=item.state,
                 detail=f"code {resolution.code}{told}")
    return item


def cancel(session: Session, user: StaffUser, item_id: int, reason: str) -> WorkItem:
    """The request will not be done: the item and its command are cancelled, the CRM told why."""
    item = _load(session, user, item_id)
    _active(item)
    why = (reason or "").strip()
    if len(why) < 5:
        raise Invalid("Say why the request will not be done (the CRM shows it to the agent).",
                      {"reason": "is missing"})
    if len(why) > MAX_NOTE:
        raise Invalid(f"The reason can be at most {MAX_NOTE} characters.", {"reason": "is too long"})
    case_row = session.get(Case, item.case_id) if item.case_id else None
    if case_row is None:
        raise Conflict("This item has no CRM case to cancel; resolve it instead.")
    commands = _chain(session, session.get(Command, item.command_id) if item.command_id else None)
    if _done_in_back_office(commands):
        raise Conflict("The back office has already done this request; it cannot be cancelled here.")
    config = desk_config.current()
    for command in commands:
        if command.state not in (CommandState.CANCELLED.value,):
            audit.record(session, actor=user.username, action="command_cancelled",
                         target=f"command:{command.id}", command_id=command.id,
                         work_item_id=item.id, state_before=command.state,
                         state_after=CommandState.CANCELLED.value)
            command.state = CommandState.CANCELLED.value
            command.claim_token = None
            command.settled_at = command.settled_at or utcnow()
    before = item.state
    _close(item, user, WorkItemState.CANCELLED.value, "cancelled", why)
    outbox.enqueue(session, dedupe_key=f"workitem:{item.id}:cancelled", case=case_row,
                   kind="cancellation", status="rejected", system=item.system,
                   command_id=item.command_id,
                   note=f"This request will not be done ({config.team_label(item.team)} team). "
                        f"Reason: {why}")
    audit.record(session, actor=user.username, action="cancelled", target=f"work_item:{item.id}",
                 work_item_id=item.id, state_before=before, state_after=item.state,
                 detail="CRM told rejected")
    return item


def _resend_key(session: Session, key: str) -> str:
    base = re.sub(r"\.f\d+$", "", key)
    for n in range(1, 100):
        suffix = f".f{n}"
        candidate = base[:64 - len(suffix)] + suffix
        if not session.scalar(select(Command.id).where(Command.key == candidate)):
            return candidate
    raise Conflict("This request has been corrected too many times; ask operations to look at it.")


def fix_and_retry(session: Session, user: StaffUser, item_id: int,
                  submitted: dict[str, str]) -> Command:
    """Correct the fields the mapping produced and send again as a new command.

    The corrected payload must pass the operation's model. The new command gets its own
    idempotency key (``<key>.f<n>``), so the back office treats it as a new request and the
    dispatcher sends it once like any other; the item closes, the CRM is told it is being resent.
    """
    item = _load(session, user, item_id)
    _active(item)
    if not user.owns_team(item.team):
        raise Forbidden("Only the owning team can correct a request (it holds personal data).")
    original = session.get(Command, item.command_id) if item.command_id else None
    if original is None or not fixable(item, original):
        raise Conflict("This item cannot be corrected and resent.")
    payload = parse_fix(original, submitted)
    changed = sorted(k for k in set(payload) | set(original.payload or {})
                     if payload.get(k) != (original.payload or {}).get(k))
    if not changed:
        raise Invalid("Nothing was changed. Correct at least one field, or resolve the item.",
                      {"payload": "is unchanged"})
    key = _resend_key(session, original.key)
    now = utcnow()
    resend = Command(case_id=original.case_id, system=original.system, operation=original.operation,
                     key=key, payload=payload, state=CommandState.PENDING.value, created_at=now,
                     updated_at=now, replaces_command_id=original.id)
    session.add(resend)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("Someone has just resent this request.") from exc
    config = desk_config.current()
    before = item.state
    _close(item, user, WorkItemState.DONE.value, "fixed_and_resent",
           f"Corrected ({', '.join(changed)}) and sent again as command {resend.id}")
    case_row = session.get(Case, original.case_id)
    system_label = original.system.split("_")[0].capitalize()
    if case_row is not None:
        outbox.enqueue(session, dedupe_key=f"workitem:{item.id}:resent", case=case_row,
                       kind="resolution", status="in_progress", system=original.system,
                       command_id=resend.id,
                       note=f"The {config.team_label(item.team)} team corrected the request and "
                            f"sent it to {system_label} again.")
    audit.record(session, actor=user.username, action="command_created", target=f"command:{resend.id}",
                 command_id=resend.id, work_item_id=item.id, state_after=resend.state,
                 detail=f"corrected resend of command {original.id}; key {key}")
    audit.record(session, actor=user.username, action="fixed_and_resent", target=f"work_item:{item.id}",
                 work_item_id=item.id, command_id=original.id, state_before=before,
                 state_after=item.state, detail=f"fields changed: {', '.join(changed)}"[:500])
    return resend


def assignees_of(session: Session, user: StaffUser) -> list[str]:
    return filter_choices(session, user)["assignees"]


__all__ = ["AGES", "Conflict", "DeskError", "Forbidden", "Invalid", "ItemView", "NotFound",
           "QueueFilter", "QueueRow", "STATE_FILTERS", "cancel", "claim", "comment", "filter_choices",
           "fix_and_retry", "fixable", "is_overdue", "queue", "resolve", "team_counts", "unassign",
           "view_item", "visible_teams"]
