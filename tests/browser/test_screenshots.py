"""Screenshots of the desk, an item, the operations view and the MI page, from a ledger with weeks
of history. `make screenshots` (HUB_UPDATE_SCREENSHOTS=1) writes them to docs/images/ for the
README; otherwise they go to a temporary folder, and the test still checks each page renders."""
from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub import desk, dispatch
from hub.accounts import StaffUser
from hub.ledger import db
from hub.ledger.models import Command, WorkItem, utcnow
from tests.browser.conftest import sign_in
from tests.browser.flows import crm_case, intake_and_send, refused_move, unreachable_revenues
from tests.hub.factories import coa_data
from tests.web.history import build

pytestmark = pytest.mark.browser
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def busy_ledger(stack) -> int:  # type: ignore[no-untyped-def]
    build(stack.ledger, date.today(), days=63, refuse_every=37)
    first = refused_move(stack, "CRM-100231")
    refused_move(stack, "CRM-100245", account="CT99999902")
    crm_case(stack, "CRM-100250", coa_data("CT00000007"))   # held for staff review
    crm_case(stack, "CRM-100262", coa_data("CT00000011"))
    intake_and_send(stack)
    for _ in range(dispatch.MAX_ATTEMPTS):   # one more while Revenues was down: failed
        crm_case(stack, "CRM-100263", coa_data("CT00000012"))
        intake_and_send(stack, unreachable_revenues())
        with db.session_scope(stack.ledger) as session:
            session.execute(sa.update(Command).where(Command.state == "pending").values(next_attempt_at=None))
    officer = StaffUser(0, "rev.officer", "Rev Officer", "member", frozenset({"revenues"}))
    with db.session_scope(stack.ledger) as session:
        items = list(session.scalars(sa.select(WorkItem).where(WorkItem.team == "revenues")
                                     .order_by(WorkItem.id)))
        items[0].due_at = utcnow() - timedelta(hours=5)
        desk.claim(session, officer, items[1].id)
        desk.comment(session, officer, first, "Customer rang back: account number on the form was mistyped.")
    return first


def test_screenshots_of_the_four_pages(stack, page, tmp_path: Path) -> None:
    out = DOCS_IMAGES if os.environ.get("HUB_UPDATE_SCREENSHOTS") == "1" else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    item = busy_ledger(stack)
    page.set_viewport_size({"width": 1400, "height": 1000})

    sign_in(page, stack.hub, "rev.officer")
    assert page.get_by_role("heading", name="Work items").is_visible()
    page.screenshot(path=str(out / "desk.png"), full_page=False)
    page.goto(f"{stack.hub}/desk/items/{item}")
    assert page.get_by_role("heading", name="Correct and send again").is_visible()
    page.screenshot(path=str(out / "item.png"), full_page=True)

    page.context.clear_cookies()
    sign_in(page, stack.hub, "ops.analyst")
    page.goto(f"{stack.hub}/operations")
    assert page.get_by_role("heading", name="Failed commands", level=2).is_visible()
    page.screenshot(path=str(out / "operations.png"), full_page=True)

    page.context.clear_cookies()
    sign_in(page, stack.hub, "admin")
    page.goto(f"{stack.hub}/mi")
    assert page.locator(".warning-list li").count() >= 1
    page.screenshot(path=str(out / "mi.png"), full_page=True)
    for name in ("desk", "item", "operations", "mi"):
        assert (out / f"{name}.png").stat().st_size > 20_000, name
