"""The Reconciliation page (operations staff): runs per system, their findings filtered by system,
class and run, and the findings as CSV (``hub.reconcile.report`` reads the ledger)."""
from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from hub.accounts import OPERATIONS, StaffUser
from hub.ledger.db import session_scope
from hub.reconcile import report
from hub.reconcile.findings import CLASSES
from hub.reconcile.heal import LABELS
from hub.reconcile.findings import FindingClass
from hub.web.auth import ledger_url, require_role
from hub.web.pages import render

operations_only = require_role(OPERATIONS)
router = APIRouter(prefix="/reconciliation", dependencies=[Depends(operations_only)])


def _filters(system: str, code: str, run: str) -> report.Filters:
    try:
        return report.Filters.parse(system, code, run)
    except ValueError as exc:
        raise HTTPException(422, str(exc).capitalize() + ".") from exc


@router.get("", name="reconciliation")
def reconciliation_page(request: Request, user: StaffUser = Depends(operations_only),
                        system: str = "", code: str = "", run: str = "") -> Response:
    filters = _filters(system, code, run)
    with session_scope(ledger_url(request)) as session:
        runs = report.runs(session, filters)
        found = report.findings(session, filters)
        systems = report.systems(session)
    return render(request, "reconciliation.html", {
        "runs": runs, "findings": found, "systems": systems, "classes": CLASSES,
        "labels": {c.value: LABELS[c] for c in FindingClass}, "filters": filters,
        "query": {k: v for k, v in (("system", system), ("code", code), ("run", run)) if v}})


def _safe(value: object) -> object:
    """Spreadsheets run cells that start with = + - @: quote those (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


@router.get("/findings.csv", name="reconciliation_csv")
def reconciliation_csv(request: Request, user: StaffUser = Depends(operations_only),
                       system: str = "", code: str = "", run: str = "") -> Response:
    filters = _filters(system, code, run)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(report.CSV_HEADER)
    with session_scope(ledger_url(request)) as session:
        for row in report.csv_rows(session, filters):
            writer.writerow([_safe(v) for v in row])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             'attachment; filename="hub-reconciliation-findings.csv"'})
