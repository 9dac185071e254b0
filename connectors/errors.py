"""How a connector classifies every failure.

The dispatch runner acts on the class alone:
- ``TransientError``: the call may succeed later (network, timeout, HTTP 5xx, SOAP Server fault,
  deadlock, lock timeout). Retried with backoff inside the connector, then by the hub.
- ``PermanentError``: nothing will succeed until a person fixes configuration or credentials. The
  Airflow task fails; commands stay pending and go again once it is fixed.
- ``Rejected``: the back office refused this one record. It becomes a work item for the owning team
  and the batch goes on.

Bad answers have one classification (see ``docs/connectors.md``, "Reading answers"):
- ``UnreadableAnswer`` (a ``PermanentError``): the answer is not well-formed, too large, too deep,
  or lacks a value the hub needs (``field`` names it). To a *write* it becomes
  ``UnknownOutcomeError`` (``unknown_outcome_if_unreadable``): the request may have been applied,
  so the key is looked up before anything is sent again.
- ``UnsafeAnswer`` (a ``PermanentError`` with ``security=True``): the answer carries a DTD, an
  entity or an XInclude. Refused whatever the HTTP status; the hub opens an operations work item.

Messages must never contain personal data: name the field, reference or code, not the value.
Always ``raise ... from exc`` so the cause stays in the traceback.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ConnectorError(Exception):
    """Base class of every classified connector failure."""

    #: Short machine-readable code (fault code, HTTP status, SQLSTATE) safe to store and log.
    code: str | None
    #: The field (of a payload or an answer) the failure is about, when one is known.
    field: str | None
    #: True when the failure may be an attack (hostile markup in an answer): operations must look.
    security: bool

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 security: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.security = security

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class TransientError(ConnectorError):
    """The call may succeed if tried again later."""

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, code=code, field=field)
        #: Seconds the back office asked us to wait (HTTP ``Retry-After``), when it said.
        self.retry_after = retry_after


class UnknownOutcomeError(TransientError):
    """The request may or may not have been applied (timeout after sending): check before re-creating."""


class PermanentError(ConnectorError):
    """Configuration or credentials are wrong; retrying cannot help until a person acts."""


class UnreadableAnswer(PermanentError):
    """The back office answered something the hub cannot read (malformed, too large, a needed
    value missing or malformed: ``field`` names it)."""


class UnsafeAnswer(PermanentError):
    """The answer carries a DTD, an entity or an XInclude: refused and flagged for operations."""

    def __init__(self, message: str, *, code: str | None = "unsafe-answer",
                 field: str | None = None) -> None:
        super().__init__(message, code=code, field=field, security=True)


class Rejected(ConnectorError):
    """The back office refused this record; a person in the owning team must act on it."""

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 held: bool = False) -> None:
        super().__init__(message, code=code, field=field)
        #: True when the back office accepted the record but holds it for staff review
        #: (a "business exception"), rather than refusing it outright.
        self.held = held


class DetailRemoved(Exception):
    """Stands in, as a cause, for an exception whose message may quote a request or an answer."""


def scrubbed(exc: BaseException) -> DetailRemoved:
    """A cause safe to chain: the original's type and traceback, without its message (third-party
    exceptions quote values and bodies: zeep's TransportError carries the whole answer) and
    without its own causes. Raise the classified error *outside* the ``except`` block, so the
    original does not ride along as ``__context__`` either."""
    stand_in = DetailRemoved(f"{type(exc).__module__}.{type(exc).__qualname__} (message removed)")
    stand_in.__traceback__ = exc.__traceback__
    stand_in.__suppress_context__ = True
    return stand_in


def error_class_name(exc: BaseException) -> str:
    """The classification name stored in the ledger for an attempt."""
    for cls in (Rejected, UnknownOutcomeError, TransientError, PermanentError):
        if isinstance(exc, cls):
            return cls.__name__
    return type(exc).__name__


@contextlib.contextmanager
def unknown_outcome_if_unreadable(operation: str) -> Iterator[None]:
    """Around reading the answer to a write: an unreadable answer means the write may have been
    applied, so it becomes ``UnknownOutcomeError`` (same code and field). Unsafe answers stay
    ``UnsafeAnswer``: they are flagged for operations before anything is sent again."""
    try:
        yield
    except UnsafeAnswer:
        raise
    except UnreadableAnswer as exc:
        raise UnknownOutcomeError(f"{operation}: the answer could not be read ({exc.message}); "
                                  "it may have been applied", code=exc.code,
                                  field=exc.field) from exc
