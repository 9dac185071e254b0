"""The operations page, the two-step replay and /metrics, and who may see them."""
from __future__ import annotations

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from hub.ledger import db
from hub.ledger.models import AuditEntry, Command
from tests.web.ops_rows import busy_revenues
from tests.web.support import add_user, client, csrf_of, sign_in


def test_operations_page_shows_figures_and_failures(app, sqlite_ledger: str) -> None:
    busy_revenues(sqlite_ledger)
    add_user(sqlite_ledger, "ops.analyst", role="operations")
    add_user(sqlite_ledger, "rev.officer", teams=["revenues"])
    add_user(sqlite_ledger, "boss", role="admin")
    page = sign_in(app, "ops.analyst").get("/operations")
    assert page.status_code == 200
    for text in ("revenues_northgate", "Failure rate (24 h)", "TransientError", "Server fault: timeout",
                 "/dags/revenues_northgate/runs/manual__2026-03-01", "Replay selected"):
        assert text in page.text, text
    assert sign_in(app, "rev.officer").get("/operations").status_code == 403
    assert sign_in(app, "boss").get("/operations").status_code == 403


def test_replay_asks_first_then_replays_and_audits(app, sqlite_ledger: str) -> None:
    failed_id = busy_revenues(sqlite_ledger)["failed"][0]
    add_user(sqlite_ledger, "ops.analyst", role="operations")
    browser = sign_in(app, "ops.analyst")
    token = csrf_of(browser.get("/operations").text)
    assert browser.post("/operations/replay", data={"command": str(failed_id)}).status_code == 403
    ask = browser.post("/operations/replay", data={"csrf_token": token, "command": str(failed_id)})
    assert ask.status_code == 200 and "Replay 1 failed command?" in ask.text
    with db.session_scope(sqlite_ledger) as session:
        assert session.get(Command, failed_id).state == "failed", "asking changes nothing"
    unconfirmed = browser.post("/operations/replay/confirmed",
                               data={"csrf_token": token, "command": str(failed_id)})
    assert unconfirmed.status_code == 422
    done = browser.post("/operations/replay/confirmed",
                        data={"csrf_token": token, "command": str(failed_id), "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/operations?done=replayed"
    with db.session_scope(sqlite_ledger) as session:
        assert session.get(Command, failed_id).state == "pending"
        assert session.scalar(sa.select(AuditEntry.actor).where(AuditEntry.command_id == failed_id)) \
            == "ops.analyst"


def test_metrics_carry_the_same_figures_for_the_token_or_operations(app, sqlite_ledger: str) -> None:
    busy_revenues(sqlite_ledger)
    assert client(app).get("/metrics").status_code == 401
    scraped = client(app).get("/metrics", headers={"Authorization": "Bearer machine-token"})
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(scraped.text) for s in family.samples}
    rev = (("system", "revenues_northgate"),)
    assert samples[("hub_commands", (("state", "failed"), ("system", "revenues_northgate")))] == 1
    assert samples[("hub_commands", (("state", "pending"), ("system", "revenues_northgate")))] == 1
    assert samples[("hub_confirmed_last_hour", rev)] == 3
    assert samples[("hub_failed_attempts_24h", rev)] == 10
    assert samples[("hub_failures_24h", (("error_class", "TransientError"), ("system", "revenues_northgate")))] == 9
    assert ("hub_crm_to_confirmed_seconds", (("quantile", "0.95"), ("system", "revenues_northgate"))) in samples
    add_user(sqlite_ledger, "rev.officer", teams=["revenues"])
    assert sign_in(app, "rev.officer").get("/metrics").status_code == 403
