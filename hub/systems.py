"""Every registered back-office instance, what has happened to it, and its last connection check.

``hub systems`` and ``/api/systems`` answer with ``overview()``: one entry per instance in the
instances file (zero counts where nothing has happened yet), plus any system the ledger still
holds work for that is no longer registered (``registered: false``). ``hub check`` runs each
instance's ``check()`` and keeps the result in the ledger (``connection_checks``, one row per
instance), so the overview shows when each was last reached and what failed.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from connectors import catalog
from connectors.base import Connector
from connectors.errors import ConnectorError, error_class_name
from hub import reports
from hub.ledger.db import session_scope
from hub.ledger.models import ConnectionCheck, utcnow

log = logging.getLogger(__name__)
MESSAGE_LENGTH = 300


@dataclass(frozen=True)
class CheckResult:
    """One connection check: reached and authenticated (``ok``), or the classified error."""

    system: str
    ok: bool
    checked_at: datetime
    duration_ms: int
    error_class: str | None = None
    code: str | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"checked_at": self.checked_at.isoformat()}


def check(system_id: str, *, factory: Callable[[str], Connector] | None = None,
          url: str | None = None) -> CheckResult:
    """Run the instance's ``check()`` and store the result as its last check. Only classified
    errors are expected (the guard turns a defect into ``PermanentError(code="internal")``);
    their messages carry no personal data by the connector contract, and are cut to fit."""
    if factory is None:
        from hub.connections import connector_for as factory
    catalog.entry(system_id)   # KeyError for an unknown instance
    started = time.monotonic()
    error: ConnectorError | None = None
    connector = None
    try:
        connector = factory(system_id)
        connector.check()
    except ConnectorError as exc:
        error = exc
    finally:
        if connector is not None:
            connector.close()
    result = CheckResult(
        system=system_id, ok=error is None, checked_at=utcnow(),
        duration_ms=int((time.monotonic() - started) * 1000),
        error_class=error_class_name(error) if error is not None else None,
        code=(error.code or None) if error is not None else None,
        message=str(error)[:MESSAGE_LENGTH] if error is not None else None)
    _store(result, url)
    return result


def check_all(systems: Iterable[str] | None = None, *,
              factory: Callable[[str], Connector] | None = None,
              url: str | None = None) -> list[CheckResult]:
    """``check`` each instance (every registered one by default), one after the other."""
    return [check(s, factory=factory, url=url) for s in (systems or list(catalog.SYSTEMS))]


def scheduled_checks(*, factory: Callable[[str], Connector] | None = None,
                     url: str | None = None) -> dict[str, Any]:
    """The housekeeping DAG's connection checks: every registered instance, checked and kept as
    ``hub systems --check`` does. A failed check is a result (shown by ``hub systems`` and
    ``/api/systems``), not a failure of the run: the other instances are still checked."""
    results = check_all(factory=factory, url=url)
    failed = [r.system for r in results if not r.ok]
    if failed:
        log.warning("connection checks failed: %s", ", ".join(
            f"{r.system} ({r.error_class} {r.code or '-'})" for r in results if not r.ok))
    return {"checked": len(results), "failed": failed}


def _store(result: CheckResult, url: str | None) -> None:
    with session_scope(url) as session:
        row = session.get(ConnectionCheck, result.system) or ConnectionCheck(system=result.system)
        row.checked_at, row.ok, row.duration_ms = result.checked_at, result.ok, result.duration_ms
        row.error_class = result.error_class
        row.code = (result.code or "")[:80] or None
        row.message = result.message
        session.add(row)


def last_checks(url: str | None = None) -> dict[str, CheckResult]:
    with session_scope(url) as session:
        return {r.system: CheckResult(system=r.system, ok=r.ok, checked_at=r.checked_at,
                                      duration_ms=r.duration_ms, error_class=r.error_class,
                                      code=r.code, message=r.message)
                for r in session.scalars(select(ConnectionCheck))}


def overview(url: str | None = None) -> dict[str, dict[str, Any]]:
    """Per instance: what it is (connector, connection, team, schedules), its figures (zero
    where nothing has happened) and its last connection check (``None`` before the first)."""
    figures = reports.system_figures(url)
    checks = last_checks(url)
    zero = dict.fromkeys(reports.FIGURES, 0)
    out: dict[str, dict[str, Any]] = {}
    for system_id, found in catalog.SYSTEMS.items():
        out[system_id] = {
            "registered": True, "connector": found.connector_id, "conn_id": found.conn_id,
            "team": found.team, "dispatch": found.dispatch, "status_sync": found.status_sync,
            **zero, **figures.get(system_id, {}),
            "last_check": checks[system_id].as_dict() if system_id in checks else None}
    for system_id in sorted(set(figures) - set(out)):
        out[system_id] = {"registered": False, **zero, **figures[system_id],
                          "last_check": checks[system_id].as_dict() if system_id in checks else None}
    return out
