"""A team member's day on the work desk, in chromium."""
from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import sign_in
from tests.browser.flows import (commands_of, crm_case, crm_view, intake_and_send, item_for,
                                 refused_move, unreachable_revenues, write_back)
from tests.hub.factories import coa_data

pytestmark = pytest.mark.browser


def test_a_team_member_claims_and_resolves_and_the_crm_shows_it(stack, page) -> None:
    item = refused_move(stack, "CRM-B1")
    sign_in(page, stack.hub, "rev.officer")
    assert page.url.endswith("/desk")
    page.get_by_role("link", name=f"#{item}").click()
    assert page.get_by_role("heading", name="Refused by the back office").is_visible()
    page.get_by_role("button", name="Claim this item").click()
    assert page.get_by_text("You have claimed this item.").is_visible()
    page.get_by_label("Entered in the back office by hand").check()
    page.get_by_label("Note for the CRM").fill("Keyed from the customer's form")
    page.get_by_role("button", name="Resolve", exact=True).click()
    assert page.get_by_text("The item is resolved. The CRM will be told.").is_visible()
    assert page.locator(".tag--done").first.is_visible()
    write_back(stack)
    case = crm_view(stack, "CRM-B1")
    assert case["status"] == "completed"
    assert "Entered in the back office by hand (Revenues" in case["notes"][-1]["text"]
    assert "Keyed from the customer's form" in case["notes"][-1]["text"]


def test_fix_and_retry_confirms_in_the_back_office(stack, page) -> None:
    item = refused_move(stack, "CRM-B2")
    sign_in(page, stack.hub, "rev.officer")
    page.goto(f"{stack.hub}/desk/items/{item}")
    field = page.get_by_label("account_ref")
    assert field.input_value() == "CT99999901"
    field.fill("CT0000000X")
    page.get_by_role("button", name="Send corrected request").click()
    assert page.locator(".field-error", has_text="account_ref: String should match pattern").is_visible()
    page.get_by_label("account_ref").fill("CT00000005")
    page.get_by_role("button", name="Send corrected request").click()
    assert page.get_by_text("The corrected request has been queued to send again.").is_visible()
    intake_and_send(stack)   # the dispatch DAG's next run
    original, resend = commands_of(stack, "CRM-B2")
    assert original.state == "rejected" and resend.state == "confirmed"
    assert resend.key == original.key + ".f1" and resend.payload["account_ref"] == "CT00000005"
    record = httpx.get(f"{stack.revenues.url}/admin/requests/{resend.reference}", timeout=5).json()
    assert record["account_ref"] == "CT00000005"
    page.reload()
    assert page.get_by_text(f"corrects #{original.id}").is_visible()
    write_back(stack)
    notes = [n["text"] for n in crm_view(stack, "CRM-B2")["notes"]]
    assert any("corrected the request and sent it to Revenues again" in n for n in notes)
    assert crm_view(stack, "CRM-B2")["status"] == "completed"


def test_another_teams_item_answers_403(stack, page) -> None:
    item = refused_move(stack, "CRM-B3")
    sign_in(page, stack.hub, "waste.officer")
    assert "CRM-B3" not in page.content()
    answer = page.goto(f"{stack.hub}/desk/items/{item}")
    assert answer.status == 403
    assert page.get_by_role("heading", name="You cannot open this page").is_visible()


def test_a_form_posted_without_its_csrf_token_is_refused(stack, page) -> None:
    item = refused_move(stack, "CRM-B4")
    sign_in(page, stack.hub, "rev.officer")
    page.goto(f"{stack.hub}/desk/items/{item}")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    with page.expect_response(lambda r: r.url.endswith("/claim")) as posted:
        page.get_by_role("button", name="Claim this item").click()
    assert posted.value.status == 403
    assert page.get_by_text("This form has expired or did not come from this site").is_visible()
    page.goto(f"{stack.hub}/desk/items/{item}")
    assert page.get_by_role("button", name="Claim this item").is_visible(), "nothing changed"


def test_an_operations_user_replays_a_failed_command(stack, page) -> None:
    import sqlalchemy as sa

    from hub import dispatch
    from hub.ledger import db
    from hub.ledger.models import Command

    crm_case(stack, "CRM-B5", coa_data("CT00000009"))
    for _ in range(dispatch.MAX_ATTEMPTS):   # the back office is down: every try fails
        intake_and_send(stack, unreachable_revenues())
        with db.session_scope(stack.ledger) as session:
            session.execute(sa.update(Command).values(next_attempt_at=None))
    [failed] = commands_of(stack, "CRM-B5")
    assert failed.state == "failed"
    sign_in(page, stack.hub, "ops.analyst")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Operations").click()
    page.get_by_label(f"Replay command {failed.id}").check()
    page.get_by_role("button", name="Replay selected…").click()
    assert page.get_by_role("heading", name="Replay 1 failed command?").is_visible()
    page.get_by_label("I have checked the cause of the failures is fixed").check()
    page.get_by_role("button", name="Replay 1 command").click()
    assert page.get_by_text("The failed commands are queued to send again.").is_visible()
    intake_and_send(stack)
    [replayed] = commands_of(stack, "CRM-B5")
    assert replayed.state == "confirmed" and replayed.key == failed.key
    assert item_for(stack, "CRM-B5") is not None
