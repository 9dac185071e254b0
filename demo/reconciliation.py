"""`make demo`'s reconciliation step: after the main run, one drift of each finding class is made
once (a rerun makes none: ``reconcile_seeded.json`` in the demo home remembers), then each
system's ``<system>_reconcile`` DAG runs in Airflow, heals the safe ones, and the step reports the
runs of this demo (found per class: new findings only; healed; work items opened).

Where each drift is made: the back-office and CRM classes by ``demo.drift`` (``drift.json``;
a record deleted, added, changed and given a silent status in the back offices, a write-back the
CRM loses), and in the ledger here (``reconcile_seeded.json``):

- stuck: a confirmed Revenues command put back to ``sending`` with a claim older than the lease;
- unmapped_case: a CRM case recorded in the ledger two hours ago and never mapped.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from sqlalchemy import func, select, update

from demo.driver import Demo, say

MARKER = "reconcile_seeded.json"
SYSTEM = "revenues_northgate"
UNMAPPED_CRM_ID = "CRM-RECON-UNMAPPED"


def last_run_id() -> int:
    """The newest reconciliation run so far (0 for none): the demo's runs come after it."""
    from hub.ledger.db import session_scope
    from hub.ledger.models import ReconcileRun

    with session_scope() as session:
        return int(session.scalar(select(func.max(ReconcileRun.id))) or 0)


def seed_once(d: Demo) -> dict[str, str]:
    """Make one drift of each class, the first time only; returns ``{class: record}`` of what
    was seeded now. The back-office and CRM classes come from ``demo.drift`` (spread over the
    back offices); stuck and unmapped_case are made in the ledger here."""
    from demo import drift

    seeded = {code: str(entry.get("reference") or entry.get("key"))
              for code, entry in drift.seed_drift(d.home, d.crm, d.systems).items()}
    marker = d.home / MARKER
    if not marker.exists():
        used = {str(e.get("reference")) for e in drift.seeded(d.home).values()}
        picks = [p for p in _candidates() if p["reference"] not in used
                 and p["crm_id"] not in used]
        if len(picks) < 2 or not any(s.system_id == SYSTEM for s in d.systems):
            say(f"reconciliation: too few confirmed {SYSTEM} records to seed stuck and unmapped")
        else:
            stuck, like = picks[0], picks[1]
            _seed_stuck(stuck["command_id"])
            with httpx.Client(timeout=20) as http:
                _seed_unmapped(d, http, like)
            ledger_side = {"stuck": stuck["reference"], "unmapped_case": UNMAPPED_CRM_ID}
            marker.write_text(json.dumps(ledger_side, indent=2, sort_keys=True))
            seeded.update(ledger_side)
    if seeded:
        say("reconciliation: seeded one drift of each class: "
            + ", ".join(f"{code} ({ref})" for code, ref in sorted(seeded.items())))
    return seeded


def all_seeded(home: Any) -> dict[str, str]:
    """Every class seeded so far (by ``demo.drift`` and here), with its record."""
    from demo import drift

    out = {code: str(entry.get("reference") or entry.get("key"))
           for code, entry in drift.seeded(home).items()}
    marker = home / MARKER
    if marker.exists():
        out.update(json.loads(marker.read_text()))
    return out


def _ok(answer: httpx.Response) -> None:
    if answer.status_code >= 300:
        raise SystemExit(f"[demo] drift seeding refused: {answer.request.method} "
                         f"{answer.request.url.path} -> {answer.status_code}")


def _candidates() -> list[dict[str, Any]]:
    """Confirmed Revenues commands, one per CRM case that only Revenues wrote back to, whose
    back-office record a staff change did not touch (newest first)."""
    from hub.ledger.db import session_scope
    from hub.ledger.models import Case, Command, CommandState, OutboxMessage

    picks: list[dict[str, Any]] = []
    with session_scope() as session:
        other = select(OutboxMessage.crm_id).where(OutboxMessage.system != SYSTEM)
        changed = select(OutboxMessage.crm_id).where(OutboxMessage.kind == "update")
        rows = session.execute(
            select(Command.id, Command.key, Command.reference, Command.operation, Case.crm_id)
            .join(Case, Case.id == Command.case_id)
            .where(Command.system == SYSTEM, Command.state == CommandState.CONFIRMED.value,
                   Command.reference.is_not(None), Case.crm_id.not_in(other),
                   Case.crm_id.not_in(changed))
            .order_by(Command.id.desc())).all()
        seen: set[str] = set()
        for row in rows:
            if row.crm_id in seen:
                continue
            seen.add(row.crm_id)
            picks.append({"command_id": row.id, "key": row.key, "reference": row.reference,
                          "operation": row.operation, "crm_id": row.crm_id})
    return picks


def _seed_stuck(command_id: int) -> None:
    from hub.ledger.db import session_scope
    from hub.ledger.models import Command, CommandState

    with session_scope() as session:
        session.execute(update(Command).where(Command.id == command_id).values(
            state=CommandState.SENDING.value, claim_token="demo-stuck",
            claimed_at=datetime.now(timezone.utc) - timedelta(hours=1), settled_at=None))


def _seed_unmapped(d: Demo, http: httpx.Client, like: dict[str, Any]) -> None:
    """A case in the CRM, recorded by the hub two hours ago and never mapped."""
    from crm_adapter.models import CrmCase
    from hub import intake
    from hub.ledger.db import session_scope
    from hub.ledger.models import Case

    with session_scope() as session:
        template = session.scalar(select(Case).where(Case.crm_id == like["crm_id"])
                                  .order_by(Case.version.desc()).limit(1))
        case_type, data = template.case_type, dict(template.payload or {})
    answer = http.put(f"{d.crm.base_url}/api/v1/cases/{UNMAPPED_CRM_ID}",
                      headers={"Authorization": f"Bearer {d.crm.token}"},
                      json={"case_type": case_type, "data": data})
    _ok(answer)
    body = answer.json()
    intake.record_case(CrmCase(crm_id=UNMAPPED_CRM_ID, version=int(body.get("version", 1)),
                               case_type=case_type, data=data,
                               updated_at=datetime.now(timezone.utc)), source="pull")
    with session_scope() as session:
        session.execute(update(Case).where(Case.crm_id == UNMAPPED_CRM_ID).values(
            received_at=datetime.now(timezone.utc) - timedelta(hours=2)))


def report(after_run: int) -> dict[str, Any]:
    """This demo's reconciliation runs (ids above ``after_run``): new findings per class,
    healed, work items opened, and findings already known (still open)."""
    from hub.ledger.db import session_scope
    from hub.ledger.models import ReconcileFinding, ReconcileRun

    with session_scope() as session:
        runs = list(session.scalars(select(ReconcileRun).where(ReconcileRun.id > after_run)
                                    .order_by(ReconcileRun.id)))
        found: dict[str, int] = {}
        known: dict[str, int] = {}
        for finding in session.scalars(select(ReconcileFinding)
                                       .where(ReconcileFinding.run_id > after_run)):
            bucket = found if finding.is_new else known
            bucket[finding.code] = bucket.get(finding.code, 0) + 1
        return {"found": dict(sorted(found.items())),
                "healed": sum(r.healed for r in runs),
                "work_items": sum(r.work_items_opened for r in runs),
                "known": dict(sorted(known.items())),
                "runs": {r.system: {"run": r.id, "status": r.status, "error": r.error}
                         for r in runs}}


def print_report(rec: dict[str, Any]) -> None:
    print()
    print("Reconciliation (CRM, ledger and back offices compared in Airflow, "
          "<system>_reconcile):")
    if rec["found"]:
        width = max(len(c) for c in rec["found"])
        for code, n in rec["found"].items():
            print(f"  {code:<{width}}  {n} new")
    else:
        print("  nothing new found")
    if rec["known"]:
        print("  already known (work items open): "
              + ", ".join(f"{c} {n}" for c, n in rec["known"].items()))
    print(f"  healed {rec['healed']}; work items opened {rec['work_items']}")
    failed = [s for s, r in rec["runs"].items() if r["status"] != "finished" or r["error"]]
    if failed:
        print("  notes: " + "; ".join(f"{s}: {rec['runs'][s]['status']} {rec['runs'][s]['error'] or ''}".strip()
                                      for s in failed))
