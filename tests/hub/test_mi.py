"""Management information: demand by service, day, hour, ward and channel; outcomes; time to
complete; the early-warning rule; CSV export."""
from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from hub import mi
from hub.ledger import db
from tests.web.history import build, record

TODAY = date(2026, 3, 18)   # a Wednesday


def test_the_rule_flags_a_day_far_from_its_weekdays_and_not_ordinary_noise() -> None:
    spike_day = TODAY - timedelta(days=1)
    per_day = Counter({spike_day - timedelta(weeks=k): n for k, n in zip(range(1, 9), [5, 6, 4, 5, 7, 5, 6, 4])})
    per_day[spike_day] = 20
    calm = TODAY - timedelta(days=2)
    per_day.update({calm - timedelta(weeks=k): 5 for k in range(1, 9)})
    per_day[calm] = 7   # within 3 MADs (floor of one request): not flagged
    found = mi.early_warnings({"waste_missed_bin": per_day}, [calm, spike_day],
                              data_from=TODAY - timedelta(weeks=10))
    assert [(w.day, w.count, w.direction) for w in found] == [(spike_day, 20, "above")]
    assert found[0].usual == 5 and found[0].upper < 20
    # with fewer than 4 weeks of data before it, a day is not judged at all
    assert mi.early_warnings({"waste_missed_bin": per_day}, [spike_day],
                             data_from=spike_day - timedelta(weeks=3)) == []


def test_a_drop_is_flagged_too() -> None:
    day = TODAY - timedelta(days=1)
    per_day = Counter({day - timedelta(weeks=k): 12 for k in range(1, 9)})
    per_day[day] = 0
    assert [w.direction for w in mi.early_warnings({"x": per_day}, [day], TODAY - timedelta(weeks=9))] == ["below"]


def test_demo_history_shows_the_spike_wards_channels_and_outcomes(sqlite_ledger: str) -> None:
    total = build(sqlite_ledger, TODAY, days=63, refuse_every=25)
    with db.session_scope(sqlite_ledger) as session:
        rep = mi.report(session, today=TODAY)
    assert rep.start == TODAY - timedelta(weeks=8) + timedelta(days=1) and rep.end == TODAY
    assert 0 < rep.total < total, "the 8-week period holds only part of the 9-week history"
    spikes = [(w.service, w.day) for w in rep.warnings if w.direction == "above"]
    assert ("waste_missed_bin", TODAY - timedelta(days=1)) in spikes
    assert rep.marks, "the flagged day is marked on the chart"
    assert sum(n for _, _, n in rep.wards) == rep.total
    assert {name for _, name, _ in rep.wards} >= {"Castle", "Riverside"}
    with db.session_scope(sqlite_ledger) as session:
        bins = mi.report(session, today=TODAY, service="waste_missed_bin")
    assert "Not known" not in {name for _, name, _ in bins.wards}, "every missed bin has a UPRN"
    assert dict(rep.channels).keys() <= {"Telephone", "Web", "Face to face", "E-mail"}
    assert sum(sum(row) for row in rep.weekday_hour) == rep.total
    assert all(0 == sum(rep.weekday_hour[w][h] for w in range(7)) for h in (0, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22, 23))
    outcomes = Counter()
    for per in rep.outcomes.values():
        outcomes.update(per)
    assert outcomes["Completed automatically"] > 0 and outcomes["Still open"] > 0
    assert sum(outcomes.values()) == rep.total
    done, median, p90 = rep.completion["waste_missed_bin"]
    assert done > 0 and median is not None and p90 >= median


def test_service_filter_and_csv_export(sqlite_ledger: str) -> None:
    build(sqlite_ledger, TODAY, days=21)
    with db.session_scope(sqlite_ledger) as session:
        rep = mi.report(session, today=TODAY, service="licence_application",
                        start=TODAY - timedelta(days=13))
    assert rep.services == ["licence_application"] and len(rep.days) == 14
    header, rows = mi.csv_rows(rep, "daily")
    assert header == ["date", "service", "requests"] and len(rows) == 14
    assert sum(r[2] for r in rows) == rep.total
    with pytest.raises(KeyError):
        mi.csv_rows(rep, "nope")


def test_a_case_is_counted_once_by_its_first_version_and_contact_time(sqlite_ledger: str) -> None:
    at = datetime(2026, 3, 10, 9, 30, tzinfo=timezone.utc)
    record(sqlite_ledger, "CRM-1", "waste_missed_bin", {"uprn": "100090000001"}, at, "phone")
    from crm_adapter.models import CrmCase
    from hub import intake

    intake.record_case(CrmCase(crm_id="CRM-1", version=2, case_type="waste_missed_bin",
                               updated_at=at + timedelta(days=2), data={"uprn": "100090000001"}),
                       source="pull", url=sqlite_ledger)
    with db.session_scope(sqlite_ledger) as session:
        rep = mi.report(session, today=TODAY)
    assert rep.total == 1 and rep.daily["waste_missed_bin"][rep.days.index(at.date())] == 1
    assert rep.channels == [("Telephone", 1)] and rep.wards[0][1] == "Riverside"
    assert rep.weekday_hour[1][9] == 1
    out = io.StringIO()
    csv.writer(out).writerows(mi.csv_rows(rep, "ward")[1])
    assert "E05099902" in out.getvalue()
