"""What a Bartec ``Errors`` block means: the ``Result`` number, or its message where the number
is generic.

Numbers with a meaning are classified by number. Real systems often answer a refusal with a
generic number (1, -1, 99...) and say what is wrong only in ``Message``; those are recognised by
the message's wording (case-insensitive patterns below, none quoting personal data). A message
nothing matches keeps ``bartec-<n>``, so an operator sees the raw number.
"""
from __future__ import annotations

import re

INVALID_TOKEN = 2
DUPLICATE_REFERENCE = 6

#: Result number -> (code, field of the hub's payload the refusal is about).
BY_NUMBER: dict[int, tuple[str, str | None]] = {
    INVALID_TOKEN: ("invalid-token", None),
    3: ("unknown-premises", "uprn"),
    4: ("slot-unavailable", "slot_date"),
    5: ("collection-not-due", "collection_date"),
    DUPLICATE_REFERENCE: ("duplicate", None),
    7: ("unknown-service-type", None),
    8: ("not-found", None),
    9: ("no-scheduled-collection", "collection_date"),
}

#: Numbers that say only "something went wrong": read the message instead.
GENERIC_NUMBERS = frozenset({-1, 1, 99, 100, 500, 999})

#: (pattern on the message, code, field): first match wins.
BY_MESSAGE: tuple[tuple[re.Pattern[str], str, str | None], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), code, field) for pattern, code, field in [
        (r"\btoken\b.*\b(invalid|expired|not valid)\b|\b(invalid|expired)\b.*\btoken\b",
         "invalid-token", None),
        (r"external\s*reference.*\b(already|exists|duplicate)|duplicate", "duplicate", None),
        (r"\b(premises|uprn|property)\b.*\b(not found|unknown|invalid|does not exist)"
         r"|\b(unknown|invalid)\b.*\b(premises|uprn)\b", "unknown-premises", "uprn"),
        (r"\bslot\b.*\b(no longer|not)\s+available|\bslot\b.*\b(full|booked)\b"
         r"|\bno\b.*\bslots?\b.*\bavailable", "slot-unavailable", "slot_date"),
        (r"not (yet )?due|\bin the future\b", "collection-not-due", "collection_date"),
        (r"no (collection|round).*scheduled|not a collection day", "no-scheduled-collection",
         "collection_date"),
        (r"within \d+ days|too (old|late)", "reported-too-late", "collection_date"),
        (r"service\s*type.*\b(not found|unknown|invalid)", "unknown-service-type", None),
        (r"note\s*type.*\b(not found|unknown|invalid)", "unknown-note-type", None),
        (r"service request.*\bnot found\b|\bdoes not exist\b", "not-found", None),
    ])


def classify_result(number: int, message: str) -> tuple[str, str | None]:
    """(code, field) for an ``Errors`` block; code ``ok`` for 0."""
    if number == 0:
        return "ok", None
    if number in BY_NUMBER and number not in GENERIC_NUMBERS:
        return BY_NUMBER[number]
    for pattern, code, field in BY_MESSAGE:
        if pattern.search(message or ""):
            return code, field
    return BY_NUMBER.get(number, (f"bartec-{number}", None))
