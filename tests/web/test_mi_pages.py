"""The management-information page and its CSV exports, for operations and admin only."""
from __future__ import annotations

from datetime import date, timedelta

from tests.web.history import build
from tests.web.support import add_user, sign_in


def test_mi_page_charts_and_csv(app, sqlite_ledger: str) -> None:
    today = date.today()
    build(sqlite_ledger, today, days=63)
    add_user(sqlite_ledger, "boss", role="admin")
    add_user(sqlite_ledger, "rev.officer", teams=["revenues"])
    browser = sign_in(app, "boss")
    page = browser.get("/mi")
    assert page.status_code == 200
    assert page.text.count("<svg") == 5 and "Requests by ward" in page.text
    assert "Waste missed bin" in page.text and "above the usual range" in page.text
    assert (today - timedelta(days=1)).strftime("%a %d %b") in page.text
    csv = browser.get("/mi/ward.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    assert csv.text.splitlines()[0] == "ward_code,ward_name,requests"
    assert browser.get("/mi/nothing.csv").status_code == 404
    assert browser.get("/mi?start=yesterday").status_code == 422
    assert sign_in(app, "rev.officer").get("/mi").status_code == 403
