"""The Reconciliation page and its CSV: runs and findings, filters by system and class, no values,
operations staff only."""
from __future__ import annotations

import csv
import io

from hub.reconcile import engine
from tests.hub.reconcile.test_engine import SYSTEM, _drift, _world
from tests.web.support import add_user, sign_in


def test_the_page_lists_runs_and_findings_with_filters_and_a_csv(app, sqlite_ledger: str) -> None:
    office, crm, commands = _world(sqlite_ledger)
    _drift(sqlite_ledger, office, crm, commands)
    engine.reconcile_system(SYSTEM, connector=office, crm=crm, url=sqlite_ledger, dry_run=True)
    engine.reconcile_system(SYSTEM, connector=office, crm=crm, url=sqlite_ledger)
    add_user(sqlite_ledger, "ops.analyst", role="operations")
    add_user(sqlite_ledger, "rev.officer", teams=["revenues"])
    browser = sign_in(app, "ops.analyst")

    page = browser.get("/reconciliation")
    assert page.status_code == 200
    for text in ("Reconciliation", SYSTEM, "dry run", "missing_in_backoffice", "field_mismatch",
                 "moved_on", "healed", "work_item", "Findings as CSV"):
        assert text in page.text, text
    assert "2026-04-01" not in page.text, "a value never shows, only the field's name"

    only = browser.get("/reconciliation", params={"system": SYSTEM, "code": "field_mismatch"})
    assert only.status_code == 200
    assert "moved_on" in only.text and "unmapped_case</abbr>" not in only.text

    answer = browser.get("/reconciliation/findings.csv", params={"code": "stuck"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0][:4] == ["run", "run_started", "system", "class"]
    assert {r[3] for r in rows[1:]} == {"stuck"} and len(rows) == 3   # dry run and real run
    assert browser.get("/reconciliation", params={"code": "nonsense"}).status_code == 422
    assert sign_in(app, "rev.officer").get("/reconciliation").status_code == 403
