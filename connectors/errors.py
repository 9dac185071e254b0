"""How a connector classifies every failure.

The dispatch runner acts on the class alone:
- ``TransientError``: the call may succeed later (network, timeout, HTTP 5xx, SOAP Server fault,
  deadlock, lock timeout). Retried with backoff inside the connector, then by the hub.
- ``PermanentError``: nothing will succeed until a person fixes configuration or credentials. The
  Airflow task fails; commands stay pending and go again once it is fixed.
- ``Rejected``: the back office refused this one record. It becomes a work item for the owning team
  and the batch goes on.

Messages must never contain personal data: name the field, reference or code, not the value.
Always ``raise ... from exc`` so the cause stays in the traceback.
"""
from __future__ import annotations


class ConnectorError(Exception):
    """Base class of every classified connector failure."""

    #: Short machine-readable code (fault code, HTTP status, SQLSTATE) safe to store and log.
    code: str | None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class TransientError(ConnectorError):
    """The call may succeed if tried again later."""

    def __init__(self, message: str, *, code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        #: Seconds the back office asked us to wait (HTTP ``Retry-After``), when it said.
        self.retry_after = retry_after


class UnknownOutcomeError(TransientError):
    """The request may or may not have been applied (timeout after sending): check before re-creating."""


class PermanentError(ConnectorError):
    """Configuration or credentials are wrong; retrying cannot help until a person acts."""


class Rejected(ConnectorError):
    """The back office refused this record; a person in the owning team must act on it."""

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 held: bool = False) -> None:
        super().__init__(message, code=code)
        self.field = field
        #: True when the back office accepted the record but holds it for staff review
        #: (a "business exception"), rather than refusing it outright.
        self.held = held


def error_class_name(exc: BaseException) -> str:
    """The classification name stored in the ledger for an attempt."""
    for cls in (Rejected, UnknownOutcomeError, TransientError, PermanentError):
        if isinstance(exc, cls):
            return cls.__name__
    return type(exc).__name__
