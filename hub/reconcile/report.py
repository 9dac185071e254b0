"""Reading runs and findings back for people: the Reconciliation page and its CSV download."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.ledger.models import ReconcileFinding, ReconcileRun
from hub.reconcile.findings import CLASSES

CSV_HEADER = ("run", "run_started", "system", "class", "key", "reference", "crm_case", "fields",
              "detail", "new", "outcome", "work_item")
CSV_LIMIT = 200_000


@dataclass(frozen=True)
class Filters:
    """What the page and the CSV are narrowed to (values checked against what exists)."""

    system: str | None = None
    code: str | None = None
    run: int | None = None

    @classmethod
    def parse(cls, system: str, code: str, run: str) -> "Filters":
        if code and code not in CLASSES:
            raise ValueError(f"class must be one of {', '.join(CLASSES)}")
        if run and not (run.isdigit() and len(run) < 10):
            raise ValueError("run must be a run number")
        if system and len(system) > 64:
            raise ValueError("system is too long")
        return cls(system or None, code or None, int(run) if run else None)


def runs(session: Session, filters: Filters, limit: int = 50) -> list[ReconcileRun]:
    query = select(ReconcileRun).order_by(ReconcileRun.id.desc()).limit(limit)
    if filters.system:
        query = query.where(ReconcileRun.system == filters.system)
    return list(session.scalars(query))


def _findings_query(filters: Filters) -> Any:
    query = (select(ReconcileFinding, ReconcileRun.started_at)
             .join(ReconcileRun, ReconcileRun.id == ReconcileFinding.run_id)
             .order_by(ReconcileFinding.id.desc()))
    if filters.system:
        query = query.where(ReconcileFinding.system == filters.system)
    if filters.code:
        query = query.where(ReconcileFinding.code == filters.code)
    if filters.run is not None:
        query = query.where(ReconcileFinding.run_id == filters.run)
    return query


def findings(session: Session, filters: Filters, limit: int = 200) -> list[ReconcileFinding]:
    return [row[0] for row in session.execute(_findings_query(filters).limit(limit))]


def systems(session: Session) -> list[str]:
    return list(session.scalars(select(ReconcileRun.system).distinct().order_by(ReconcileRun.system)))


def csv_rows(session: Session, filters: Filters) -> Iterator[tuple[Any, ...]]:
    """The findings as CSV rows (newest first), read in pages."""
    query = _findings_query(filters).limit(CSV_LIMIT).execution_options(yield_per=1000)
    for finding, started in session.execute(query):
        yield (finding.run_id, started.isoformat() if started else "", finding.system,
               finding.code, finding.key, finding.reference or "", finding.crm_id or "",
               finding.fields, finding.detail, "yes" if finding.is_new else "no",
               finding.outcome, finding.work_item_id or "")
