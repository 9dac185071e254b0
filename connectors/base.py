"""The connector contract: what an integration engineer implements for a back-office system.

A connector is plain Python (it never imports Airflow or the hub). The hub builds it from a typed
``Config`` (filled from an Airflow Connection in production, from plain values in tests and the
demo) and calls:

- ``check()``: can we reach and authenticate? Raises ``PermanentError`` or ``TransientError``.
- ``submit(commands)``: apply a batch; returns one ``Outcome`` per command, in order. Idempotent on
  each command's ``key``. Never raises for one record's problem (see ``connectors.errors``).
- ``fetch_updates(since)``: back-office changes after ``since``, each with a stable ``update_id``.
- ``lookup(kind, params)``: read-through queries for the CRM (an account, collection slots...).
- ``snapshot(keys)``: the back office's view of records, for reconciliation (where it can list).
- ``records(since=..., page_size=...)``: stream every hub-relevant record the back office holds,
  in pages (never the whole set in memory), as ``BackOfficeRecord``s, for nightly reconciliation.

Every one of these is guarded (``Connector.__init_subclass__``): a classified error
(``connectors.errors``) passes through; anything else (a defect: AttributeError, KeyError...)
leaves as ``PermanentError(code="internal")`` with a scrubbed cause, never as itself. A
security-flagged error, and every list entry a connector sets aside (``set_aside``), is handed to
``report`` as a ``Finding``: the hub turns findings into operations work items.
"""
from __future__ import annotations

import enum
import functools
import inspect
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from tenacity import (RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt,
                      wait_exponential_jitter)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from connectors.errors import (ConnectorError, PermanentError, Rejected, TransientError,
                               error_class_name, scrubbed)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    """One change the hub asks a back-office system to make."""

    key: str
    """Idempotency key. Travels to the back office (client reference, GUID, file record id)."""
    system: str
    """Connector system id, ``<domain>_<system>`` (e.g. ``revenues_northgate``)."""
    operation: str
    """Operation name from the connector's ``operations`` (e.g. ``ctax.change_of_address``)."""
    payload: Mapping[str, Any]
    """Fields for the operation, validated against the operation's model."""
    case_ref: str
    """The CRM case id, for references in the back office (never personal data)."""
    maybe_sent: bool = False
    """A previous attempt's outcome is unknown: the connector must look before it creates."""


class OutcomeStatus(str, enum.Enum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    RETRY = "retry"
    """Not applied this time (transient failure, or the batch was aborted); send again later."""
    AWAITING = "awaiting"
    """Delivered (e.g. in a batch file); the back office answers later through ``fetch_updates``
    with an ``Update`` whose ``resolves`` is CONFIRMED or REJECTED for this key."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one command."""

    key: str
    status: OutcomeStatus
    reference: str | None = None
    """The back office's own reference for the record (account, claim, job, licence...)."""
    message: str | None = None
    """A short reason for people; never personal data."""
    error_class: str | None = None
    code: str | None = None
    held: bool = False
    """Accepted but held for staff review (a business exception)."""
    field: str | None = None
    """The field the back office objected to, when it says."""
    warnings: tuple[str, ...] = ()
    """Secondary steps that failed without failing the create (a note, an attachment)."""
    details: Mapping[str, Any] = dataclass_field(default_factory=dict)
    """Extra non-personal facts for the CRM note (new balance, claim reference...)."""


@dataclass(frozen=True)
class Update:
    """A later change in the back office to a record the hub created."""

    system: str
    update_id: str
    """Stable id of this change; the hub applies each once."""
    reference: str
    """The back office's reference for the record."""
    status: str
    """The back office's status word (e.g. ``COMPLETED``, ``GRANTED``)."""
    changed_at: datetime
    key: str | None = None
    """Our command key, when the back office carries it (client reference)."""
    crm_status: str | None = None
    """The status to show in the CRM (``open``, ``closed``...), when the connector can map it."""
    note: str | None = None
    resolves: OutcomeStatus | None = None
    """Set when this update is the back office's answer to a command left AWAITING:
    CONFIRMED (``reference`` is the new record) or REJECTED (``message`` says why). Needs ``key``."""
    message: str | None = None
    """Reason for a rejection, or a short non-personal explanation."""


@dataclass(frozen=True)
class BackOfficeRecord:
    """One back-office record as reconciliation reads it (``connectors.base.Connector.records``).

    Values are compared by the reconciliation engine, never logged: only ``reference``, ``key`` and
    field names may appear in messages.
    """

    reference: str
    """The back office's own reference for the record."""
    key: str | None
    """The hub command key the record carries (client reference), or None when it carries none."""
    status: str
    """The back office's own status word."""
    fields: Mapping[str, Any] = dataclass_field(default_factory=dict)
    """Values to compare with what the hub sent, named as in the operation's payload model
    (dotted for nested models: ``applicant.name``) in JSON form (dates as ISO text), as
    ``connectors.fields.flat_fields`` gives them for the validated payload. Only the fields the
    back office holds and the hub sent are here: a name absent here is not compared."""
    crm_status: str | None = None
    """The CRM status this back-office status maps to, where the connector knows one."""
    changed_at: datetime | None = None
    """When the record's status last changed in the back office (aware UTC), where it says;
    else its last change of any kind. Reconciliation reports ``status_not_in_crm`` only for a
    record changed after the hub's last write-back for it, and never for a record without one."""
    operation: str | None = None
    """The operation (``connectors.base.Connector.operations`` key) the record came from, where
    the back office tells (its request or licence type); None when it cannot."""


@dataclass(frozen=True)
class Finding:
    """Something a connector noticed that operations must look at, though the call went on: a
    list entry it set aside, or an answer flagged as a security risk. No personal data: the entry
    is named by its position and the back office's reference, the field by its path."""

    system: str
    kind: str
    """``entry_set_aside`` or ``security``."""
    operation: str
    """The back-office operation or file whose answer it was in."""
    entry: str
    """Which entry (``ServiceRequest_Updates[3] SR00051688``, ``RSP_x.csv line 7``)."""
    field: str | None
    reason: str
    code: str | None = None


Reporter = Callable[[Finding], None]


class ConnectorConfig(BaseModel):
    """Typed settings a connector reads. Subclass and declare each setting by name.

    ``from_connection`` fills it from an Airflow Connection's fields: the standard fields named in
    ``connection_fields`` and, from ``extra``, only keys that are declared fields (an allowlist).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Maps Airflow Connection attributes (host, port, login, password, schema) to field names.
    connection_fields: ClassVar[Mapping[str, str]] = {}

    timeout_seconds: float = 30.0
    """Every remote call's timeout."""
    retry_attempts: int = 3
    """Tries per call for transient errors (inside one task)."""
    retry_max_wait_seconds: float = 10.0
    max_answer_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    """The largest answer (SOAP/REST body, file) read from the back office; past it the call fails
    with ``UnreadableAnswer(code="answer-too-large")`` and reading stops."""
    max_answer_depth: int = Field(default=64, ge=8, le=256)
    """The deepest element nesting accepted in an answer."""
    concurrent_sends: int = Field(default=1, ge=1, le=16)
    """Commands for different records a connector that supports it sends at the same time, each
    over its own keep-alive connection (``Connector.submit_each``'s lanes); 1 sends one at a time.
    Commands for one case or one back-office record are always sent one after another, in order."""

    @classmethod
    def from_connection(cls, *, extra: Mapping[str, Any] | None = None, **standard: Any) -> Self:
        """Build from a connection's standard fields and allowlisted extras."""
        values: dict[str, Any] = {}
        for attr, field_name in cls.connection_fields.items():
            if standard.get(attr) not in (None, ""):
                values[field_name] = standard[attr]
        ignored = []
        for key, value in (extra or {}).items():
            if key in cls.model_fields and key not in values:
                values[key] = value
            else:
                ignored.append(key)
        if ignored:
            log.warning("%s ignores unknown connection extras: %s", cls.__name__, sorted(ignored))
        try:
            return cls(**values)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
            raise PermanentError(f"{cls.__name__}: invalid connection settings {fields}") from exc


ConfigT = TypeVar("ConfigT", bound=ConnectorConfig)
_BOUND: dict[tuple[type, str, str], type] = {}
_BOUND_LOCK = threading.Lock()


class Connector(ABC, Generic[ConfigT]):
    """Base class of every back-office connector."""

    system: ClassVar[str]
    """The system id, ``<domain>_<system>`` (``revenues_northgate``): the one name a connector
    declares. It registers under it (entry point group ``council_hub.connectors``), and ``name``,
    ``domain`` and ``default_conn_id`` are derived from it."""
    name: ClassVar[str]
    """The system's short name (``northgate``); derived from ``system``."""
    domain: ClassVar[str]
    """``revenues``, ``benefits``, ``licensing``, ``waste``, ``housing``...; derived from ``system``."""
    default_conn_id: ClassVar[str]
    """Airflow Connection id; the system id unless an instance names its own."""
    instance_id: ClassVar[str | None] = None
    """Set on a class bound to one instance (``for_instance``): what ``system_id()`` answers."""
    Config: ClassVar[type[ConnectorConfig]]
    operations: ClassVar[Mapping[str, type[BaseModel]]]
    """Operation name -> pydantic model of its payload."""
    lookup_kinds: ClassVar[tuple[str, ...]] = ()
    """The ``kind`` values ``lookup`` answers (the contract suite calls each with hostile input)."""
    records_sorted_by_key: ClassVar[bool] = False
    """True when ``records()`` yields records in ascending ``key`` order (None keys last)."""

    #: The public methods the guard wraps (a subclass may add its own, e.g. streaming reads).
    guarded_methods: ClassVar[tuple[str, ...]] = ("check", "submit", "fetch_updates", "lookup",
                                                  "snapshot", "records")

    def __init__(self, config: ConfigT) -> None:
        self.config = config
        self._maybe_created: set[str] = set()
        """Keys whose create may have reached the back office in this process."""
        self.report: Reporter = _log_finding
        """Where findings go; the hub sets this to open operations work items."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__
        if "system" in declared:
            domain, _, name = cls.system.partition("_")
            if not domain or not name:
                raise TypeError(f"{cls.__name__}.system must be <domain>_<system>, "
                                f"not {cls.system!r}")
            for attr, value in (("domain", domain), ("name", name),
                                ("default_conn_id", cls.system)):
                if attr not in declared:
                    setattr(cls, attr, value)
        for name in cls.guarded_methods:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_guarded", False):
                setattr(cls, name, _guard(method))

    @classmethod
    def system_id(cls) -> str:
        """The instance id when bound to one (``for_instance``), else the declared system id."""
        return cls.instance_id or getattr(cls, "system", None) or f"{cls.domain}_{cls.name}"

    @classmethod
    def for_instance(cls, instance_id: str, conn_id: str | None = None) -> type[Self]:
        """This class bound to one instance (``connectors/instances.yaml``): its ``system_id()``
        (on updates, findings and logs) is ``instance_id`` and its ``default_conn_id`` the
        instance's connection. The class itself when the instance is the connector's own system
        id with its default connection; otherwise one cached subclass per instance."""
        conn_id = conn_id or instance_id
        if instance_id == cls.system_id() and conn_id == cls.default_conn_id:
            return cls
        key = (cls, instance_id, conn_id)
        with _BOUND_LOCK:
            bound = _BOUND.get(key)
            if bound is None:
                bound = type(cls.__name__, (cls,), {
                    "instance_id": instance_id, "default_conn_id": conn_id,
                    "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                    "__doc__": cls.__doc__})
                _BOUND[key] = bound
        return bound  # type: ignore[return-value]

    def set_aside(self, *, operation: str, entry: str, field: str | None, reason: str,
                  code: str | None = None) -> None:
        """One entry of a list could not be read: leave it out, tell operations, go on."""
        self._notify(Finding(system=self.system_id(), kind="entry_set_aside",
                             operation=operation, entry=entry, field=field, reason=reason,
                             code=code))

    def flag(self, exc: ConnectorError, operation: str) -> None:
        """Report a security-flagged error (hostile markup in an answer) to operations."""
        self._notify(Finding(system=self.system_id(), kind="security", operation=operation,
                             entry="answer", field=exc.field, reason=exc.message,
                             code=exc.code))

    def _notify(self, finding: Finding) -> None:
        try:
            self.report(finding)
        except Exception as exc:  # reporting must never fail the call it is about
            log.error("%s: a finding could not be reported (%s); %s %s %s", finding.system,
                      type(exc).__name__, finding.kind, finding.operation, finding.entry)

    # -- the contract ---------------------------------------------------------------------------
    @abstractmethod
    def check(self) -> None:
        """Reach and authenticate with the back office, or raise a classified error."""

    @abstractmethod
    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        """Apply a batch; one outcome per command, in order; idempotent on each key."""

    @abstractmethod
    def fetch_updates(self, since: datetime) -> list[Update]:
        """Back-office changes made after ``since``, oldest first (answers to AWAITING commands too)."""

    def lookup(self, kind: str, params: Mapping[str, Any]) -> Any:
        """Read-through query for the CRM; ``kind`` names what to read."""
        raise NotImplementedError(f"{type(self).__name__} has no lookup {kind!r}")

    def snapshot(self, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """The back office's current state of the records with these command keys."""
        raise NotImplementedError(f"{type(self).__name__} cannot list records")

    def records(self, *, since: datetime | None = None,
                page_size: int = 500) -> Iterator[BackOfficeRecord]:
        """Every hub-relevant record the back office holds (changed at or after ``since`` when
        given), read page by page as the back office allows; any order unless the class says
        ``records_sorted_by_key``. The reconciliation engine sorts what is not sorted."""
        raise NotImplementedError(f"{type(self).__name__} cannot stream its records")

    def close(self) -> None:
        """Release connections (optional)."""

    # -- helpers for implementations ----------------------------------------------------------
    def page_size_for(self, page_size: int, *, maximum: int) -> int:
        """The page to ask for: ``page_size`` capped at what the back office allows
        (``maximum``), so a caller need not know each system's limit; a page size that is not a
        whole number of at least 1 is ``PermanentError(code="config")``: a caller's mistake,
        never a crash."""
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise PermanentError(f"{self.system_id()}.records: page_size must be a whole "
                                 "number of at least 1", code="config", field="page_size")
        return min(page_size, maximum)

    def validate(self, command: Command) -> BaseModel:
        """The command's payload as its operation model, or ``Rejected`` naming the bad field."""
        model = self.operations.get(command.operation)
        if model is None:
            raise Rejected(f"unknown operation {command.operation!r}", code="unknown-operation")
        try:
            return model.model_validate(dict(command.payload))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "payload"
            raise Rejected(f"{command.operation}: field {where}: {first['msg']}",
                           code="invalid-field", field=where) from exc

    def create_once(self, command: Command, find: Callable[[], Outcome | None],
                    create: Callable[[], Outcome]) -> Outcome:
        """``create()`` unless the command may have been sent before (``maybe_sent``, or an
        earlier attempt in this process failed transiently: a lost answer included) and
        ``find()`` (a look-up by the command key) finds it. Use inside ``submit_each``."""
        if command.maybe_sent or command.key in self._maybe_created:
            found = find()
            if found is not None:
                self._maybe_created.discard(command.key)
                return found
        try:
            outcome = create()
        except TransientError:
            self._maybe_created.add(command.key)
            raise
        self._maybe_created.discard(command.key)
        return outcome

    def retrying(self) -> Retrying:
        """tenacity policy for transient errors only, from this connector's config.

        A back office that says how long to wait (``TransientError.retry_after``, from HTTP
        ``Retry-After``) is waited for; when that is longer than ``retry_max_wait_seconds`` the
        call is not retried inline (the hub tries again later).
        """
        max_wait = self.config.retry_max_wait_seconds
        return Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(max(1, self.config.retry_attempts)) | _RetryAfterBeyond(max_wait),
            wait=_WaitRetryAfter(wait_exponential_jitter(initial=0.2, max=max_wait)),
            reraise=True,
        )

    def submit_each(self, commands: Sequence[Command], apply: Callable[[Command], Outcome], *,
                    lanes: int = 1,
                    records: Callable[[Command], Iterable[Hashable]] | None = None) -> list[Outcome]:
        """Run ``apply`` per command with retries, turning classified errors into outcomes.

        ``Rejected`` -> a rejected outcome; the batch goes on. ``TransientError`` after retries ->
        a retry outcome; after three such in a row the rest of the batch is left for later.
        ``PermanentError`` -> this and every remaining command get a retry outcome carrying
        ``PermanentError`` (the hub fails the task after recording them).

        ``lanes`` > 1 sends commands for different records at the same time, from up to that
        many threads (over as many keep-alive connections), so the hub's own work on one command
        overlaps the back office's on another. Commands that share a case (``case_ref``) or any
        value ``records(command)`` names (the back-office record it changes: an account, a
        property) are one lane: sent one after another, in batch order, by one thread. Each
        command is applied at most once per call, whatever the lanes; once the batch stops (a
        ``PermanentError``, three transient failures in a row), no command starts that has not
        started, and those are returned as retry outcomes. ``apply`` must be safe to run from
        several threads for different records.
        """
        run = _BatchRun(self, commands, apply)
        groups = _lanes(commands, records) if lanes > 1 and len(commands) > 1 else None
        if groups is None or len(groups) == 1:
            for index in range(len(commands)):
                run.one(index)
        else:
            with ThreadPoolExecutor(max_workers=min(lanes, len(groups)),
                                    thread_name_prefix=f"{self.system_id()}-send") as pool:
                for done in [pool.submit(run.lane, group) for group in groups]:
                    done.result()
        return run.outcomes()


def _lanes(commands: Sequence[Command],
           records: Callable[[Command], Iterable[Hashable]] | None) -> list[list[int]]:
    """Command positions grouped so that commands sharing a case or a record are in one group,
    each group in batch order, the groups in the order of their first command."""
    parent = list(range(len(commands)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[Hashable, int] = {}
    for index, command in enumerate(commands):
        names: list[Hashable] = [("case", command.case_ref)]
        if records is not None:
            try:
                names.extend(("record", name) for name in records(command))
            except Exception:   # an unreadable payload: apply() rejects it, in the case's lane
                pass
        for name in names:
            other = first.setdefault(name, index)
            if other != index:
                a, b = root(index), root(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for index in range(len(commands)):
        groups.setdefault(root(index), []).append(index)
    return list(groups.values())


class _BatchRun:
    """One ``submit_each`` call: the outcomes by position and the batch's stop rule, shared by
    the lanes (a lock guards the counters; ``apply`` runs outside it)."""

    def __init__(self, connector: Connector, commands: Sequence[Command],
                 apply: Callable[[Command], Outcome]) -> None:
        self.connector, self.commands, self.apply = connector, commands, apply
        self._outcomes: list[Outcome | None] = [None] * len(commands)
        self._lock = threading.Lock()
        self._transient_in_a_row = 0
        self._abort: ConnectorError | None = None

    def outcomes(self) -> list[Outcome]:
        missing = [i for i, o in enumerate(self._outcomes) if o is None]
        if missing:   # cannot happen: every position is settled once; a defect if it does
            raise PermanentError(f"{self.connector.system_id()}.submit left {len(missing)} "
                                 "commands without an outcome", code="internal")
        return self._outcomes  # type: ignore[return-value]

    def lane(self, indexes: Sequence[int]) -> None:
        for index in indexes:
            self.one(index)

    def one(self, index: int) -> None:
        command = self.commands[index]
        with self._lock:
            abort = self._abort
        if abort is not None:
            self._outcomes[index] = _retry_outcome(command, abort, "not sent: batch stopped early")
            return
        connector = self.connector
        transient: TransientError | None = None
        stop: ConnectorError | None = None
        returned = False
        try:
            outcome = connector.retrying()(self.apply, command)
            returned = True
        except Rejected as exc:
            outcome = Outcome(key=command.key, status=OutcomeStatus.REJECTED,
                              message=exc.message, error_class=error_class_name(exc),
                              code=exc.code, held=exc.held, field=exc.field)
        except TransientError as exc:
            outcome = _retry_outcome(command, exc, exc.message)
            transient = exc
        except PermanentError as exc:
            if exc.security:
                connector.flag(exc, command.operation)
            outcome = _retry_outcome(command, exc, exc.message)
            stop = exc
        except Exception as exc:  # a defect: classify it, keep its value-free traceback
            stop = _internal(f"{connector.system_id()}.submit {command.operation}", exc)
            stop.__cause__ = scrubbed(exc)
            outcome = _retry_outcome(command, stop, stop.message)
        with self._lock:
            if transient is not None:
                self._transient_in_a_row += 1
                if self._transient_in_a_row >= 3 and self._abort is None:
                    self._abort = transient
            elif returned:
                self._transient_in_a_row = 0
            if stop is not None and self._abort is None:
                self._abort = stop
        self._outcomes[index] = outcome


def _retry_after(state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome is not None else None
    return getattr(exc, "retry_after", None)


class _WaitRetryAfter(wait_base):
    """Wait as the fallback policy says, or longer when the back office asked (Retry-After)."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        asked = _retry_after(retry_state)
        return max(self.fallback(retry_state), asked or 0.0)


class _RetryAfterBeyond(stop_base):
    """Stop retrying inline when the back office asks for a longer wait than ``limit``."""

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def __call__(self, retry_state: RetryCallState) -> bool:
        asked = _retry_after(retry_state)
        return asked is not None and asked > self.limit


def _log_finding(finding: Finding) -> None:
    """The default reporter (no hub): a warning naming the entry and the field, never a value."""
    log.warning("%s %s in %s: %s (field %s): %s", finding.system, finding.kind,
                finding.operation, finding.entry, finding.field or "-", finding.reason)


def _internal(method: str, exc: BaseException) -> PermanentError:
    return PermanentError(f"{method}: the connector failed unexpectedly ({type(exc).__name__}); "
                          "this is a defect to report", code="internal")


def _guard(method: Callable[..., Any]) -> Callable[..., Any]:
    """Only classified errors leave a contract method; security-flagged ones are reported."""
    name = method.__name__

    def settle(self: Connector, exc: BaseException) -> BaseException:
        if isinstance(exc, ConnectorError):
            if exc.security:
                self.flag(exc, name)
            return exc
        return _internal(f"{self.system_id()}.{name}", exc)

    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def guarded_iter(self: Connector, *args: Any, **kwargs: Any) -> Iterator[Any]:
            yield from _guard_iterator(self, method(self, *args, **kwargs), settle)
        guarded_iter._guarded = True  # type: ignore[attr-defined]
        return guarded_iter

    @functools.wraps(method)
    def guarded(self: Connector, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
            if name == "records" and isinstance(result, Iterator):
                # a streaming read that returns an iterator: guard its iteration too
                return _guard_iterator(self, result, settle)
            return result
        except NotImplementedError:
            raise   # "this connector has no such look-up": the caller answers 404
        except Exception as exc:
            error = settle(self, exc)
            if error is exc:
                raise
            cause = scrubbed(exc)
        raise error from cause
    guarded._guarded = True  # type: ignore[attr-defined]
    return guarded


def _guard_iterator(connector: Connector, items: Iterator[Any],
                    settle: Callable[[Connector, BaseException], BaseException]) -> Iterator[Any]:
    """``items``, with whatever their iteration raises classified as a contract method's."""
    try:
        yield from items
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        error = settle(connector, exc)
        if error is exc:
            raise
        cause = scrubbed(exc)
    raise error from cause


def _retry_outcome(command: Command, exc: ConnectorError, message: str) -> Outcome:
    return Outcome(key=command.key, status=OutcomeStatus.RETRY, message=message,
                   error_class=error_class_name(exc), code=exc.code)


class SecretConfig(ConnectorConfig):
    """Config with a login and a secret password (SecretStr keeps it out of reprs and logs)."""

    username: str
    password: SecretStr
