"""What the hub does when a command reaches a final state: ledger, CRM note, work item.

Shared by dispatch (synchronous answers) and status sync (answers that come later). Notes say what
happened in words a contact-centre agent can pass on, with references and reasons, no personal data.

``Settlement`` settles a whole batch: each command row is changed in place (the session writes them
together), and the batch's CRM notes and work items are written by ``flush`` in a few statements,
each still once per dedupe key. ``confirm``, ``reject`` and ``fail`` settle one command.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from connectors import catalog
from hub import outbox
from hub.ledger.models import Command, CommandState, WorkItem, utcnow
from hub.workitems import open_work_item, work_item_row


def _system_label(system: str) -> str:
    return catalog.entry(system).domain.capitalize() if system in catalog.SYSTEMS else system


class Settlement:
    """Final states for a batch of commands, written in a few statements by ``flush``. A command
    is an ORM row or any object with the same attributes (dispatch settles plain rows)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._messages: list[dict[str, Any]] = []
        self._items: list[dict[str, Any]] = []
        self._reopened: list[dict[str, Any]] = []
        """Work items opened again if a person already closed them (``open_work_item(reopen=)``)."""

    # -- what happened ----------------------------------------------------------------------------
    def confirm(self, command: Command, *, reference: str | None,
                note_extra: str | None = None) -> None:
        """The back office applied the command."""
        command.state = CommandState.CONFIRMED.value
        command.reference = reference or command.reference
        command.message = None
        command.settled_at = utcnow()
        note = f"{_system_label(command.system)} updated: {command.operation} done"
        if command.reference:
            note += f", reference {command.reference}"
        if note_extra:
            note += f". {note_extra}"
        self._note(command, status="completed", note=note + ".",
                   backoffice_reference=command.reference)

    def reject(self, command: Command, *, reason: str, held: bool = False,
               reference: str | None = None) -> None:
        """The back office refused (or held) the command: a work item for its team, CRM told why."""
        command.state = CommandState.REJECTED.value
        command.held = held
        command.reference = reference or command.reference
        command.message = reason[:1000]
        command.settled_at = utcnow()
        label = _system_label(command.system)
        kind = "held_for_review" if held else "backoffice_rejected"
        what = "held for staff review" if held else "refused"
        self._work_item(command, kind=kind,
                        reason=f"{label} {what} {command.operation} for CRM case "
                               f"{command.case.crm_id}: {reason}")
        self._note(command, status="needs_review", backoffice_reference=command.reference,
                   note=f"Needs back-office review: {label} {what} {command.operation}. "
                        f"Reason: {reason}. The {label.lower()} team has a work item.")

    def fail(self, command: Command, *, reason: str) -> None:
        """Repeated transient failures: stop trying, hand to a person."""
        command.state = CommandState.FAILED.value
        command.message = reason[:1000]
        command.settled_at = utcnow()
        label = _system_label(command.system)
        # A command that fails again after an operator replayed it reopens its closed item.
        self._work_item(command, kind="delivery_failed", reopen=True,
                        reason=f"Could not deliver {command.operation} for CRM case "
                               f"{command.case.crm_id} to {label} after {command.attempts} "
                               f"attempts: {reason}")
        self._note(command, status="needs_review", backoffice_reference=None,
                   note=f"Needs back-office review: {label} could not be updated automatically "
                        f"({command.operation}). The {label.lower()} team has a work item.")

    # -- writing ----------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write the queued CRM notes and work items (a repeat of a dedupe key writes nothing,
        except that a closed item queued to reopen is opened again, with its audit entry)."""
        if self._messages:
            outbox.enqueue_many(self.session, self._messages)
        if self._items:
            open_work_items(self.session, self._items)
        for item in self._reopened:   # rare (a command out of attempts): one by one
            open_work_item(self.session, dedupe_key=item["dedupe_key"], kind=item["kind"],
                           reason=item["reason"], system=item["system"], team=item["team"],
                           case_id=item["case_id"], command_id=item["command_id"], reopen=True)
        self._messages, self._items, self._reopened = [], [], []

    def _note(self, command: Command, *, status: str, note: str,
              backoffice_reference: str | None) -> None:
        self._messages.append(outbox.message_row(
            dedupe_key=f"command:{command.id}:outcome", case=command.case, kind="outcome",
            status=status, note=note, system=command.system, command_id=command.id,
            backoffice_reference=backoffice_reference))

    def _work_item(self, command: Command, *, kind: str, reason: str,
                   reopen: bool = False) -> None:
        (self._reopened if reopen else self._items).append(work_item_row(
            dedupe_key=f"command:{command.id}:{kind}", kind=kind, reason=reason,
            system=command.system, case_id=command.case_id, command_id=command.id))


def open_work_items(session: Session, items: list[dict[str, Any]]) -> int:
    """Insert work items whose dedupe key is new (first of a repeated key wins), in one statement.
    Returns how many."""
    return outbox.insert_new(session, WorkItem.__table__, items)


def confirm(session: Session, command: Command, *, reference: str | None,
            note_extra: str | None = None) -> None:
    """The back office applied the command."""
    settlement = Settlement(session)
    settlement.confirm(command, reference=reference, note_extra=note_extra)
    settlement.flush()


def reject(session: Session, command: Command, *, reason: str, held: bool = False,
           reference: str | None = None) -> None:
    """The back office refused (or held) the command: a work item for its team, CRM told why."""
    settlement = Settlement(session)
    settlement.reject(command, reason=reason, held=held, reference=reference)
    settlement.flush()


def fail(session: Session, command: Command, *, reason: str) -> None:
    """Repeated transient failures: stop trying, hand to a person."""
    settlement = Settlement(session)
    settlement.fail(command, reason=reason)
    settlement.flush()
