"""What the hub does when a command reaches a final state: ledger, CRM note, work item.

Shared by dispatch (synchronous answers) and status sync (answers that come later). Notes say what
happened in words a contact-centre agent can pass on, with references and reasons, no personal data.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from connectors import catalog
from hub import outbox
from hub.ledger.models import Command, CommandState, utcnow
from hub.workitems import open_work_item


def _system_label(system: str) -> str:
    return catalog.entry(system).domain.capitalize() if system in catalog.SYSTEMS else system


def confirm(session: Session, command: Command, *, reference: str | None,
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
    outbox.enqueue(session, dedupe_key=f"command:{command.id}:outcome", case=command.case,
                   kind="outcome", status="completed", note=note + ".", system=command.system,
                   command_id=command.id, backoffice_reference=command.reference)


def reject(session: Session, command: Command, *, reason: str, held: bool = False,
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
    open_work_item(session, dedupe_key=f"command:{command.id}:{kind}", kind=kind,
                   system=command.system, case_id=command.case_id, command_id=command.id,
                   reason=f"{label} {what} {command.operation} for CRM case {command.case.crm_id}: "
                          f"{reason}")
    outbox.enqueue(session, dedupe_key=f"command:{command.id}:outcome", case=command.case,
                   kind="outcome", status="needs_review", system=command.system,
                   command_id=command.id, backoffice_reference=command.reference,
                   note=f"Needs back-office review: {label} {what} {command.operation}. "
                        f"Reason: {reason}. The {label.lower()} team has a work item.")


def fail(session: Session, command: Command, *, reason: str) -> None:
    """Repeated transient failures: stop trying, hand to a person."""
    command.state = CommandState.FAILED.value
    command.message = reason[:1000]
    command.settled_at = utcnow()
    label = _system_label(command.system)
    open_work_item(session, dedupe_key=f"command:{command.id}:delivery_failed", kind="delivery_failed",
                   system=command.system, case_id=command.case_id, command_id=command.id, reopen=True,
                   reason=f"Could not deliver {command.operation} for CRM case {command.case.crm_id} "
                          f"to {label} after {command.attempts} attempts: {reason}")
    outbox.enqueue(session, dedupe_key=f"command:{command.id}:outcome", case=command.case,
                   kind="outcome", status="needs_review", system=command.system,
                   command_id=command.id,
                   note=f"Needs back-office review: {label} could not be updated automatically "
                        f"({command.operation}). The {label.lower()} team has a work item.")
