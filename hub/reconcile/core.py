"""The pure comparison: sorted, keyed streams in, findings out. No I/O, no clock, no database.

Two merge-joins per system, each holding one key's rows at a time:

1. ``compare_backoffice``: the ledger's commands (ascending key) against the back office's
   records (ascending key): ``missing_in_backoffice``, ``unknown_in_backoffice``,
   ``field_mismatch`` (per field) and ``stuck``; it hands each matched record's CRM status to
   ``observe`` (a ``StatusSeen``) for the second join.
2. ``compare_crm``: the ledger's CRM write-backs (outbox, ascending CRM id then outbox id), the
   CRM's case states and the ``StatusSeen``s (both ascending CRM id): ``writeback_missing`` and
   ``status_not_in_crm``.

``unmapped_cases`` is a filter over the ledger's cases. Values are compared here and never leave:
findings carry field names and a digest. The row types are named tuples (cheap to spill).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from hub.reconcile.findings import (STUCK_AWAITING, STUCK_SENDING, Finding, FindingClass,
                                    digest)

CONFIRMED = "confirmed"
SENDING = "sending"
AWAITING = "awaiting"
RECEIVED = "received"


class LedgerCommand(NamedTuple):
    """A command as the ledger holds it (the comparison's view)."""

    key: str
    command_id: int
    case_id: int
    crm_id: str
    operation: str
    state: str
    reference: str | None = None
    payload: Mapping[str, Any] | None = None
    claimed_at: datetime | None = None
    due_by: datetime | None = None
    settled_at: datetime | None = None
    """As read: healing changes the command only if it is still so (another run may have)."""


class LedgerMessage(NamedTuple):
    """A CRM write-back in the outbox (``delivered``: the CRM acknowledged it)."""

    crm_id: str
    outbox_id: int
    case_id: int
    command_id: int | None
    system: str | None
    status: str
    reference: str | None
    delivered: bool
    created_at: datetime | None = None


class CrmView(NamedTuple):
    """A CRM case's status and the back-office reference the hub wrote back to it."""

    crm_id: str
    status: str
    backoffice_reference: str | None = None
    backoffice_system: str | None = None


class StatusSeen(NamedTuple):
    """A back-office record's CRM status, for the CRM join (by CRM id)."""

    crm_id: str
    key: str
    command_id: int
    case_id: int
    reference: str
    crm_status: str
    changed_at: datetime | None


class LedgerCase(NamedTuple):
    case_id: int
    crm_id: str
    state: str
    received_at: datetime | None


@dataclass
class Tally:
    """Records compared per side."""

    ledger: int = 0
    backoffice: int = 0
    backoffice_without_key: int = 0
    crm: int = 0
    writebacks: int = 0
    cases: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass(frozen=True)
class Policy:
    """When a command counts as stuck (times given by the caller: the core reads no clock)."""

    now: datetime
    lease: timedelta = timedelta(minutes=15)
    unmapped_after: timedelta = timedelta(hours=1)
    ignore_fields: frozenset[str] = field(default_factory=frozenset)


def crm_status_for(word: str | None) -> str | None:
    """The CRM status the hub writes for a back-office CRM status (as status sync does)."""
    if word is None:
        return None
    lowered = word.strip().lower()
    if lowered in ("completed", "closed"):
        return "completed"
    if lowered in ("rejected", "needs_review", "in_progress"):
        return lowered
    return "in_progress"


def same_value(sent: Any, held: Any) -> bool:
    """Equal after the forgiving normalisations a back office applies (case, spaces, numbers)."""
    if sent == held:
        return True
    if sent is None or held is None:
        return False
    return _norm(sent) == _norm(held)


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split()).casefold()


def _keyed(records: Iterable[Any], tally: Tally) -> Iterator[Any]:
    for record in records:
        if record.key is None:
            tally.backoffice_without_key += 1
            continue
        tally.backoffice += 1
        yield record


def compare_backoffice(system: str, ledger: Iterable[LedgerCommand], records: Iterable[Any],
                       policy: Policy, *, tally: Tally | None = None,
                       observe: Callable[[StatusSeen], None] | None = None,
                       listed: Callable[[LedgerCommand], bool] | None = None) -> Iterator[Finding]:
    """Merge-join the ledger's commands with the back office's records, both in ascending key
    order (``records`` are ``BackOfficeRecord``s; those without a key are counted, not compared).

    ``listed(command)``: whether the back office lists this command's records at all (a connector
    that cannot list an operation must not make its commands look missing); default all.
    """
    tally = tally if tally is not None else Tally()
    bo_iter = _keyed(records, tally)
    sentinel = object()
    record: Any = next(bo_iter, sentinel)
    previous: str | None = None
    for command in ledger:
        tally.ledger += 1
        if previous is not None and command.key <= previous:
            raise ValueError("ledger commands are not in ascending key order")
        previous = command.key
        while record is not sentinel and record.key < command.key:
            yield _unknown(system, record)
            record = next(bo_iter, sentinel)
        matched: list[Any] = []
        while record is not sentinel and record.key == command.key:
            matched.append(record)
            record = next(bo_iter, sentinel)
        yield from _compare_one(system, command, matched, policy, observe, listed)
    while record is not sentinel:
        yield _unknown(system, record)
        record = next(bo_iter, sentinel)


def _unknown(system: str, record: Any) -> Finding:
    return Finding(FindingClass.UNKNOWN_IN_BACKOFFICE, system, record.key,
                   reference=record.reference, detail="key_not_in_ledger",
                   fingerprint=digest(record.reference))


def _compare_one(system: str, command: LedgerCommand, matched: list[Any], policy: Policy,
                 observe: Callable[[StatusSeen], None] | None,
                 listed: Callable[[LedgerCommand], bool] | None) -> Iterator[Finding]:
    stuck = _stuck(command, policy)
    if stuck:
        reference = matched[0].reference if matched else None
        yield Finding(FindingClass.STUCK, system, command.key, reference=reference,
                      crm_id=command.crm_id, command_id=command.command_id,
                      case_id=command.case_id, detail=stuck,
                      fingerprint=digest(command.state, command.claimed_at, command.due_by,
                                         "present" if matched else "absent"))
        return
    if command.state != CONFIRMED:
        return
    if not matched:
        if listed is None or listed(command):
            yield Finding(FindingClass.MISSING_IN_BACKOFFICE, system, command.key,
                          reference=command.reference, crm_id=command.crm_id,
                          command_id=command.command_id, case_id=command.case_id,
                          detail="absent", fingerprint=digest(command.reference))
        return
    payload = command.payload or {}
    for record in matched:
        for name in sorted(record.fields):
            if name in policy.ignore_fields or name not in payload:
                continue
            if not same_value(payload[name], record.fields[name]):
                yield Finding(FindingClass.FIELD_MISMATCH, system, command.key, fields=(name,),
                              reference=record.reference, crm_id=command.crm_id,
                              command_id=command.command_id, case_id=command.case_id,
                              detail="value_differs",
                              fingerprint=digest(name, payload[name], record.fields[name]))
        if observe is not None and record.crm_status is not None:
            observe(StatusSeen(command.crm_id, command.key, command.command_id, command.case_id,
                               record.reference, crm_status_for(record.crm_status) or "",
                               record.changed_at))


def _stuck(command: LedgerCommand, policy: Policy) -> str | None:
    if (command.state == SENDING and command.claimed_at is not None
            and command.claimed_at < policy.now - policy.lease):
        return STUCK_SENDING
    if command.state == AWAITING and command.due_by is not None and command.due_by < policy.now:
        return STUCK_AWAITING
    return None


def _groups(items: Iterable[Any], what: str) -> Iterator[tuple[str, list[Any]]]:
    """Consecutive items with the same ``crm_id`` (the stream must ascend by it)."""
    current: str | None = None
    group: list[Any] = []
    for item in items:
        if current is not None and item.crm_id < current:
            raise ValueError(f"{what} are not in ascending CRM id order")
        if item.crm_id != current:
            if group:
                yield current, group  # type: ignore[misc]
            current, group = item.crm_id, []
        group.append(item)
    if group:
        yield current, group  # type: ignore[misc]


def compare_crm(system: str, messages: Iterable[LedgerMessage], crm: Iterable[CrmView],
                seen: Iterable[StatusSeen], *, tally: Tally | None = None) -> Iterator[Finding]:
    """Merge-join the ledger's write-backs, the CRM's case states and the back office's CRM
    statuses, each in ascending CRM id (messages: then outbox id)."""
    tally = tally if tally is not None else Tally()
    crm_iter = iter(crm)
    seen_groups = _groups(seen, "back-office statuses")
    sentinel: Any = None
    view: Any = next(crm_iter, sentinel)
    if view is not None:
        tally.crm += 1
    seen_at: Any = next(seen_groups, sentinel)
    last_crm: str | None = None
    for crm_id, group in _groups(messages, "write-backs"):
        tally.writebacks += len(group)
        while view is not None and view.crm_id < crm_id:
            if last_crm is not None and view.crm_id < last_crm:
                raise ValueError("CRM case states are not in ascending CRM id order")
            last_crm = view.crm_id
            view = next(crm_iter, sentinel)
            if view is not None:
                tally.crm += 1
        current = view if view is not None and view.crm_id == crm_id else None
        while seen_at is not None and seen_at[0] < crm_id:
            seen_at = next(seen_groups, sentinel)
        statuses = seen_at[1] if seen_at is not None and seen_at[0] == crm_id else []
        yield from _compare_case(system, crm_id, group, current, statuses)
    for _ in crm_iter:
        tally.crm += 1


def _compare_case(system: str, crm_id: str, group: list[LedgerMessage], view: CrmView | None,
                  statuses: list[StatusSeen]) -> Iterator[Finding]:
    latest = group[-1]
    if latest.delivered and latest.system == system:
        fields: list[str] = []
        if view is None:
            fields.append("case")
        else:
            if view.status != latest.status:
                fields.append("status")
            if latest.reference and view.backoffice_reference != latest.reference:
                fields.append("backoffice_reference")
        if fields:
            yield Finding(FindingClass.WRITEBACK_MISSING, system, crm_id, fields=tuple(fields),
                          reference=latest.reference, crm_id=crm_id,
                          command_id=latest.command_id, case_id=latest.case_id,
                          outbox_id=latest.outbox_id,
                          detail="absent_in_crm" if view is None else "differs_in_crm",
                          fingerprint=digest(latest.outbox_id, *(
                              () if view is None else (view.status, view.backoffice_reference))))
            return   # re-delivering that write-back is the answer; one finding per case
    if not latest.delivered:
        return       # a write-back is on its way: nothing to judge yet
    for seen in statuses:
        own = [m for m in group if m.command_id == seen.command_id]
        if not own or not own[-1].delivered:
            continue
        last = own[-1]
        if seen.crm_status in (last.status, view.status if view else None):
            continue
        if seen.changed_at is None or last.created_at is None \
                or seen.changed_at <= last.created_at:
            continue     # not later than the hub's last write-back for it
        yield Finding(FindingClass.STATUS_NOT_IN_CRM, system, seen.key, fields=("status",),
                      reference=seen.reference, crm_id=crm_id, command_id=seen.command_id,
                      case_id=seen.case_id, detail="newer_status_in_backoffice",
                      fingerprint=digest(seen.crm_status, seen.changed_at))


def unmapped_cases(system: str, cases: Iterable[LedgerCase], policy: Policy, *,
                   tally: Tally | None = None) -> Iterator[Finding]:
    """Cases still ``received`` longer than ``policy.unmapped_after``."""
    tally = tally if tally is not None else Tally()
    limit = policy.now - policy.unmapped_after
    for case in cases:
        tally.cases += 1
        if case.state == RECEIVED and case.received_at is not None and case.received_at < limit:
            yield Finding(FindingClass.UNMAPPED_CASE, system, case.crm_id, crm_id=case.crm_id,
                          case_id=case.case_id, detail="received_not_mapped",
                          fingerprint=digest(case.case_id))
