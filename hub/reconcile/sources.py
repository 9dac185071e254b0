"""The I/O at the comparison's edges: each side as a stream in the order the core merges it.

- the ledger: streamed SELECTs (``yield_per``), ordered in code-point order (a binary collation
  on PostgreSQL and MariaDB, as SQLite and Python order strings), so the merge with the other
  sides is right whatever the database's default collation;
- the back office: ``Connector.records()``, sorted by key through the external sort unless the
  connector says ``records_sorted_by_key``;
- the CRM: ``CrmClient.iter_case_states()`` (already in ``crm_id`` order; checked by the core).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import BackOfficeRecord, Connector
from connectors.fields import flat_fields
from hub.ledger.models import Case, CaseState, Command, OutboxMessage, OutboxState
from hub.reconcile import core
from hub.reconcile.extsort import DEFAULT_RUN_SIZE, sorted_stream

YIELD_PER = 1_000
_BINARY = {"postgresql": 'C', "mysql": "utf8mb4_bin", "mariadb": "utf8mb4_bin"}


def _ordered(session: Session, column: Any) -> Any:
    collation = _BINARY.get(session.get_bind().dialect.name)
    return column.collate(collation) if collation else column


def ledger_commands(session: Session, system: str,
                    operations: Mapping[str, type[BaseModel]] | None = None,
                    ) -> Iterator[core.LedgerCommand]:
    """The system's commands in ascending key order; for confirmed ones the payload as the back
    office's records name it (``flat_fields`` of the payload validated by its operation model,
    when ``operations`` knows it)."""
    query = (select(Command.key, Command.id, Command.case_id, Case.crm_id, Command.operation,
                    Command.state, Command.reference, Command.payload, Command.claimed_at,
                    Command.due_by, Command.settled_at)
             .join(Case, Case.id == Command.case_id)
             .where(Command.system == system)
             .order_by(_ordered(session, Command.key))
             .execution_options(yield_per=YIELD_PER))
    for row in session.execute(query):
        yield core.LedgerCommand(row.key, row.id, row.case_id, row.crm_id, row.operation,
                                 row.state, row.reference,
                                 _as_sent(row.operation, row.payload, operations)
                                 if row.state == core.CONFIRMED else None,
                                 row.claimed_at, row.due_by, row.settled_at)


def _as_sent(operation: str, payload: dict[str, Any] | None,
             operations: Mapping[str, type[BaseModel]] | None) -> dict[str, Any] | None:
    if payload is None:
        return None
    model = (operations or {}).get(operation)
    if model is not None:
        try:
            return flat_fields(model.model_validate(payload))
        except ValidationError:
            pass    # compared as stored (the back office refused or corrected it anyway)
    return flat_fields(payload)


def ledger_messages(session: Session, system: str) -> Iterator[core.LedgerMessage]:
    """Write-backs (pending or delivered) of every case the system wrote back to, in CRM id then
    outbox id order: a case's last message is what its CRM page should show."""
    touched = select(OutboxMessage.crm_id).where(OutboxMessage.system == system)
    query = (select(OutboxMessage.crm_id, OutboxMessage.id, OutboxMessage.case_id,
                    OutboxMessage.command_id, OutboxMessage.system, OutboxMessage.status,
                    OutboxMessage.backoffice_reference, OutboxMessage.state,
                    OutboxMessage.created_at)
             .where(OutboxMessage.state.in_([OutboxState.PENDING.value, OutboxState.SENT.value]),
                    OutboxMessage.crm_id.in_(touched))
             .order_by(_ordered(session, OutboxMessage.crm_id), OutboxMessage.id)
             .execution_options(yield_per=YIELD_PER))
    for row in session.execute(query):
        yield core.LedgerMessage(row.crm_id, row.id, row.case_id, row.command_id, row.system,
                                 row.status, row.backoffice_reference,
                                 row.state == OutboxState.SENT.value, row.created_at)


def received_cases(session: Session, system: str,
                   systems_of: Any = None) -> Iterator[core.LedgerCase]:
    """Cases still ``received`` that route to ``system`` (by the case's systems, else by its
    case type's mapping through ``systems_of(case_type)``)."""
    query = (select(Case.id, Case.crm_id, Case.state, Case.received_at, Case.systems,
                    Case.case_type)
             .where(Case.state == CaseState.RECEIVED.value).order_by(Case.id)
             .execution_options(yield_per=YIELD_PER))
    for row in session.execute(query):
        routes = row.systems.split(",") if row.systems else _systems(systems_of, row.case_type)
        if system in routes:
            yield core.LedgerCase(row.id, row.crm_id, row.state, row.received_at)


def _systems(systems_of: Any, case_type: str) -> list[str]:
    if systems_of is None:
        return []
    try:
        return list(systems_of(case_type))
    except Exception:   # an unknown case type routes nowhere (intake marks it invalid)
        return []


def backoffice_records(connector: Connector, *, page_size: int | None = None,
                       run_size: int = DEFAULT_RUN_SIZE,
                       tmp_dir: str | None = None) -> Iterator[BackOfficeRecord]:
    """The back office's records in ascending key order (records without a key last), read in
    the connector's own page size unless ``page_size`` is given (back offices cap it)."""
    records = (connector.records() if page_size is None
               else connector.records(page_size=page_size))
    if type(connector).records_sorted_by_key:
        return records
    return sorted_stream(records, _record_order, run_size=run_size, tmp_dir=tmp_dir)


def _record_order(record: BackOfficeRecord) -> tuple[bool, str]:
    return (record.key is None, record.key or "")


def crm_views(states: Any) -> Iterator[core.CrmView]:
    """``CrmCaseState``s (or anything with the same attributes) as the core's ``CrmView``."""
    for state in states:
        yield core.CrmView(state.crm_id, state.status, state.backoffice_reference,
                           state.backoffice_system)
