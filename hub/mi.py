"""Management information: demand by service, day, hour, ward and channel; outcomes; time to
complete; and an early warning when a service's daily volume leaves its usual range.

A *request* is a CRM case (its first version in the ledger), dated by when the customer made it
(the CRM's created time). Figures hold no personal data: case types, dates, wards and channels.

Early-warning rule (``early_warnings``): a day is flagged for a service when its count is more than
3 median absolute deviations from the median of the same weekday in the previous 8 weeks. The MAD
is scaled by 1.4826 (comparable to a standard deviation) and taken as at least 1 request, so that a
very steady service is not flagged for one extra case; at least 4 of those 8 weeks must have data.
"""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub import desk_config, wards
from hub.ledger.models import (Case, Command, CommandState, WorkItem, WorkItemState, as_utc, utcnow)

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
CHANNEL_LABELS = {"telephone": "Telephone", "face_to_face": "Face to face", "web": "Web",
                  "email": "E-mail", "other": "Other", None: "Not recorded"}
OUTCOMES = ("Completed automatically", "Completed after staff work", "Refused or cancelled",
            "Still open")
MAD_LIMIT = 3.0
MAD_SCALE = 1.4826
MIN_SPREAD = 1.0
BASELINE_WEEKS = 8
MIN_BASELINE = 4


@dataclass
class Request:
    crm_id: str
    service: str
    contacted_at: datetime
    received_at: datetime
    channel: str | None
    ward: str | None
    outcome: str = "Still open"
    completed_at: datetime | None = None

    @property
    def hours_to_complete(self) -> float | None:
        if self.completed_at is None:
            return None
        return max(0.0, (self.completed_at - self.received_at).total_seconds() / 3600)


@dataclass
class Warning:
    service: str
    day: date
    count: int
    usual: float
    lower: float
    upper: float

    @property
    def direction(self) -> str:
        return "above" if self.count > self.upper else "below"


@dataclass
class Report:
    start: date
    end: date
    services: list[str]
    days: list[date]
    daily: dict[str, list[int]]
    """Per service, one count per day in ``days``."""
    weekday_hour: list[list[int]]
    wards: list[tuple[str, str, int]]
    """(ward code, ward name, requests), busiest first."""
    channels: list[tuple[str, int]]
    outcomes: dict[str, dict[str, int]]
    """Per service, requests per outcome."""
    completion: dict[str, tuple[int, float | None, float | None]]
    """Per service: completed requests, median and 90th percentile hours to complete."""
    warnings: list[Warning]
    total: int
    data_from: date | None
    marks: list[tuple[int, int]] = field(default_factory=list)
    """(service index, day index) of flagged days inside the period, for the chart."""


def _requests(session: Session, start: datetime, end: datetime, service: str | None) -> list[Request]:
    first = (select(Case.crm_id, func.min(Case.id).label("first_id")).group_by(Case.crm_id).subquery())
    contacted = func.coalesce(Case.crm_created_at, Case.received_at)
    query = (select(Case).join(first, first.c.first_id == Case.id)
             .where(contacted >= start, contacted < end))
    if service:
        query = query.where(Case.case_type == service)
    return [Request(crm_id=c.crm_id, service=c.case_type,
                    contacted_at=as_utc(c.crm_created_at or c.received_at),
                    received_at=as_utc(c.received_at), channel=c.channel, ward=c.ward)
            for c in session.scalars(query)]


def _settle_outcomes(session: Session, requests: list[Request]) -> None:
    """Each request's outcome and completion time, from its commands and work items."""
    if not requests:
        return
    by_id = {r.crm_id: r for r in requests}
    ids = list(by_id)
    commands: dict[str, list[tuple[str, datetime | None]]] = defaultdict(list)
    items: dict[str, list[tuple[str, str | None, str, datetime | None]]] = defaultdict(list)
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        for crm_id, state, settled in session.execute(
                select(Case.crm_id, Command.state, Command.settled_at)
                .join(Case, Case.id == Command.case_id).where(Case.crm_id.in_(part))):
            commands[crm_id].append((state, as_utc(settled) if settled else None))
        for crm_id, state, code, kind, closed in session.execute(
                select(Case.crm_id, WorkItem.state, WorkItem.resolution_code, WorkItem.kind,
                       WorkItem.closed_at)
                .join(Case, Case.id == WorkItem.case_id).where(Case.crm_id.in_(part))):
            items[crm_id].append((state, code, kind, as_utc(closed) if closed else None))
    config = desk_config.current()
    for crm_id, request in by_id.items():
        cmds = commands.get(crm_id, [])
        its = items.get(crm_id, [])
        open_items = [i for i in its if i[0] in (WorkItemState.OPEN.value, WorkItemState.IN_PROGRESS.value)]
        refused = any(i[0] == WorkItemState.CANCELLED.value
                      or (i[1] and (r := config.kind(i[2]).resolution(i[1])) is not None
                          and r.crm_status == "rejected") for i in its)
        unsettled = [c for c in cmds if c[0] in (CommandState.PENDING.value, CommandState.SENDING.value,
                                                  CommandState.AWAITING.value)]
        times = [c[1] for c in cmds if c[0] == CommandState.CONFIRMED.value and c[1]]
        times += [i[3] for i in its if i[3]]
        if refused and not open_items:
            request.outcome = OUTCOMES[2]
        elif open_items or unsettled or not (cmds or its):
            request.outcome = OUTCOMES[3]
        elif all(c[0] == CommandState.CONFIRMED.value for c in cmds) and not its:
            request.outcome = OUTCOMES[0]
        else:
            request.outcome = OUTCOMES[1]
        if request.outcome in OUTCOMES[:3] and times:
            request.completed_at = max(times)


def _daily_counts(requests: list[Request]) -> dict[str, Counter[date]]:
    counts: dict[str, Counter[date]] = defaultdict(Counter)
    for r in requests:
        counts[r.service][r.contacted_at.date()] += 1
    return counts


def early_warnings(counts: dict[str, Counter[date]], days: list[date], data_from: date | None
                   ) -> list[Warning]:
    """Flag (service, day) where the count leaves median +/- 3 scaled MADs of the same weekday in
    the previous 8 weeks (see the module docstring)."""
    found = []
    for service, per_day in sorted(counts.items()):
        for day in days:
            baseline = [per_day.get(day - timedelta(weeks=k), 0) for k in range(1, BASELINE_WEEKS + 1)
                        if data_from is not None and day - timedelta(weeks=k) >= data_from]
            if len(baseline) < MIN_BASELINE:
                continue
            usual = statistics.median(baseline)
            spread = max(MAD_SCALE * statistics.median(abs(b - usual) for b in baseline), MIN_SPREAD)
            lower, upper = usual - MAD_LIMIT * spread, usual + MAD_LIMIT * spread
            count = per_day.get(day, 0)
            if count > upper or count < lower:
                found.append(Warning(service, day, count, usual, max(0.0, lower), upper))
    return found


def _quantile(values: list[float], q: float) -> float | None:
    from hub.monitoring import percentile

    return percentile(values, q)


def report(session: Session, *, start: date | None = None, end: date | None = None,
           service: str | None = None, today: date | None = None) -> Report:
    """The figures for requests made from ``start`` to ``end`` (inclusive; default: 8 weeks to today)."""
    today = today or utcnow().date()
    end = min(end or today, today)
    start = start or end - timedelta(weeks=BASELINE_WEEKS) + timedelta(days=1)
    if start > end:
        start, end = end, start
    start = max(start, end - timedelta(days=366))
    as_dt = lambda d: datetime(d.year, d.month, d.day, tzinfo=as_utc(utcnow()).tzinfo)  # noqa: E731
    # Load the baseline weeks too, so days at the start of the period can be judged.
    loaded = _requests(session, as_dt(start - timedelta(weeks=BASELINE_WEEKS)),
                       as_dt(end + timedelta(days=1)), service)
    first_contact = session.scalar(select(func.min(func.coalesce(Case.crm_created_at, Case.received_at))))
    data_from = as_utc(first_contact).date() if first_contact else None
    in_period = [r for r in loaded if start <= r.contacted_at.date() <= end]
    _settle_outcomes(session, in_period)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    counts = _daily_counts(loaded)
    services = sorted({r.service for r in in_period} | ({service} if service else set()))
    daily = {s: [counts[s].get(d, 0) for d in days] for s in services}
    heat = [[0] * 24 for _ in range(7)]
    for r in in_period:
        heat[r.contacted_at.weekday()][r.contacted_at.hour] += 1
    names = wards.table().names
    by_ward = Counter(r.ward for r in in_period)
    ward_rows = sorted(((code or "", names.get(code or "", "Not known") if code else "Not known", n)
                        for code, n in by_ward.items()), key=lambda row: (-row[2], row[1]))
    by_channel = Counter(r.channel for r in in_period)
    channel_rows = [(CHANNEL_LABELS.get(c, str(c)), n) for c, n in by_channel.most_common()]
    outcomes = {s: {o: 0 for o in OUTCOMES} for s in services}
    durations: dict[str, list[float]] = defaultdict(list)
    for r in in_period:
        outcomes[r.service][r.outcome] += 1
        if r.hours_to_complete is not None:
            durations[r.service].append(r.hours_to_complete)
    completion = {s: (len(durations[s]), _quantile(durations[s], 0.5), _quantile(durations[s], 0.9))
                  for s in services}
    judged = [d for d in days if d < today]
    warnings = early_warnings({s: counts[s] for s in services}, judged, data_from)
    index = {d: i for i, d in enumerate(days)}
    marks = [(services.index(w.service), index[w.day]) for w in warnings if w.service in services]
    return Report(start=start, end=end, services=services, days=days, daily=daily,
                  weekday_hour=heat, wards=ward_rows, channels=channel_rows, outcomes=outcomes,
                  completion=completion, warnings=sorted(warnings, key=lambda w: (w.day, w.service),
                                                         reverse=True),
                  total=len(in_period), data_from=data_from, marks=marks)


def service_label(case_type: str) -> str:
    return case_type.replace("_", " ").capitalize().replace("Ctax", "Council Tax").replace(
        "Nndr", "Business rates").replace("Hb ", "Housing Benefit ")


def csv_rows(rep: Report, dataset: str) -> tuple[list[str], list[list[object]]]:
    """A dataset of the report as a header and rows, for CSV export."""
    if dataset == "daily":
        return ["date", "service", "requests"], [[d.isoformat(), s, rep.daily[s][i]]
                                                for s in rep.services for i, d in enumerate(rep.days)]
    if dataset == "weekday_hour":
        return ["weekday", "hour", "requests"], [[WEEKDAYS[w], h, rep.weekday_hour[w][h]]
                                                for w in range(7) for h in range(24)]
    if dataset == "ward":
        return ["ward_code", "ward_name", "requests"], [list(row) for row in rep.wards]
    if dataset == "channel":
        return ["channel", "requests"], [list(row) for row in rep.channels]
    if dataset == "outcomes":
        return ["service", "outcome", "requests"], [[s, o, n] for s, per in rep.outcomes.items()
                                                    for o, n in per.items()]
    if dataset == "time_to_complete":
        return (["service", "completed", "median_hours", "p90_hours"],
                [[s, n, _round(m), _round(p)] for s, (n, m, p) in rep.completion.items()])
    if dataset == "warnings":
        return (["date", "service", "requests", "usual", "lower", "upper", "direction"],
                [[w.day.isoformat(), w.service, w.count, w.usual, round(w.lower, 1), round(w.upper, 1),
                  w.direction] for w in rep.warnings])
    raise KeyError(dataset)


DATASETS = ("daily", "weekday_hour", "ward", "channel", "outcomes", "time_to_complete", "warnings")


def _round(value: float | None) -> float | str:
    return "" if value is None else round(value, 2)
