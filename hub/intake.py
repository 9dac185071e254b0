"""Intake: record CRM cases in the ledger (idempotent on CRM id + version) and map them to commands."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_adapter.models import CaseRefused, CrmCase
from crm_adapter.pull import pull_cases
from crm_adapter.rest import CrmClient
from hub import outbox, wards
from hub.ledger.db import session_scope
from hub.ledger.models import Case, CaseState, Command, Cursor, InboundRejection, utcnow
from hub.workitems import OPERATIONS_TEAM, open_work_item
from mappings.loader import InvalidCase, MappingSet, load_mappings

log = logging.getLogger(__name__)
CRM_PULL_CURSOR = "crm_pull"


@lru_cache(maxsize=1)
def default_mappings() -> MappingSet:
    """The shipped mappings, loaded and validated once per process."""
    return load_mappings()


def record_case(case: CrmCase, *, source: str, url: str | None = None) -> bool:
    """Store a case version once. Returns False when this CRM id + version was already recorded.

    A case the database refuses for its data (a value it cannot hold) raises ``CaseRefused``:
    the caller keeps it as an inbound rejection instead of asking the CRM to retry for ever.
    ``crm_adapter.models`` already refuses such values at the edge, the same on every database;
    this is the last line behind it."""
    try:
        with session_scope(url) as session:
            if session.scalar(select(Case.id).where(Case.crm_id == case.crm_id,
                                                    Case.version == case.version)):
                return False
            session.add(Case(crm_id=case.crm_id, version=case.version, case_type=case.case_type,
                             source=source, state=CaseState.RECEIVED.value, payload=case.data,
                             crm_updated_at=case.updated_at, received_at=utcnow(),
                             crm_created_at=case.created_at or (case.updated_at if case.version == 1
                                                                else None),
                             channel=case.channel, ward=wards.ward_of_case(case.data)))
        return True
    except IntegrityError:   # a concurrent delivery of the same version won the race
        return False
    except (sa_exc.DataError, sa_exc.ProgrammingError) as exc:  # value the database cannot hold
        refused = CaseRefused(f"{type(exc.orig).__name__ if exc.orig else type(exc).__name__}")
    except sa_exc.StatementError as exc:
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            raise   # the database is not reachable: the CRM may retry
        refused = CaseRefused(type(exc.orig).__name__ if exc.orig else type(exc).__name__)
    except (ValueError, TypeError) as exc:   # a value the ledger's types refuse
        refused = CaseRefused(type(exc).__name__)
    raise refused


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


def pull_from_crm(client: CrmClient, *, url: str | None = None, page_size: int = 200) -> int:
    """Read cases changed since the stored cursor and record them. Returns cases read."""
    return pull_cases(client, LedgerCursors(url), lambda c: _record_pulled(c, url),
                      cursor_name=CRM_PULL_CURSOR, page_size=page_size,
                      record_invalid=lambda delivery_id, error, raw: record_inbound_rejection(
                          source="pull", delivery_id=delivery_id, error=error,
                          body=raw if isinstance(raw, bytes) else str(raw).encode("utf-8"), url=url))


@dataclass
class MappingStats:
    mapped: int = 0
    invalid: int = 0
    commands: int = 0
    systems: dict[str, int] = field(default_factory=dict)   # new commands per system


def map_received(*, mappings: MappingSet | None = None, url: str | None = None,
                 limit: int = 1000) -> MappingStats:
    """Turn received cases into commands; bad input becomes an invalid case with a work item."""
    mappings = mappings or default_mappings()
    stats = MappingStats()
    with session_scope(url) as session:
        ids = list(session.scalars(select(Case.id).where(Case.state == CaseState.RECEIVED.value)
                                   .order_by(Case.id).limit(limit)))
    for case_id in ids:
        with session_scope(url) as session:
            case = session.get(Case, case_id)
            if case is None or case.state != CaseState.RECEIVED.value:
                continue
            _map_one(session, case, mappings, stats)
    log.info("mapped %d cases into %d commands; %d invalid", stats.mapped, stats.commands,
             stats.invalid)
    return stats


def _map_one(session: Session, case: Case, mappings: MappingSet, stats: MappingStats) -> None:
    try:
        systems = mappings.systems_for(case.case_type)
        commands = mappings.apply(case.case_type, case.crm_id, case.version, case.payload or {})
    except InvalidCase as exc:
        _mark_invalid(session, case, exc, mappings)
        stats.invalid += 1
        return
    case.systems = ",".join(systems)
    for command in commands:
        key = _key_for_version(session, case, command.key, command.system, command.operation,
                               dict(command.payload))
        if key is None:
            continue   # an earlier version already asked for exactly this change
        session.add(Command(case_id=case.id, system=command.system, operation=command.operation,
                            key=key, payload=dict(command.payload), created_at=utcnow()))
        stats.commands += 1
        stats.systems[command.system] = stats.systems.get(command.system, 0) + 1
    case.state = CaseState.MAPPED.value
    stats.mapped += 1


def _key_for_version(session: Session, case: Case, key: str, system: str, operation: str,
                     payload: dict) -> str | None:
    """The key to use for this version's command, or None when nothing new needs sending.

    Keys hash the payload, so an unchanged request keeps its key and is not sent again. But when
    a CRM correction goes back to an earlier value (A, then B, then A again), the back office now
    holds B: A must be sent again, under a key of its own (``<key>.v<version>``).
    """
    latest = session.scalar(
        select(Command).join(Case).where(Case.crm_id == case.crm_id, Command.system == system,
                                         Command.operation == operation)
        .order_by(Command.id.desc()).limit(1))
    if latest is not None and _same_request(latest, key, payload):
        return None
    if not session.scalar(select(Command.id).where(Command.key == key)):
        return key
    suffix = f".v{case.version}"
    return key[:64 - len(suffix)] + suffix


def _same_request(command: Command, key: str, payload: dict) -> bool:
    if command.payload is not None:
        return command.payload == payload
    base = re.sub(r"\.v\d+$", "", command.key)   # payload blanked by retention: compare keys
    return base == key[:len(base)]


def _mark_invalid(session: Session, case: Case, exc: InvalidCase, mappings: MappingSet) -> None:
    try:
        systems = mappings.systems_for(case.case_type)
    except InvalidCase:
        systems = []
    system = systems[0] if systems else None
    case.state = CaseState.INVALID.value
    case.systems = ",".join(systems) or None
    case.error = str(exc)[:1000]
    open_work_item(session, dedupe_key=f"case:{case.id}:invalid", kind="invalid_case", system=system,
                   case_id=case.id,
                   reason=f"CRM case {case.crm_id} (version {case.version}) cannot be sent: {exc}")
    outbox.enqueue(session, dedupe_key=f"case:{case.id}:invalid", case=case, kind="invalid",
                   status="needs_review", system=system,
                   note=f"Needs review before it can be sent to the back office: {exc}")


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
            row = Case(crm_id=case.crm_id, version=case.version, case_type=case.case_type,
                       source=source, state=CaseState.RECEIVED.value, payload=case.data,
                       crm_updated_at=case.updated_at, received_at=utcnow())
            session.add(row)
            session.flush()
            stats = MappingStats()
            _map_one(session, row, mappings, stats)
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
