"""Management information page: demand charts (server-rendered SVG), early warnings, CSV export
(``hub.mi`` computes the figures)."""
from __future__ import annotations

import csv
import io
from datetime import date

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from hub import mi
from hub.accounts import ADMIN, OPERATIONS, StaffUser
from hub.ledger.db import session_scope
from hub.web import charts
from hub.web.auth import ledger_url, require_role
from hub.web.pages import render

mi_reader = require_role(OPERATIONS, ADMIN)
router = APIRouter(prefix="/mi", dependencies=[Depends(mi_reader)])


def _date(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise HTTPException(422, f"{field} is not a date (use YYYY-MM-DD).") from exc


def _report(request: Request, start: str, end: str, service: str) -> mi.Report:
    with session_scope(ledger_url(request)) as session:
        return mi.report(session, start=_date(start, "from"), end=_date(end, "to"),
                         service=service[:80] or None)


@router.get("", name="mi")
def mi_page(request: Request, user: StaffUser = Depends(mi_reader), start: str = "", end: str = "",
            service: str = "") -> Response:
    rep = _report(request, start, end, service)
    with session_scope(ledger_url(request)) as session:
        from sqlalchemy import select

        from hub.ledger.models import Case

        all_services = sorted(session.scalars(select(Case.case_type).distinct()))
    labels = [mi.service_label(s) for s in rep.services]
    series = [(labels[i], rep.daily[s]) for i, s in enumerate(rep.services)]
    day_labels = [d.strftime("%d %b") for d in rep.days]
    outcome_series = [(o, [rep.outcomes[s][o] for s in rep.services]) for o in mi.OUTCOMES]
    chart = {
        "daily": charts.lines(day_labels, series, marks=rep.marks,
                              title="Requests per day by service"),
        "heat": charts.heatmap(list(mi.WEEKDAYS), [f"{h:02d}" for h in range(24)], rep.weekday_hour,
                               title="Requests by weekday and hour"),
        "ward": charts.bars([w[1] for w in rep.wards], [w[2] for w in rep.wards],
                            title="Requests by ward"),
        "channel": charts.bars([c[0] for c in rep.channels], [c[1] for c in rep.channels],
                               title="Requests by channel"),
        "outcomes": charts.stacked_bars(labels, outcome_series, title="Outcomes by service"),
    }
    query = {"start": start, "end": end, "service": service}
    return render(request, "mi.html", {
        "rep": rep, "chart": chart, "labels": dict(zip(rep.services, labels)),
        "all_services": all_services, "service_label": mi.service_label, "query": query,
        "legend": [(labels[i], charts.colour(i)) for i in range(len(labels))],
        "outcome_legend": [(o, charts.colour(i)) for i, o in enumerate(mi.OUTCOMES)],
        "filters": {"start": rep.start.isoformat(), "end": rep.end.isoformat(), "service": service},
        "rule": {"limit": mi.MAD_LIMIT, "weeks": mi.BASELINE_WEEKS, "min": mi.MIN_BASELINE}})


def _safe(value: object) -> object:
    """Spreadsheets run cells that start with = + - @: quote those (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


@router.get("/{dataset}.csv", name="mi_csv")
def mi_csv(request: Request, dataset: str, user: StaffUser = Depends(mi_reader), start: str = "",
           end: str = "", service: str = "") -> Response:
    if dataset not in mi.DATASETS:
        raise HTTPException(404, f"No dataset {dataset!r}; choose one of {', '.join(mi.DATASETS)}.")
    rep = _report(request, start, end, service)
    header, rows = mi.csv_rows(rep, dataset)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([[_safe(v) for v in row] for row in rows])
    name = f"hub-{dataset}-{rep.start.isoformat()}-to-{rep.end.isoformat()}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
