"""The work desk in the browser's terms: queue, item page, 403 for another team, CSRF on actions."""
from __future__ import annotations

import sqlalchemy as sa

from hub.ledger import db
from hub.ledger.models import Command, WorkItem
from tests.web.ledger_rows import refused_move, waste_item
from tests.web.support import add_user, csrf_of, sign_in


def test_the_queue_shows_only_the_members_team(app, sqlite_ledger: str) -> None:
    rev = refused_move(sqlite_ledger)
    waste = waste_item(sqlite_ledger)
    add_user(sqlite_ledger, "waste.officer", teams=["waste"])
    browser = sign_in(app, "waste.officer")
    page = browser.get("/desk")
    assert page.status_code == 200
    assert f"#{waste}" in page.text and f"#{rev}<" not in page.text and "CRM-R1" not in page.text
    assert "Revenues" not in page.text, "no tab, count or filter for another team"
    assert browser.get(f"/desk/items/{rev}").status_code == 403
    assert browser.get("/desk?team=revenues").status_code == 403
    assert browser.get(f"/desk?q=%23{rev}&state=all").text.count("CRM-R1") == 0
    api = browser.get("/api/work-items").json()
    assert [i["id"] for i in api] == [waste], "the API scopes a signed-in person the same way"


def test_the_item_page_shows_references_reason_attempts_and_personal_data_to_the_owner(
        app, sqlite_ledger: str) -> None:
    item = refused_move(sqlite_ledger, reason="Client fault ACCOUNT_NOT_FOUND: no such account")
    add_user(sqlite_ledger, "rev.officer", teams=["revenues"])
    add_user(sqlite_ledger, "ops.analyst", role="operations")
    owner = sign_in(app, "rev.officer").get(f"/desk/items/{item}")
    assert owner.status_code == 200
    for expected in ("CRM-R1", "revenues_northgate", "ctax.change_of_address",
                     "ACCOUNT_NOT_FOUND", "Refused by the back office", "Test Person",
                     "Correct and send again", "Audit trail"):
        assert expected in owner.text, expected
    ops = sign_in(app, "ops.analyst").get(f"/desk/items/{item}")
    assert ops.status_code == 200 and "CRM-R1" in ops.text
    assert "Test Person" not in ops.text and "Mill Lane" not in ops.text
    assert "shown only to the Revenues team" in ops.text


def test_actions_need_the_forms_csrf_token(app, sqlite_ledger: str) -> None:
    item = refused_move(sqlite_ledger)
    add_user(sqlite_ledger, "rev.officer", teams=["revenues"])
    browser = sign_in(app, "rev.officer")
    page = browser.get(f"/desk/items/{item}")
    assert browser.post(f"/desk/items/{item}/claim").status_code == 403
    assert browser.post(f"/desk/items/{item}/claim", data={"csrf_token": "x" * 43}).status_code == 403
    with db.session_scope(sqlite_ledger) as session:
        assert session.get(WorkItem, item).state == "open"
    claimed = browser.post(f"/desk/items/{item}/claim", data={"csrf_token": csrf_of(page.text)})
    assert claimed.status_code == 303 and claimed.headers["location"].endswith("done=claimed")
    assert "You have claimed this item." in browser.get(claimed.headers["location"]).text


def test_fix_and_retry_errors_name_the_field_and_keep_what_was_typed(app, sqlite_ledger: str) -> None:
    item = refused_move(sqlite_ledger)
    add_user(sqlite_ledger, "rev.officer", teams=["revenues"])
    browser = sign_in(app, "rev.officer")
    token = csrf_of(browser.get(f"/desk/items/{item}").text)
    form = {"csrf_token": token, "f_account_ref": "CT1", "f_moved_on": "2026-03-01",
            "f_new_property_ref": "P000101"}
    bad = browser.post(f"/desk/items/{item}/fix", data=form)
    assert bad.status_code == 422 and "account_ref:" in bad.text and 'value="CT1"' in bad.text
    good = browser.post(f"/desk/items/{item}/fix", data={**form, "f_account_ref": "CT00000005"})
    assert good.status_code == 303
    with db.session_scope(sqlite_ledger) as session:
        resend = session.scalar(sa.select(Command).where(Command.replaces_command_id.is_not(None)))
        assert resend.payload == {"account_ref": "CT00000005", "moved_on": "2026-03-01",
                                  "new_property_ref": "P000101"}
