"""The hub ledger: what was asked, sent, confirmed and written back, and by whom.

Airflow task state is not the truth (tasks are at-least-once); these rows are. Personal data lives only
in ``Case.payload``, ``Command.payload`` and ``InboundRejection.body``, which retention purges; every
other column holds references, codes and non-personal reasons.
"""
from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, Boolean, DateTime, ForeignKey, Integer, MetaData, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one (some back offices send them) is taken as UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        """MariaDB/MySQL: DATETIME(6), microseconds as on the other databases (migration 0006)."""
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use UTC-aware datetimes")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s"})


class CaseState(str, enum.Enum):
    RECEIVED = "received"   # recorded, not yet mapped
    MAPPED = "mapped"       # commands created
    INVALID = "invalid"     # bad input: kept, written back as needing review, work item opened


class CommandState(str, enum.Enum):
    PENDING = "pending"
    SENDING = "sending"
    AWAITING = "awaiting"   # delivered; the back office answers later (file exchange)
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    FAILED = "failed"       # gave up after repeated transient failures; a work item is open
    CANCELLED = "cancelled"  # a person decided it will not be done (the CRM is told why)


class OutboxState(str, enum.Enum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class WorkItemState(str, enum.Enum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


#: Work-item states a person still has to act on.
OPEN_WORK_ITEM_STATES = (WorkItemState.OPEN.value, WorkItemState.IN_PROGRESS.value)


class Case(Base):
    """A CRM case version as received. Idempotent on (crm_id, version)."""

    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("crm_id", "version", name="uq_cases_crm_id_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crm_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    case_type: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=CaseState.RECEIVED.value, index=True)
    systems: Mapped[str | None] = mapped_column(String(200))
    """Comma-separated system ids the case routes to (set when mapped, or from its case type)."""
    error: Mapped[str | None] = mapped_column(Text)
    """Why the case is invalid: case type and field, never the value."""
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    crm_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    crm_created_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    """When the customer's request was made (the CRM's created time; else its first update time)."""
    channel: Mapped[str | None] = mapped_column(String(16))
    """How the customer came: telephone, face_to_face, web, email, other (from the CRM)."""
    ward: Mapped[str | None] = mapped_column(String(16))
    """Ward code from the case's UPRN or postcode (kept after retention blanks the payload)."""

    commands: Mapped[list["Command"]] = relationship(back_populates="case")


class Command(Base):
    """One back-office operation derived from a case, with its idempotency key and state."""

    __tablename__ = "commands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    system: Mapped[str] = mapped_column(String(64), index=True)
    operation: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=CommandState.PENDING.value, index=True)
    reference: Mapped[str | None] = mapped_column(String(120))
    message: Mapped[str | None] = mapped_column(Text)
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    maybe_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(64), index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    due_by: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    replaces_command_id: Mapped[int | None] = mapped_column(ForeignKey("commands.id"))
    """Set on a corrected resend (fix and retry): the refused command this one replaces."""

    case: Mapped[Case] = relationship(back_populates="commands")
    attempt_log: Mapped[list["Attempt"]] = relationship(back_populates="command",
                                                        order_by="Attempt.id")


class Attempt(Base):
    """One try at sending a command: when, what came of it, the error class. No personal data."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    command_id: Mapped[int] = mapped_column(ForeignKey("commands.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    outcome: Mapped[str] = mapped_column(String(16))
    error_class: Mapped[str | None] = mapped_column(String(40))
    code: Mapped[str | None] = mapped_column(String(80))
    message: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(250))

    command: Mapped[Command] = relationship(back_populates="attempt_log")


class OutboxMessage(Base):
    """A write-back to the CRM, sent at least once and applied once (the CRM dedupes on its key)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    command_id: Mapped[int | None] = mapped_column(ForeignKey("commands.id"))
    crm_id: Mapped[str] = mapped_column(String(64))
    system: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    """``outcome`` (first answer), ``update`` (later back-office change) or ``invalid``."""
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    backoffice_reference: Mapped[str | None] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.PENDING.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class WorkItem(Base):
    """Something a machine could not finish, for the owning back-office team."""

    __tablename__ = "work_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    team: Mapped[str] = mapped_column(String(40), index=True)
    system: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    command_id: Mapped[int | None] = mapped_column(ForeignKey("commands.id"))
    state: Mapped[str] = mapped_column(String(16), default=WorkItemState.OPEN.value, index=True)
    assigned_to: Mapped[str | None] = mapped_column(String(80))
    resolution: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolution_code: Mapped[str | None] = mapped_column(String(40))
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    """From the kind's SLA (desk configuration) when the item opens."""
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Cursor(Base):
    """Where a source was read up to (CRM pull cursor, status-sync times)."""

    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


class ConnectionCheck(Base):
    """The last connection check of each back-office instance (``hub check``): reached and
    authenticated, or the classified error (class, code, a message without personal data)."""

    __tablename__ = "connection_checks"

    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ok: Mapped[bool] = mapped_column(Boolean)
    error_class: Mapped[str | None] = mapped_column(String(40))
    code: Mapped[str | None] = mapped_column(String(80))
    message: Mapped[str | None] = mapped_column(String(300))
    duration_ms: Mapped[int] = mapped_column(Integer)


class WebhookDelivery(Base):
    """Webhook delivery ids already accepted (replay defence)."""

    __tablename__ = "webhook_deliveries"

    delivery_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class InboundRejection(Base):
    """Input the hub could not even read as a case (a signed webhook with a bad body): kept for a person."""

    __tablename__ = "inbound_rejections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[str | None] = mapped_column(String(120))
    error: Mapped[str] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class BackofficeUpdate(Base):
    """A back-office change already taken into the ledger (each applied once)."""

    __tablename__ = "backoffice_updates"
    __table_args__ = (UniqueConstraint("system", "update_id", name="uq_backoffice_updates_system"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system: Mapped[str] = mapped_column(String(64))
    update_id: Mapped[str] = mapped_column(String(160))
    reference: Mapped[str] = mapped_column(String(120))
    command_id: Mapped[int | None] = mapped_column(ForeignKey("commands.id"))
    status: Mapped[str] = mapped_column(String(40))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Account(Base):
    """A member of staff who signs in to the hub's pages. Passwords are argon2 hashes."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    """``member`` (of teams), ``operations`` or ``admin``."""
    teams: Mapped[str] = mapped_column(String(200), default="")
    """Comma-separated teams whose work items the account sees and acts on."""
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    password_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class WebSession(Base):
    """A signed-in browser. The id is the SHA-256 of the cookie value, so the table holds no token."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class LoginAttempt(Base):
    """One try at signing in (for rate limiting). ``client`` is a digest, never the address."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), index=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEntry(Base):
    """Who did what, when, to what, with the state before and after. Codes and references only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(120))
    """``work_item:12``, ``command:5``, ``account:jo.bloggs``..."""
    work_item_id: Mapped[int | None] = mapped_column(ForeignKey("work_items.id"), index=True)
    command_id: Mapped[int | None] = mapped_column(ForeignKey("commands.id"), index=True)
    state_before: Mapped[str | None] = mapped_column(String(40))
    state_after: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(String(500))


class WorkItemComment(Base):
    """A note a member of staff adds to a work item (shown to the owning team only)."""

    __tablename__ = "work_item_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    work_item_id: Mapped[int] = mapped_column(ForeignKey("work_items.id"), index=True)
    author: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    body: Mapped[str] = mapped_column(Text)


class ReconcileRun(Base):
    """One reconciliation run for one back-office system (``hub.reconcile.engine``)."""

    __tablename__ = "reconcile_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="running")
    """``running``, ``finished`` or ``failed``."""
    ledger_records: Mapped[int] = mapped_column(Integer, default=0)
    backoffice_records: Mapped[int] = mapped_column(Integer, default=0)
    crm_records: Mapped[int] = mapped_column(Integer, default=0)
    findings_by_class: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """Finding class code -> how many this run found (new or already known)."""
    new_findings: Mapped[int] = mapped_column(Integer, default=0)
    healed: Mapped[int] = mapped_column(Integer, default=0)
    work_items_opened: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    """Why the run failed or a side was left out: error class and code, never data."""
    run_id: Mapped[str | None] = mapped_column(String(250))
    """The Airflow run (or ``cli``)."""


class ReconcileFinding(Base):
    """One finding of a run: the class, the record and the fields named; never the values."""

    __tablename__ = "reconcile_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconcile_runs.id"), index=True)
    system: Mapped[str] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(32), index=True)
    key: Mapped[str] = mapped_column(String(200))
    """Command key (or, for ``writeback_missing`` and ``unmapped_case``, the CRM case id)."""
    reference: Mapped[str | None] = mapped_column(String(120))
    crm_id: Mapped[str | None] = mapped_column(String(64))
    command_id: Mapped[int | None] = mapped_column(Integer)
    case_id: Mapped[int | None] = mapped_column(Integer)
    fields: Mapped[str] = mapped_column(String(500), default="")
    detail: Mapped[str] = mapped_column(String(40), default="")
    identity: Mapped[str] = mapped_column(String(32), index=True)
    """The same drift seen again has the same identity (a digest; ``Finding.identity``)."""
    is_new: Mapped[bool] = mapped_column(Boolean, default=True)
    outcome: Mapped[str] = mapped_column(String(24))
    """``healed``, ``work_item``, ``present_on_lookup``, ``heal_failed``, ``reported``..."""
    work_item_id: Mapped[int | None] = mapped_column(ForeignKey("work_items.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
