"""Deterministic command keys: ``<crm_id>.<step>.<10 hex of sha256(canonical JSON payload)>``."""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

MAX_KEY_LENGTH = 64
HASH_LENGTH = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def canonical_json(payload: Mapping[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8 text; raises ``ValueError`` for non-JSON values."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def safe_case_id(crm_id: str, budget: int) -> str:
    """``crm_id`` as it appears in a key: unsafe characters become ``-``; when it had to change
    or is longer than ``budget``, a 6-hex digest of the original keeps distinct ids distinct."""
    safe = _UNSAFE.sub("-", crm_id)
    if safe == crm_id and len(safe) <= budget:
        return safe
    return f"{safe[:max(0, budget - 7)]}-{_digest(crm_id, 6)}"


def command_key(crm_id: str, step: str, payload: Mapping[str, Any]) -> str:
    """The idempotency key of one command (at most 64 characters of ``[A-Za-z0-9._-]``)."""
    budget = MAX_KEY_LENGTH - len(step) - HASH_LENGTH - 2
    return f"{safe_case_id(crm_id, budget)}.{step}.{_digest(canonical_json(payload), HASH_LENGTH)}"
