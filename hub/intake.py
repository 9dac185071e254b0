"""Intake: record CRM cases in the ledger (idempotent on CRM id + version) and map them to commands."""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from crm_adapter.models import CaseRefused, CrmCase
from crm_adapter.pull import pull_cases
from crm_adapter.rest import CrmClient
from hub import outbox, outcomes, wards
from hub.ledger import bulk
from hub.ledger.db import session_scope
from hub.ledger.models import (Case, CaseState, Command, CommandState, Cursor, InboundRejection,
                               utcnow)
from hub.workitems import OPERATIONS_TEAM, open_work_item, work_item_row
from mappings.loader import InvalidCase, MappingSet, load_mappings

log = logging.getLogger(__name__)
CRM_PULL_CURSOR = "crm_pull"
#: Rows per multi-row INSERT (well inside every backend's limit on bound parameters).
_INSERT_CHUNK = 500


@lru_cache(maxsize=1)
def default_mappings() -> MappingSet:
    """The mappings (the shipped ``mappings/case_types``, or the folder ``HUB_MAPPINGS_DIR``
    names: a deployment's own, e.g. for its own instances), loaded and validated once per process."""
    folder = os.environ.get("HUB_MAPPINGS_DIR")
    return load_mappings(Path(folder) if folder else None)


def record_case(case: CrmCase, *, source: str, url: str | None = None) -> bool:
    """Store a case version once. Returns False when this CRM id + version was already recorded.

    A case the database refuses for its data (a value it cannot hold) raises ``CaseRefused``:
    the caller keeps it as an inbound rejection instead of asking the CRM to retry for ever.
    ``crm_adapter.models`` already refuses such values at the edge, the same on every database;
    this is the last line behind it."""
    try:
        return _insert_one(case, source=source, url=url) is not None
    except (SQLAlchemyError, ValueError, TypeError) as exc:
        refused = _refusal(exc)
        if refused is None:
            raise   # the database is not reachable: the CRM may retry
    raise refused


def _insert_one(case: CrmCase, *, source: str, url: str | None) -> int | None:
    """Store one case version: its new ledger id, or None when it was already recorded. The
    database's own errors are raised as they are (``_refusal`` classifies them)."""
    try:
        with session_scope(url) as session:
            if session.scalar(select(Case.id).where(Case.crm_id == case.crm_id,
                                                    Case.version == case.version)):
                return None
            row = Case(**_case_row(case, source, utcnow()))
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:   # a concurrent delivery of the same version won the race
        return None


def _refusal(exc: BaseException) -> CaseRefused | None:
    """``CaseRefused`` when the database refused a case for its data (a value it cannot hold);
    None when it is not reachable (a later try may succeed)."""
    if isinstance(exc, (sa_exc.DataError, sa_exc.ProgrammingError)):
        return CaseRefused(type(exc.orig).__name__ if exc.orig else type(exc).__name__)
    if isinstance(exc, sa_exc.StatementError):
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return None
        return CaseRefused(type(exc.orig).__name__ if exc.orig else type(exc).__name__)
    if isinstance(exc, (ValueError, TypeError)):   # a value the ledger's types refuse
        return CaseRefused(type(exc).__name__)
    return None


def _case_row(case: CrmCase, source: str, now: datetime) -> dict[str, Any]:
    return {"crm_id": case.crm_id, "version": case.version, "case_type": case.case_type,
            "source": source, "state": CaseState.RECEIVED.value, "payload": case.data,
            "crm_updated_at": case.updated_at, "received_at": now,
            "crm_created_at": case.created_at or (case.updated_at if case.version == 1 else None),
            "channel": case.channel, "ward": wards.ward_of_case(case.data)}


def record_cases(cases: Sequence[CrmCase], *, source: str,
                 url: str | None = None) -> list[int | None]:
    """Store many case versions in one transaction (on PostgreSQL and SQLite one ``INSERT ... ON
    CONFLICT DO NOTHING RETURNING``, sent as multi-row pages, so a concurrent delivery of the same
    version is simply not inserted). One answer per case, in order: the new case's ledger id, or
    None when that CRM id + version was already recorded (or came earlier in ``cases``).

    If the batch fails as a whole (a value the database refuses), the cases are recorded one by one,
    so a bad case fails alone and the others are kept; the first failure is then raised.
    """
    first: dict[tuple[str, int], int] = {}
    for index, case in enumerate(cases):
        first.setdefault((case.crm_id, case.version), index)
    ids: list[int | None] = [None] * len(cases)
    if not first:
        return ids
    try:
        with session_scope(url) as session:
            now = utcnow()
            for start in range(0, len(first), _INSERT_CHUNK):
                chunk = [cases[i] for i in list(first.values())[start:start + _INSERT_CHUNK]]
                for case_id, crm_id, version in _insert_new(session, chunk, source, now):
                    ids[first[(crm_id, version)]] = case_id
    except (SQLAlchemyError, ValueError, TypeError) as exc:
        log.warning("batch of %d cases not recorded together (%s); recording one by one",
                    len(cases), type(exc).__name__)
        failure: Exception | None = None
        for index in first.values():
            try:
                ids[index] = _insert_one(cases[index], source=source, url=url)
            except (SQLAlchemyError, ValueError, TypeError) as one:
                failure = failure or one
        if failure is not None:
            raise failure
    return ids


def _insert_new(session: Session, cases: Sequence[CrmCase], source: str,
                now: datetime) -> list[tuple[int, str, int]]:
    """Insert the cases not yet recorded; ``(id, crm_id, version)`` of each inserted."""
    rows = [_case_row(case, source, now) for case in cases]
    dialect = session.get_bind().dialect.name
    table = Case.__table__
    if dialect in ("postgresql", "sqlite"):
        # executemany of one cached statement; SQLAlchemy sends it as multi-row VALUES pages
        insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = (insert_(table)
                     .on_conflict_do_nothing(index_elements=[table.c.crm_id, table.c.version])
                     .returning(table.c.id, table.c.crm_id, table.c.version))
        return [tuple(row) for row in session.execute(statement, rows)]  # type: ignore[misc]
    known = set(session.execute(select(Case.crm_id, Case.version)
                                .where(Case.crm_id.in_({c.crm_id for c in cases}))).tuples())
    fresh = [row for row in rows if (row["crm_id"], row["version"]) not in known]
    if not fresh:
        return []
    return [tuple(row) for row in session.execute(  # type: ignore[misc]
        insert(table).returning(table.c.id, table.c.crm_id, table.c.version), fresh)]


#: Control characters no database column keeps the same way (NUL above all: PostgreSQL refuses it).
_UNSTORABLE = dict.fromkeys(range(0x00, 0x09)) | {0x0b: None, 0x0c: None} | \
    dict.fromkeys(range(0x0e, 0x20))
MAX_KEPT_BODY = 1_000_000


def _storable_text(data: bytes | str, limit: int) -> str:
    """Text every database keeps alike: valid UTF-8 (bad bytes replaced), control characters
    shown as U+FFFD, at most ``limit`` characters."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.encode("utf-8", "replace").decode("utf-8")   # unpaired surrogates
    return text.translate({k: "\ufffd" for k in _UNSTORABLE})[:limit]


def record_inbound_rejection(*, source: str, delivery_id: str | None, error: str, body: bytes,
                             url: str | None = None) -> None:
    """Keep input we could not read as a case, with a work item for operations."""
    with session_scope(url) as session:
        row = InboundRejection(source=source[:16],
                               delivery_id=_storable_text(delivery_id, 120) if delivery_id else None,
                               error=_storable_text(error, 2000),
                               body=_storable_text(body, MAX_KEPT_BODY), received_at=utcnow())
        session.add(row)
        session.flush()
        open_work_item(session, dedupe_key=f"inbound:{row.id}", kind="unreadable_input",
                       team=OPERATIONS_TEAM,
                       reason=f"A {source} delivery could not be read as a CRM case: "
                              f"{_storable_text(error, 500)}")


class LedgerCursors:
    """crm_adapter.pull.CursorStore backed by the ledger."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url

    def get(self, name: str) -> str | None:
        with session_scope(self.url) as session:
            row = session.get(Cursor, name)
            return row.value if row else None

    def set(self, name: str, value: str) -> None:
        with session_scope(self.url) as session:
            row = session.get(Cursor, name)
            if row is None:
                session.add(Cursor(name=name, value=value, updated_at=utcnow()))
            else:
                row.value = value


def _record_pulled(case: CrmCase, url: str | None) -> bool:
    """Record a pulled case; one the ledger refuses is kept as an inbound rejection (the pull
    goes on: the same page is not read again and again)."""
    try:
        return record_case(case, source="pull", url=url)
    except CaseRefused as exc:
        log.warning("CRM case %s v%s refused by the ledger (%s); kept for operations",
                    case.crm_id, case.version, exc)
        record_inbound_rejection(source="pull", delivery_id=f"pull:{case.crm_id}:v{case.version}",
                                 error=f"the ledger refused the case: {exc}",
                                 body=case.model_dump_json().encode(), url=url)
        return False


class _PageRecorder:
    """Collects a pulled page's cases and records them together (``record_cases``) before the
    pull stores the page's cursor, so a crash never moves the cursor past unrecorded cases."""

    def __init__(self, cursors: LedgerCursors, *, url: str | None) -> None:
        self.cursors, self.url = cursors, url
        self.buffer: list[CrmCase] = []

    def record(self, case: CrmCase) -> None:
        self.buffer.append(case)

    def flush(self) -> None:
        cases, self.buffer = self.buffer, []
        if not cases:
            return
        try:
            record_cases(cases, source="pull", url=self.url)
        except (SQLAlchemyError, ValueError, TypeError):
            # A case the ledger refused (the others are stored): each again on its own, so the
            # refused one is kept as an inbound rejection and the pull goes on; a ledger that is
            # not reachable raises here and the page's cursor is not stored.
            for case in cases:
                _record_pulled(case, self.url)

    # CursorStore, for pull_cases: cases first, then the cursor.
    def get(self, name: str) -> str | None:
        return self.cursors.get(name)

    def set(self, name: str, value: str) -> None:
        self.flush()
        self.cursors.set(name, value)


def pull_from_crm(client: CrmClient, *, url: str | None = None, page_size: int = 200) -> int:
    """Read cases changed since the stored cursor and record them, a page per transaction.
    Returns cases read."""
    pages = _PageRecorder(LedgerCursors(url), url=url)
    try:
        return pull_cases(client, pages, pages.record, cursor_name=CRM_PULL_CURSOR,
                          page_size=page_size,
                          record_invalid=lambda delivery_id, error, raw: record_inbound_rejection(
                              source="pull", delivery_id=delivery_id, error=error,
                              body=raw if isinstance(raw, bytes) else str(raw).encode("utf-8"),
                              url=url))
    finally:
        pages.flush()


@dataclass
class MappingStats:
    mapped: int = 0
    invalid: int = 0
    commands: int = 0
    systems: dict[str, int] = field(default_factory=dict)   # new commands per system


def map_received(*, mappings: MappingSet | None = None, url: str | None = None,
                 limit: int = 1000) -> MappingStats:
    """Turn received cases into commands; bad input becomes an invalid case with a work item."""
    with session_scope(url) as session:
        ids = list(session.scalars(select(Case.id).where(Case.state == CaseState.RECEIVED.value)
                                   .order_by(Case.id).limit(limit)))
    stats = map_cases(ids, mappings=mappings, url=url)
    log.info("mapped %d cases into %d commands; %d invalid", stats.mapped, stats.commands,
             stats.invalid)
    return stats


def map_cases(case_ids: Sequence[int], *, mappings: MappingSet | None = None,
              url: str | None = None, chunk_size: int = 200) -> MappingStats:
    """Map these cases (those still received), ``chunk_size`` cases per transaction.

    Each chunk reads its cases (skipping rows another mapper holds, on PostgreSQL) and the earlier
    commands of their CRM ids in two queries, decides every key in memory and inserts the new
    commands together.
    """
    mappings = mappings or default_mappings()
    stats = MappingStats()
    for start in range(0, len(case_ids), chunk_size):
        with session_scope(url) as session:
            _map_chunk(session, case_ids[start:start + chunk_size], mappings, stats)
    return stats


class _KnownCommands:
    """The commands earlier versions of a chunk's CRM ids asked for, and the keys already used."""

    def __init__(self, session: Session, crm_ids: set[str], keys: set[str]) -> None:
        self.latest: dict[tuple[str, str, str], tuple[str, dict | None]] = {}
        for crm_id, system, operation, key, payload in session.execute(
                select(Case.crm_id, Command.system, Command.operation, Command.key,
                       Command.payload).join(Case)
                .where(Case.crm_id.in_(crm_ids)).order_by(Command.id)):
            self.latest[(crm_id, system, operation)] = (key, payload)
        self.keys = set(session.scalars(select(Command.key).where(Command.key.in_(keys))))

    def key_for_version(self, case: Case, key: str, system: str, operation: str,
                        payload: dict) -> str | None:
        """The key to use for this version's command, or None when nothing new needs sending.

        Keys hash the payload, so an unchanged request keeps its key and is not sent again. But
        when a CRM correction goes back to an earlier value (A, then B, then A again), the back
        office now holds B: A must be sent again, under a key of its own (``<key>.v<version>``).
        """
        latest = self.latest.get((case.crm_id, system, operation))
        if latest is not None and _same_request(*latest, key, payload):
            return None
        if key not in self.keys:
            return key
        suffix = f".v{case.version}"
        return key[:64 - len(suffix)] + suffix

    def add(self, case: Case, key: str, system: str, operation: str, payload: dict) -> None:
        self.latest[(case.crm_id, system, operation)] = (key, payload)
        self.keys.add(key)


def _map_chunk(session: Session, case_ids: Sequence[int], mappings: MappingSet,
               stats: MappingStats) -> None:
    query = (select(Case).where(Case.id.in_(list(case_ids)),
                                Case.state == CaseState.RECEIVED.value).order_by(Case.id))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    cases = list(session.scalars(query))
    if not cases:
        return
    mapped: list[tuple[Case, list[str], list[Any]]] = []
    items: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []   # each case's new state, written together at the end
    for case in cases:
        try:
            systems = mappings.systems_for(case.case_type)
            commands = mappings.apply(case.case_type, case.crm_id, case.version, case.payload or {})
        except InvalidCase as exc:
            item, note, change = _mark_invalid(case, exc, mappings)
            items.append(item)
            notes.append(note)
            changes.append(change)
            stats.invalid += 1
            continue
        mapped.append((case, systems, commands))
    if items:
        outcomes.open_work_items(session, items)
        outbox.enqueue_many(session, notes)
    known = _KnownCommands(session, {case.crm_id for case, _, _ in mapped},
                           {command.key for _, _, commands in mapped for command in commands})
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for case, systems, commands in mapped:
        changes.append({"id": case.id, "state": CaseState.MAPPED.value,
                        "systems": ",".join(systems), "error": case.error})
        for command in commands:
            payload = dict(command.payload)
            key = known.key_for_version(case, command.key, command.system, command.operation,
                                        payload)
            if key is None:
                continue   # an earlier version already asked for exactly this change
            known.add(case, key, command.system, command.operation, payload)
            rows.append({"case_id": case.id, "system": command.system,
                         "operation": command.operation, "key": key, "payload": payload,
                         "state": CommandState.PENDING.value, "held": False, "attempts": 0,
                         "maybe_sent": False, "created_at": now, "updated_at": now})
        stats.mapped += 1
    if rows:
        session.execute(insert(Command), rows)
        stats.commands += len(rows)
        for row in rows:
            stats.systems[row["system"]] = stats.systems.get(row["system"], 0) + 1
    _write_cases(session, cases, changes)


_CASE_CHANGES = ("state", "systems", "error")


def _write_cases(session: Session, cases: Sequence[Case], changes: Sequence[dict[str, Any]]) -> None:
    """The chunk's case rows in one statement (``bulk.update_by_id``); the loaded objects are
    given the same values as committed, so the session does not write them again."""
    bulk.update_by_id(session, Case.__table__, changes, _CASE_CHANGES)
    by_id = {case.id: case for case in cases}
    for change in changes:
        for name in _CASE_CHANGES:
            set_committed_value(by_id[change["id"]], name, change[name])


def _same_request(latest_key: str, latest_payload: dict | None, key: str, payload: dict) -> bool:
    if latest_payload is not None:
        return latest_payload == payload
    base = re.sub(r"\.v\d+$", "", latest_key)   # payload blanked by retention: compare keys
    return base == key[:len(base)]


def _mark_invalid(case: Case, exc: InvalidCase, mappings: MappingSet
                  ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The case's work item, CRM note and new state (invalid), written with the chunk's."""
    try:
        systems = mappings.systems_for(case.case_type)
    except InvalidCase:
        systems = []
    system = systems[0] if systems else None
    change = {"id": case.id, "state": CaseState.INVALID.value,
              "systems": ",".join(systems) or None, "error": str(exc)[:1000]}
    item = work_item_row(
        dedupe_key=f"case:{case.id}:invalid", kind="invalid_case", system=system, case_id=case.id,
        reason=f"CRM case {case.crm_id} (version {case.version}) cannot be sent: {exc}")
    note = outbox.message_row(dedupe_key=f"case:{case.id}:invalid", case=case, kind="invalid",
                              status="needs_review", system=system,
                              note=f"Needs review before it can be sent to the back office: {exc}")
    return item, note, change


@dataclass
class Recorded:
    """A case version recorded at intake: its state and the systems that got new commands."""
    case_id: int
    state: str
    systems: tuple[str, ...] = ()


def record_and_map(case: CrmCase, *, source: str, url: str | None = None,
                   mappings: MappingSet | None = None) -> Recorded | None:
    """Record a case version and map it in the same transaction (the webhook's fast path), so its
    commands exist as soon as the CRM has its answer and no other mapper can see it half done.

    None when this CRM id + version was already recorded. If mapping fails unexpectedly (not bad
    input: that makes an invalid case), the case is recorded ``received`` for the scheduled intake.
    """
    try:
        mappings = mappings or default_mappings()
        with session_scope(url) as session:
            if session.scalar(select(Case.id).where(Case.crm_id == case.crm_id,
                                                    Case.version == case.version)):
                return None
            row = Case(**_case_row(case, source, utcnow()))
            session.add(row)
            session.flush()
            stats = MappingStats()
            _map_chunk(session, [row.id], mappings, stats)   # as the scheduled intake maps it
            recorded = Recorded(case_id=row.id, state=row.state, systems=tuple(sorted(stats.systems)))
        return recorded
    except Exception as exc:   # a race (IntegrityError) or a mapping fault: record only, map later
        log.warning("case %s v%s not mapped at intake (%s); the scheduled intake maps it",
                    case.crm_id, case.version, type(exc).__name__)
    if not record_case(case, source=source, url=url):
        return None
    with session_scope(url) as session:
        case_id = session.scalar(select(Case.id).where(Case.crm_id == case.crm_id,
                                                       Case.version == case.version))
    return Recorded(case_id=int(case_id or 0), state=CaseState.RECEIVED.value)
