"""Finding classes (stable codes) and the value-free ``Finding`` the comparison yields.

A finding names the record (command key, back-office reference, CRM case id) and the fields
involved, never their values: ``digest`` is a SHA-256 over the values, so that the same drift seen
again is recognised (and not opened twice) without storing what it was.
"""
from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class FindingClass(str, enum.Enum):
    MISSING_IN_BACKOFFICE = "missing_in_backoffice"
    """The ledger says confirmed; the back office has no record with the command key."""
    UNKNOWN_IN_BACKOFFICE = "unknown_in_backoffice"
    """A back-office record carries a hub key the ledger does not know."""
    FIELD_MISMATCH = "field_mismatch"
    """A back-office value differs from what the hub sent (one finding per field)."""
    STATUS_NOT_IN_CRM = "status_not_in_crm"
    """A back-office status newer than the hub's last write-back never reached the CRM."""
    WRITEBACK_MISSING = "writeback_missing"
    """The CRM lacks the status or reference the outbox says was delivered."""
    STUCK = "stuck"
    """A command ``sending`` past its lease, or ``awaiting`` past its due time."""
    UNMAPPED_CASE = "unmapped_case"
    """A case received and never turned into commands."""


CLASSES: tuple[str, ...] = tuple(c.value for c in FindingClass)

#: Classes the hub heals by itself (each only after it has looked, see ``hub.reconcile.heal``).
SAFE_CLASSES = frozenset({FindingClass.MISSING_IN_BACKOFFICE, FindingClass.WRITEBACK_MISSING,
                          FindingClass.STUCK, FindingClass.UNMAPPED_CASE})

STUCK_SENDING = "sending_past_lease"
STUCK_AWAITING = "awaiting_past_due"


def digest(*values: Any) -> str:
    """A short SHA-256 of ``values`` (for recognising the same drift; never shown as values)."""
    text = "\x1f".join("" if v is None else str(v) for v in values)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Finding:
    """One disagreement between the sides, named by references and field names only."""

    code: FindingClass
    system: str
    key: str
    """The command key; for ``unknown_in_backoffice`` the key the record carries; for
    ``writeback_missing`` and ``unmapped_case`` the CRM case id."""
    fields: tuple[str, ...] = ()
    reference: str | None = None
    """The back office's reference for the record, when known."""
    crm_id: str | None = None
    command_id: int | None = None
    case_id: int | None = None
    outbox_id: int | None = None
    detail: str = ""
    """A value-free word or two (``sending_past_lease``, ``absent_in_crm``)."""
    fingerprint: str = ""
    """``digest`` of the values involved: the same drift has the same fingerprint."""

    def identity(self) -> str:
        """What makes two findings the same drift (system, class, key, fields, fingerprint)."""
        return digest(self.system, self.code.value, self.key, ",".join(self.fields),
                      self.detail, self.fingerprint)


def count_by_class(findings: Iterable[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.code.value] = counts.get(finding.code.value, 0) + 1
    return counts
