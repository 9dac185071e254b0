"""Is the ledger consistent? Checks run after a restore, an upgrade, or whenever an operator asks.

Each check looks for rows in a state the hub never leaves them in (a command settled without its
CRM write-back, an awaiting answer without a due time, a row pointing at nothing), for a schema
that differs from the hub's models, and on PostgreSQL for id sequences behind the ids already used
(the classic restore mistake: the next insert would collide). Findings carry counts and row ids,
never payload values. ``hub check`` prints them and exits non-zero when there are any.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from hub.ledger import db
from hub.ledger.models import (Attempt, BackofficeUpdate, Base, Case, CaseState, Command,
                               CommandState, OutboxMessage, OutboxState, WorkItem, WorkItemState)

SAMPLE = 10
"""Row ids shown per finding."""

SETTLED = (CommandState.CONFIRMED.value, CommandState.REJECTED.value, CommandState.FAILED.value)
COUNTED_TABLES = ("cases", "commands", "attempts", "outbox", "work_items", "backoffice_updates",
                  "cursors", "webhook_deliveries", "inbound_rejections")


@dataclass(frozen=True)
class Finding:
    """One kind of inconsistency: a code, what it means, how many rows, some of their ids."""

    code: str
    message: str
    count: int = 0
    ids: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f" ({self.count} rows; e.g. {', '.join(self.ids)})" if self.ids else ""
        return f"{self.code}: {self.message}{where}"


@dataclass
class Report:
    """What ``check`` found, plus the row counts per table (to compare a restore with its source)."""

    revision: str | None = None
    head: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.findings


def head_revision() -> str:
    """The newest Alembic revision this build of the hub knows."""
    heads = ScriptDirectory.from_config(db.alembic_config(db.DEFAULT_URL)).get_heads()
    return ",".join(sorted(heads))


def check(url: str | None = None) -> Report:
    """Run every check against the ledger at ``url`` (default ``HUB_DATABASE_URL``)."""
    report = Report(head=head_revision())
    with db.engine(url).connect() as conn:
        report.revision = _current_revision(conn)
        if report.revision != report.head:
            report.findings.append(Finding(
                "schema-revision", f"ledger schema is at {report.revision or 'no revision'}, this "
                f"hub expects {report.head}: run `hub upgrade`"))
            return report   # the other checks assume the current schema
        report.findings.extend(_schema_drift(conn))
        report.counts = {name: int(conn.scalar(sa.text(f"SELECT count(*) FROM {name}")) or 0)
                         for name in COUNTED_TABLES}
        for finding in _row_checks(conn):
            report.findings.append(finding)
        if conn.dialect.name == "postgresql":
            report.findings.extend(_sequences_behind(conn))
    return report


def _current_revision(conn: Connection) -> str | None:
    heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads)) or None


def _schema_drift(conn: Connection) -> list[Finding]:
    """Tables, columns, indexes or constraints that differ from the hub's models."""
    diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    if not diffs:
        return []
    described = [_describe_diff(d) for d in diffs]
    return [Finding("schema-drift", "the ledger's tables differ from the hub's models "
                    "(a partial restore, or a hand-made change)", len(described),
                    tuple(described[:SAMPLE]))]


def _describe_diff(diff: object) -> str:
    first = diff[0] if isinstance(diff, list) and diff else diff
    if isinstance(first, tuple) and first:
        names = [getattr(part, "name", None) for part in first[1:] if hasattr(part, "name")]
        return f"{first[0]} {'.'.join(n for n in names if n) or ''}".strip()
    return str(first)[:120]


def _ids(conn: Connection, query: sa.Select) -> tuple[int, list[str]]:
    """How many rows ``query`` (selecting one id column) finds, and the first few ids."""
    count = int(conn.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)
    if not count:
        return 0, []
    sample = conn.scalars(query.order_by(sa.text("1")).limit(SAMPLE))
    return count, [str(v) for v in sample]


def _missing(column: sa.ColumnElement, target: sa.ColumnElement) -> sa.ColumnElement[bool]:
    """``column`` is set but no row of ``target``'s table has that id."""
    return sa.and_(column.is_not(None), ~sa.exists().where(target == column))


def _outcome_message_for(command_id: sa.ColumnElement) -> sa.Exists:
    return sa.exists().where(OutboxMessage.command_id == command_id, OutboxMessage.kind == "outcome")


def _work_item_for(command_id: sa.ColumnElement, kinds: tuple[str, ...]) -> sa.Exists:
    return sa.exists().where(WorkItem.command_id == command_id, WorkItem.kind.in_(kinds))


def _checks() -> Iterator[tuple[str, str, Callable[[], sa.Select]]]:
    """(code, meaning, query selecting the offending ids) for each row-level rule."""
    command_states = [s.value for s in CommandState]
    yield ("command-state", f"commands in a state the hub does not know (known: "
           f"{', '.join(command_states)})",
           lambda: sa.select(Command.id).where(Command.state.not_in(command_states)))
    yield ("case-state", "cases in a state the hub does not know",
           lambda: sa.select(Case.id).where(Case.state.not_in([s.value for s in CaseState])))
    yield ("outbox-state", "write-backs in a state the hub does not know",
           lambda: sa.select(OutboxMessage.id).where(
               OutboxMessage.state.not_in([s.value for s in OutboxState])))
    yield ("work-item-state", "work items in a state the hub does not know",
           lambda: sa.select(WorkItem.id).where(
               WorkItem.state.not_in([s.value for s in WorkItemState])))
    yield ("command-orphan", "commands whose case is missing",
           lambda: sa.select(Command.id).where(_missing(Command.case_id, Case.id)))
    yield ("attempt-orphan", "attempts whose command is missing",
           lambda: sa.select(Attempt.id).where(_missing(Attempt.command_id, Command.id)))
    yield ("outbox-orphan", "write-backs whose case or command is missing",
           lambda: sa.select(OutboxMessage.id).where(sa.or_(
               _missing(OutboxMessage.case_id, Case.id),
               _missing(OutboxMessage.command_id, Command.id))))
    yield ("work-item-orphan", "work items whose case or command is missing",
           lambda: sa.select(WorkItem.id).where(sa.or_(
               _missing(WorkItem.case_id, Case.id), _missing(WorkItem.command_id, Command.id))))
    yield ("update-orphan", "back-office updates whose command is missing",
           lambda: sa.select(BackofficeUpdate.id).where(
               _missing(BackofficeUpdate.command_id, Command.id)))
    yield ("sending-unclaimed", "commands marked sending without a claim token and time: no "
           "lease would ever expire, so they would never be sent",
           lambda: sa.select(Command.id).where(
               Command.state == CommandState.SENDING.value,
               sa.or_(Command.claim_token.is_(None), Command.claimed_at.is_(None))))
    yield ("awaiting-undue", "commands awaiting an answer without a due time: an overdue "
           "answer would never open a work item",
           lambda: sa.select(Command.id).where(Command.state == CommandState.AWAITING.value,
                                               Command.due_by.is_(None)))
    yield ("settled-untimed", "settled commands without a settled time",
           lambda: sa.select(Command.id).where(Command.state.in_(SETTLED),
                                               Command.settled_at.is_(None)))
    yield ("settled-unreported", "settled commands with no outcome write-back for the CRM",
           lambda: sa.select(Command.id).where(Command.state.in_(SETTLED),
                                               ~_outcome_message_for(Command.id)))
    yield ("rejected-without-work-item", "rejected commands with no work item for their team",
           lambda: sa.select(Command.id).where(
               Command.state == CommandState.REJECTED.value,
               ~_work_item_for(Command.id, ("backoffice_rejected", "held_for_review"))))
    yield ("failed-without-work-item", "failed commands with no delivery_failed work item",
           lambda: sa.select(Command.id).where(
               Command.state == CommandState.FAILED.value,
               ~_work_item_for(Command.id, ("delivery_failed",))))
    yield ("invalid-case-unexplained", "invalid cases without a reason or a work item",
           lambda: sa.select(Case.id).where(Case.state == CaseState.INVALID.value, sa.or_(
               Case.error.is_(None),
               ~sa.exists().where(WorkItem.case_id == Case.id, WorkItem.kind == "invalid_case"))))
    yield ("outbox-sent-untimed", "write-backs marked sent without a sent time",
           lambda: sa.select(OutboxMessage.id).where(
               OutboxMessage.state == OutboxState.SENT.value, OutboxMessage.sent_at.is_(None)))
    yield ("work-item-closed-untimed", "work items done without a closing time",
           lambda: sa.select(WorkItem.id).where(WorkItem.state == WorkItemState.DONE.value,
                                                WorkItem.closed_at.is_(None)))


def _row_checks(conn: Connection) -> Iterator[Finding]:
    for code, message, query in _checks():
        count, ids = _ids(conn, query())
        if count:
            yield Finding(code, message, count, tuple(ids))


def id_sequences(conn: Connection) -> Iterator[tuple[sa.Table, str]]:
    """PostgreSQL: each ledger table with an integer ``id`` and the sequence that numbers it."""
    for table in Base.metadata.sorted_tables:
        if "id" not in table.c or not isinstance(table.c.id.type, sa.Integer):
            continue
        sequence = conn.scalar(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"),
                               {"t": table.name})
        if sequence:
            yield table, sequence


def _sequences_behind(conn: Connection) -> list[Finding]:
    """PostgreSQL: id sequences whose next value is already used (inserts would collide)."""
    behind = []
    for table, sequence in id_sequences(conn):
        last, called = conn.execute(sa.text(f"SELECT last_value, is_called FROM {sequence}")).one()
        next_value = last + 1 if called else last
        used = conn.scalar(sa.select(sa.func.max(table.c.id)))
        if used is not None and next_value <= used:
            behind.append(f"{table.name} (next {next_value}, highest id {used})")
    if not behind:
        return []
    return [Finding("sequence-behind", "id sequences behind the ids in use: the next insert "
                    "would fail; run `hub restored`", len(behind), tuple(behind))]
