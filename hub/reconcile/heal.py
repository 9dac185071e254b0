"""Healing: what the hub may put right by itself, each step guarded so that it happens once.

Safe classes heal, each only after a look-up by key:

- ``missing_in_backoffice``: ``Connector.snapshot([key])`` confirms the record is absent, then the
  command goes back to ``pending`` with ``maybe_sent`` (the normal dispatch path sends it again
  under the same key, and the connector looks before it creates); its earlier outcome's outbox
  key is retired, so the new confirmation (and the new reference) is written back to the CRM;
- ``stuck``: the look-up settles it: found, the command is confirmed with the back office's
  reference (the CRM note follows through the outbox); not found and ``sending``, it goes back to
  dispatch as above; not found and ``awaiting``, it is a work item (the answer is overdue);
- ``writeback_missing``: the same outbox message is delivered again under its key
  (``hub-outbox-<id>``), unless it was delivered (by another run) after this run began;
- ``unmapped_case``: the case is mapped (``hub.intake.map_cases``: only a case still received).

Every change is a conditional UPDATE on what the run read (state, settle/claim/due time, the
outbox message's attempts): of two runs at once, or one after another, one changes the row and
the other finds it changed and does nothing. A drift healed once that comes back is not healed
again: it becomes a work item. The other classes become work items for the owning team (the
catalogue's team), opened once per drift (``reconcile:<system>:<identity>``).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.base import Connector
from connectors.errors import ConnectorError, error_class_name
from crm_adapter.models import WriteBack
from hub import audit, intake
from hub import outcomes as settle
from hub.ledger.db import session_scope
from hub.ledger.models import Command, CommandState, OutboxMessage, OutboxState, WorkItem, utcnow
from hub.reconcile import core
from hub.reconcile.findings import STUCK_AWAITING, STUCK_SENDING, Finding, FindingClass
from hub.workitems import work_item_row

log = logging.getLogger(__name__)
ACTOR = "reconcile"

HEALED = "healed"
WORK_ITEM = "work_item"
PRESENT_ON_LOOKUP = "present_on_lookup"
CHANGED_MEANWHILE = "changed_meanwhile"
HEAL_FAILED = "heal_failed"
REPORTED = "reported"

LABELS = {
    FindingClass.MISSING_IN_BACKOFFICE: "the ledger says confirmed but the back office has no record",
    FindingClass.UNKNOWN_IN_BACKOFFICE: "a back-office record carries a hub key the ledger does not know",
    FindingClass.FIELD_MISMATCH: "the back office holds a different value from the one the hub sent",
    FindingClass.STATUS_NOT_IN_CRM: "a later back-office status never reached the CRM",
    FindingClass.WRITEBACK_MISSING: "the CRM does not show what the hub wrote back",
    FindingClass.STUCK: "a command has had no answer for too long",
    FindingClass.UNMAPPED_CASE: "a CRM case was received and never turned into back-office work",
}


@dataclass
class Outcome:
    outcome: str
    work_item_id: int | None = None
    work_item_opened: bool = False


@dataclass
class Healer:
    """Heals one system's findings (``connector`` for look-ups by key, ``crm`` for write-backs)."""

    system: str
    connector: Connector | None
    crm: Any = None
    url: str | None = None
    started: datetime | None = None
    """When the run started (before it read the CRM): a write-back delivered since then, by
    another run, is not delivered again."""
    map_cases: Callable[..., Any] = intake.map_cases

    def heal(self, finding: Finding, read: core.LedgerCommand | None) -> Outcome:
        """Heal one safe finding (``read``: the command as the run read it), or hand it over."""
        try:
            if finding.code is FindingClass.MISSING_IN_BACKOFFICE:
                return self._missing(finding, read)
            if finding.code is FindingClass.STUCK:
                return self._stuck(finding, read)
            if finding.code is FindingClass.WRITEBACK_MISSING:
                return self._writeback(finding)
            if finding.code is FindingClass.UNMAPPED_CASE:
                return self._unmapped(finding)
        except ConnectorError as exc:
            log.warning("reconcile %s: healing %s %s failed (%s %s)", self.system,
                        finding.code.value, finding.key, error_class_name(exc), exc.code)
            return Outcome(HEAL_FAILED)
        return self.work_item(finding)

    # -- safe classes ---------------------------------------------------------------------------
    def _present(self, key: str) -> dict[str, Any] | None:
        """The look-up by key (``Connector.snapshot``): the record's view, or None if absent."""
        assert self.connector is not None
        found = self.connector.snapshot([key])
        record = found.get(key)
        return dict(record) if record is not None else None

    def _missing(self, finding: Finding, read: core.LedgerCommand | None) -> Outcome:
        if read is None or self.connector is None:
            return self.work_item(finding)
        if self._present(finding.key) is not None:
            return Outcome(PRESENT_ON_LOOKUP)
        with session_scope(self.url) as session:
            if not _resend(session, read, CommandState.CONFIRMED.value,
                           Command.settled_at, read.settled_at,
                           "absent in the back office (look-up by key): sent again"):
                return Outcome(CHANGED_MEANWHILE)
        return Outcome(HEALED)

    def _stuck(self, finding: Finding, read: core.LedgerCommand | None) -> Outcome:
        if read is None or self.connector is None:
            return self.work_item(finding)
        sending = finding.detail == STUCK_SENDING
        column, value = ((Command.claimed_at, read.claimed_at) if sending
                         else (Command.due_by, read.due_by))
        found = self._present(finding.key)
        with session_scope(self.url) as session:
            if found is not None:
                changed = session.execute(
                    update(Command).where(Command.id == read.command_id,
                                          Command.state == read.state, _same(column, value))
                    .values(updated_at=utcnow()).execution_options(synchronize_session=False))
                if changed.rowcount != 1:
                    return Outcome(CHANGED_MEANWHILE)
                command = session.get(Command, read.command_id)
                settle.confirm(session, command, reference=_reference(found),
                               note_extra="Confirmed by reconciliation (found by key)")
                audit.record(session, actor=ACTOR, action="settled_by_lookup",
                             target=f"command:{read.command_id}", command_id=read.command_id,
                             state_before=read.state, state_after=CommandState.CONFIRMED.value)
                return Outcome(HEALED)
            if sending and _resend(session, read, CommandState.SENDING.value, column, value,
                         "stuck sending and absent in the back office: sent again"):
                return Outcome(HEALED)
            if sending:
                return Outcome(CHANGED_MEANWHILE)
        assert finding.detail == STUCK_AWAITING
        return self.work_item(finding)

    def _writeback(self, finding: Finding) -> Outcome:
        if self.crm is None or finding.outbox_id is None:
            return self.work_item(finding)
        with session_scope(self.url) as session:
            message = session.get(OutboxMessage, finding.outbox_id)
            if message is None or message.state != OutboxState.SENT.value:
                return Outcome(CHANGED_MEANWHILE)
            delivered_before = (OutboxMessage.sent_at.is_(None) if self.started is None
                                else or_(OutboxMessage.sent_at.is_(None),
                                         OutboxMessage.sent_at < self.started))
            claimed = session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message.id,
                                            OutboxMessage.attempts == message.attempts,
                                            delivered_before)
                .values(attempts=message.attempts + 1, sent_at=utcnow())
                .execution_options(synchronize_session=False))
            if claimed.rowcount != 1:
                return Outcome(CHANGED_MEANWHILE)
            # Sent while the row is held: a second run waits, then finds it changed.
            self.crm.write_back(message.crm_id, WriteBack(
                idempotency_key=f"hub-outbox-{message.id}", status=message.status,
                note=message.note, backoffice_reference=message.backoffice_reference,
                backoffice_system=message.system))
            audit.record(session, actor=ACTOR, action="writeback_redelivered",
                         target=f"outbox:{message.id}", command_id=message.command_id,
                         detail=f"CRM case {message.crm_id}: {', '.join(finding.fields)}")
        return Outcome(HEALED)

    def _unmapped(self, finding: Finding) -> Outcome:
        if finding.case_id is None:
            return self.work_item(finding)
        try:
            stats = self.map_cases([finding.case_id], url=self.url)
        except IntegrityError:   # another run mapped it at the same time (keys are unique)
            return Outcome(CHANGED_MEANWHILE)
        if stats.mapped or stats.invalid:
            return Outcome(HEALED)
        return Outcome(CHANGED_MEANWHILE)

    # -- everything else ------------------------------------------------------------------------
    def work_item(self, finding: Finding, *, again: bool = False) -> Outcome:
        """The owning team's work item for ``finding`` (opened once per drift)."""
        dedupe_key = f"reconcile:{self.system}:{finding.identity()}"
        row = work_item_row(dedupe_key=dedupe_key, kind=f"reconcile_{finding.code.value}"[:40],
                            reason=reason(finding, again=again)[:4000], system=self.system,
                            case_id=finding.case_id, command_id=finding.command_id)
        for attempt in range(2):
            try:
                with session_scope(self.url) as session:
                    # one INSERT ... ON CONFLICT DO NOTHING: two runs at once open one item
                    opened = settle.open_work_items(session, [row])
                    item_id = session.scalar(select(WorkItem.id)
                                             .where(WorkItem.dedupe_key == dedupe_key))
                return Outcome(WORK_ITEM, item_id, opened == 1)
            except IntegrityError:   # MariaDB: look-up then insert raced another run
                if attempt:
                    raise
        raise AssertionError("unreachable")


def reason(finding: Finding, *, again: bool = False) -> str:
    """A work item's reason: the class, the record and the fields named, never their values."""
    where = [f"key {finding.key}"]
    if finding.reference:
        where.append(f"back-office reference {finding.reference}")
    if finding.crm_id and finding.crm_id != finding.key:
        where.append(f"CRM case {finding.crm_id}")
    text = (f"Reconciliation of {finding.system} found {finding.code.value}: "
            f"{LABELS[finding.code]} ({'; '.join(where)}")
    if finding.fields:
        text += f"; fields: {', '.join(finding.fields)}"
    text += f"; {finding.detail})." if finding.detail else ")."
    if again:
        text += " It was healed automatically before and has come back: please look into it."
    return text


def _same(column: Any, value: datetime | None) -> Any:
    return column.is_(None) if value is None else column == value


def _resend(session: Session, read: core.LedgerCommand, state: str, column: Any,
            value: datetime | None, why: str) -> bool:
    """Back to ``pending`` with ``maybe_sent`` (dispatch looks before it creates), if the command
    is still as the run read it."""
    changed = session.execute(
        update(Command).where(Command.id == read.command_id, Command.state == state,
                              _same(column, value))
        .values(state=CommandState.PENDING.value, maybe_sent=True, next_attempt_at=None,
                claim_token=None, claimed_at=None, settled_at=None, message=why[:1000],
                updated_at=utcnow())
        .execution_options(synchronize_session=False))
    if changed.rowcount != 1:
        return False
    # The outcome already written back names the record that is gone: retire its key so that
    # the new confirmation is written back too (with the new reference), once.
    outcome_key = f"command:{read.command_id}:outcome"
    written = session.scalar(select(OutboxMessage.id)
                             .where(OutboxMessage.dedupe_key == outcome_key))
    if written is not None:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == written)
                        .values(dedupe_key=f"{outcome_key}:resent:{written}")
                        .execution_options(synchronize_session=False))
    audit.record(session, actor=ACTOR, action="resent_after_lookup",
                 target=f"command:{read.command_id}", command_id=read.command_id,
                 state_before=state, state_after=CommandState.PENDING.value, detail=why)
    return True


def _reference(found: dict[str, Any]) -> str | None:
    value = found.get("reference")
    return str(value)[:120] if value else None
