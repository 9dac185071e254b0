"""One reconciliation run for one system: read the three sides, compare, heal, store.

``reconcile_system`` is what the DAG task and ``hub reconcile`` call. A run is a row in
``reconcile_runs`` (counts per side, findings per class, healed, work items opened) with its
findings in ``reconcile_findings`` (class, record, fields; never values). A finding is *new*
when no earlier (not dry) run, finished before this one started, saw the same drift (``Finding.identity``); only new safe findings
are healed, and a healed drift that comes back becomes a work item.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from connectors.base import Connector
from connectors.errors import ConnectorError, error_class_name
from hub import outbox
from hub.dispatch import LEASE
from hub.ledger.db import session_scope
from hub.ledger.models import ReconcileFinding, ReconcileRun, utcnow
from hub.reconcile import core, heal, sources
from hub.reconcile.extsort import DEFAULT_RUN_SIZE, Spool
from hub.reconcile.findings import CLASSES, SAFE_CLASSES, Finding, FindingClass

log = logging.getLogger(__name__)

UNMAPPED_AFTER = timedelta(hours=1)


@dataclass
class RunReport:
    """What one run found and did (the DAG task's return value; the CLI prints it)."""

    run: int
    system: str
    dry_run: bool
    started: datetime
    status: str = "running"
    compared: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    new: dict[str, int] = field(default_factory=dict)
    healed: int = 0
    work_items: int = 0
    resent: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self)) | {"started": self.started.isoformat()}


def reconcile_system(system: str, *, connector: Connector | None, crm: Any = None,
                     url: str | None = None, dry_run: bool = False,
                     now: datetime | None = None, run_id: str | None = None,
                     lease: timedelta = LEASE, unmapped_after: timedelta = UNMAPPED_AFTER,
                     run_size: int = DEFAULT_RUN_SIZE, systems_of: Any = None,
                     deliver: bool = True) -> RunReport:
    """Reconcile ``system``: the ledger against ``connector.records()`` and ``crm``'s case
    states (either may be None: that side is left out and the run says so), then heal (unless
    ``dry_run``) and store the run. Connector and CRM errors fail the run (stored as failed) and
    are raised again for the caller (the DAG task retries)."""
    policy = core.Policy(now=now or utcnow(), lease=lease, unmapped_after=unmapped_after)
    started = utcnow()
    with session_scope(url) as session:
        row = ReconcileRun(system=system, dry_run=dry_run, status="running", started_at=started,
                           ledger_records=0, backoffice_records=0, crm_records=0, new_findings=0,
                           healed=0, work_items_opened=0, run_id=(run_id or "")[:250] or None)
        session.add(row)
        session.flush()
        report = RunReport(run=row.id, system=system, dry_run=dry_run, started=started)
    tally = core.Tally()
    notes: list[str] = []
    try:
        findings, read = _compare(system, connector, crm, url, policy, tally, run_size,
                                  systems_of, notes)
        _settle(report, findings, read, connector, crm, url, dry_run)
        if not dry_run and deliver and crm is not None:
            outbox.deliver_pending(crm, url=url, system=system, stop_on_transient=True)
        report.status = "finished"
    except ConnectorError as exc:
        report.status = "failed"
        notes.append(f"{error_class_name(exc)} {exc.code or ''}".strip())
        raise
    except Exception as exc:
        report.status = "failed"
        notes.append(type(exc).__name__)
        raise
    finally:
        report.compared = tally.as_dict()
        report.error = "; ".join(notes)[:500] or None
        _store_run(report, url)
    log.info("reconcile %s run %d: %s found %s (new %s), healed %d, work items %d", system,
             report.run, report.status, report.found, report.new, report.healed,
             report.work_items)
    return report


def _compare(system: str, connector: Connector | None, crm: Any, url: str | None,
             policy: core.Policy, tally: core.Tally, run_size: int, systems_of: Any,
             notes: list[str]) -> tuple[list[Finding], dict[int, core.LedgerCommand]]:
    findings: list[Finding] = []
    read: dict[int, core.LedgerCommand] = {}
    seen: Spool[core.StatusSeen] = Spool(lambda s: s.crm_id, run_size=run_size)
    try:
        with session_scope(url) as session:
            records: Any = iter(())
            listed = None
            if connector is None:
                notes.append("back office not read (no connector)")
                listed = _nothing
            else:
                try:
                    records = sources.backoffice_records(connector, run_size=run_size)
                except NotImplementedError:
                    notes.append("back office cannot list its records")
                    listed = _nothing
            last: list[core.LedgerCommand] = []
            for finding in core.compare_backoffice(
                    system, _remember(sources.ledger_commands(
                        session, system, getattr(connector, "operations", None)), last), records,
                    policy, tally=tally, observe=seen.add, listed=listed):
                if finding.command_id is not None and last \
                        and last[0].command_id == finding.command_id:
                    read[finding.command_id] = last[0]
                findings.append(finding)
            if crm is None:
                notes.append("CRM not read")
                seen.close()
            else:
                views = sources.crm_views(crm.iter_case_states())
                findings += core.compare_crm(system, sources.ledger_messages(session, system),
                                             views, seen.sorted(), tally=tally)
            if systems_of is None:
                systems_of = _default_routes()
            findings += core.unmapped_cases(system, sources.received_cases(
                session, system, systems_of), policy, tally=tally)
    finally:
        seen.close()
    return findings, read


def _nothing(_command: core.LedgerCommand) -> bool:
    return False


def _remember(commands: Iterator[core.LedgerCommand],
              last: list[core.LedgerCommand]) -> Iterator[core.LedgerCommand]:
    """Pass the commands on, keeping the latest (a finding about it comes before the next)."""
    for command in commands:
        last[:] = [command]
        yield command


def _default_routes() -> Any:
    from hub.intake import default_mappings

    mappings = default_mappings()
    return mappings.systems_for


def _settle(report: RunReport, findings: list[Finding], read: dict[int, core.LedgerCommand],
            connector: Connector | None, crm: Any, url: str | None, dry_run: bool) -> None:
    healer = heal.Healer(report.system, connector, crm, url, started=report.started)
    rows: list[dict[str, Any]] = []
    for finding in findings:
        code = finding.code.value
        report.found[code] = report.found.get(code, 0) + 1
        identity = finding.identity()
        before = _earlier(identity, report.started, url)
        is_new = before is None
        if is_new:
            report.new[code] = report.new.get(code, 0) + 1
        work_item_id = before[1] if before else None
        if dry_run:
            outcome = heal.Outcome(heal.REPORTED, work_item_id)
        elif before is not None and before[0] != heal.HEALED:
            outcome = heal.Outcome(before[0], work_item_id)     # known: already in hand
            if before[0] in (heal.HEAL_FAILED, heal.CHANGED_MEANWHILE, heal.PRESENT_ON_LOOKUP):
                outcome = _act(healer, finding, read)            # those may be tried again
        elif before is not None:
            outcome = healer.work_item(finding, again=True)      # healed once, came back
        else:
            outcome = _act(healer, finding, read)
        report.healed += outcome.outcome == heal.HEALED
        report.work_items += outcome.work_item_opened
        report.resent += (outcome.outcome == heal.HEALED and finding.code in (
            FindingClass.MISSING_IN_BACKOFFICE, FindingClass.STUCK))
        rows.append({"system": finding.system, "code": code, "key": finding.key[:200],
                     "reference": (finding.reference or "")[:120] or None,
                     "crm_id": (finding.crm_id or "")[:64] or None,
                     "command_id": finding.command_id, "case_id": finding.case_id,
                     "fields": ",".join(finding.fields)[:500], "detail": finding.detail[:40],
                     "identity": identity, "is_new": is_new, "outcome": outcome.outcome,
                     "work_item_id": outcome.work_item_id})
        if len(rows) >= 500:
            _store_findings(report.run, rows, url)
            rows = []
    _store_findings(report.run, rows, url)


def _act(healer: heal.Healer, finding: Finding,
         read: dict[int, core.LedgerCommand]) -> heal.Outcome:
    if finding.code in SAFE_CLASSES:
        command = read.get(finding.command_id) if finding.command_id is not None else None
        return healer.heal(finding, command)
    return healer.work_item(finding)


def _earlier(identity: str, started: datetime,
            url: str | None) -> tuple[str, int | None] | None:
    """The latest finding of the same drift by a (not dry) run that finished before this one
    started: its outcome and work item. A run going on at the same time does not count: what it
    heals, this run finds changed and leaves alone."""
    with session_scope(url) as session:
        row = session.execute(
            select(ReconcileFinding.outcome, ReconcileFinding.work_item_id)
            .join(ReconcileRun, ReconcileRun.id == ReconcileFinding.run_id)
            .where(ReconcileFinding.identity == identity, ReconcileRun.dry_run.is_(False),
                   ReconcileRun.finished_at < started)
            .order_by(ReconcileFinding.id.desc()).limit(1)).first()
        return (row.outcome, row.work_item_id) if row else None


def _store_findings(run: int, rows: list[dict[str, Any]], url: str | None) -> None:
    if not rows:
        return
    now = utcnow()
    with session_scope(url) as session:
        session.add_all(ReconcileFinding(run_id=run, created_at=now, **row) for row in rows)


def _store_run(report: RunReport, url: str | None) -> None:
    with session_scope(url) as session:
        row = session.get(ReconcileRun, report.run)
        row.status = report.status
        row.finished_at = utcnow()
        row.ledger_records = report.compared.get("ledger", 0)
        row.backoffice_records = report.compared.get("backoffice", 0)
        row.crm_records = report.compared.get("crm", 0)
        row.findings_by_class = {code: report.found.get(code, 0) for code in CLASSES
                                 if report.found.get(code)}
        row.new_findings = sum(report.new.values())
        row.healed = report.healed
        row.work_items_opened = report.work_items
        row.error = report.error


def reconcile_configured(system: str, *, dry_run: bool = False, run_id: str | None = None,
                         url: str | None = None) -> RunReport:
    """``reconcile_system`` with the connector and the CRM client built from their Airflow
    Connections (``hub.connections``): what the DAG task and ``hub reconcile`` run."""
    from hub import connections

    connector = connections.connector_for(system)
    try:
        with connections.crm_client() as crm:
            return reconcile_system(system, connector=connector, crm=crm, url=url,
                                    dry_run=dry_run, run_id=run_id)
    finally:
        connector.close()
