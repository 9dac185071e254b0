"""In-memory stand-ins for a back office and the CRM, counting every effect they apply.

The back office does NOT dedupe a create on its own (unless ``looks_first``): a command sent twice
shows as two creates, so a test sees whether the hub itself kept an effect to once.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from connectors.base import (BackOfficeRecord, Command, ConnectorConfig, Outcome, OutcomeStatus,
                             Update)
from connectors.revenues.operations import OPERATIONS
from crm_adapter.models import CrmCaseState, WriteBack
from tests.hub.scripted import ScriptedConnector


class MemoryBackOffice(ScriptedConnector):
    """revenues_northgate's name, an in-memory store of records keyed by command key."""

    def __init__(self, *, looks_first: bool = True) -> None:
        super().__init__()
        self.looks_first = looks_first
        self.store: dict[str, BackOfficeRecord] = {}
        self.creates = 0
        self.lookups = 0
        self._lock = threading.Lock()

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        out = []
        with self._lock:
            for c in commands:
                if self.looks_first and c.maybe_sent and c.key in self.store:
                    out.append(Outcome(c.key, OutcomeStatus.CONFIRMED,
                                       reference=self.store[c.key].reference))
                    continue
                self.creates += 1
                ref = f"RQ{self.creates:06d}"
                self.store[c.key] = BackOfficeRecord(ref, c.key, "OPEN", dict(c.payload),
                                                     crm_status="open",
                                                     changed_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
                out.append(Outcome(c.key, OutcomeStatus.CONFIRMED, reference=ref))
        return out

    def records(self, *, since: datetime | None = None,
                page_size: int = 500) -> Iterator[BackOfficeRecord]:
        with self._lock:
            items = list(self.store.values())
        yield from reversed(items)          # not in key order: the hub sorts

    def snapshot(self, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        with self._lock:
            self.lookups += 1
            return {k: {"reference": self.store[k].reference, "status": self.store[k].status}
                    for k in keys if k in self.store}


class MemoryCrm:
    """The CRM's write-back and case-state API: each idempotency key applied once."""

    def __init__(self) -> None:
        self.cases: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, str] = {}
        self.applied = 0
        self.history: list[str] = []
        """Every idempotency key applied, in order (a key lost and applied again shows twice)."""
        self._lock = threading.Lock()

    def write_back(self, crm_id: str, update: WriteBack) -> None:
        with self._lock:
            if update.idempotency_key in self.keys:
                return
            self.keys[update.idempotency_key] = crm_id
            self.applied += 1
            self.history.append(update.idempotency_key)
            case = self.cases.setdefault(crm_id, {"status": "new", "ref": None, "system": None})
            case["status"] = update.status
            case["ref"] = update.backoffice_reference or case["ref"]
            case["system"] = update.backoffice_system or case["system"]

    def lose_writebacks(self, crm_id: str) -> None:
        with self._lock:
            self.cases[crm_id] = {"status": "new", "ref": None, "system": None}
            self.keys = {k: v for k, v in self.keys.items() if v != crm_id}

    def iter_case_states(self, page_size: int = 200) -> Iterator[CrmCaseState]:
        with self._lock:
            cases = sorted(self.cases.items())
        for crm_id, case in cases:
            yield CrmCaseState(crm_id=crm_id, status=case["status"],
                               backoffice_reference=case["ref"], backoffice_system=case["system"])


__all__ = ["MemoryBackOffice", "MemoryCrm", "ConnectorConfig", "Update", "OPERATIONS"]
