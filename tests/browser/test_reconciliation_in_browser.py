"""The Reconciliation page in a real browser: an operations analyst sees the runs, narrows the
findings to one class with the form, follows a run, and the CSV link carries the filters. Its
screenshot goes to docs/images/reconciliation.png with `make screenshots` (HUB_UPDATE_SCREENSHOTS=1)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.reconcile import engine
from tests.browser.conftest import sign_in
from tests.hub.reconcile.test_engine import SYSTEM, _drift, _world

pytestmark = pytest.mark.browser
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def test_an_analyst_filters_findings_by_class_and_run(stack, page, tmp_path: Path) -> None:
    out = DOCS_IMAGES if os.environ.get("HUB_UPDATE_SCREENSHOTS") == "1" else tmp_path
    office, crm, commands = _world(stack.ledger)
    _drift(stack.ledger, office, crm, commands)
    first = engine.reconcile_system(SYSTEM, connector=office, crm=crm, url=stack.ledger)
    engine.reconcile_system(SYSTEM, connector=office, crm=crm, url=stack.ledger)

    page.set_viewport_size({"width": 1400, "height": 1000})
    sign_in(page, stack.hub, "ops.analyst")
    page.get_by_role("link", name="Reconciliation").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Runs").is_visible()
    runs = page.locator("h2:has-text('Runs') + .table-wrap tbody tr")
    assert runs.count() == 2
    findings = page.locator("h2:has-text('Findings') + .table-wrap tbody tr")
    assert findings.count() == 7 + 3, "seven in the first run, the three still open in the second"
    page.screenshot(path=str(out / "reconciliation.png"), full_page=True)

    page.get_by_label("Finding class").select_option("field_mismatch")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    assert findings.count() == 2
    assert all("moved_on" in text for text in findings.all_inner_texts())
    csv_link = page.get_by_role("link", name="Findings as CSV")
    assert "code=field_mismatch" in (csv_link.get_attribute("href") or "")

    page.get_by_role("link", name=str(first.run), exact=True).click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name=f"Findings of run {first.run}").is_visible()
    assert findings.count() == 7
    assert (out / "reconciliation.png").stat().st_size > 20_000
