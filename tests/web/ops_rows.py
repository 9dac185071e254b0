"""Ledger rows for operations tests: confirmed, refused, retried and failed commands, sent through
the hub's own dispatch with a scripted connector."""
from __future__ import annotations

import sqlalchemy as sa

from connectors.base import Outcome, OutcomeStatus
from hub import dispatch
from hub.ledger import db
from hub.ledger.models import Command
from tests.hub.factories import receive_and_map
from tests.hub.scripted import ScriptedConnector


def busy_revenues(url: str) -> dict[str, list[int]]:
    """6 moves: 3 confirmed, 1 refused, 1 failed for good (8 transient tries), 1 still pending."""
    receive_and_map(url, 6)
    with db.session_scope(url) as session:
        keys = [c.key for c in session.scalars(sa.select(Command).order_by(Command.id))]
    fate = {keys[0]: "ok", keys[1]: "ok", keys[2]: "ok", keys[3]: "refuse", keys[4]: "flaky",
            keys[5]: "later"}

    def answer(command):  # type: ignore[no-untyped-def]
        what = fate[command.key]
        if what == "ok":
            return Outcome(command.key, OutcomeStatus.CONFIRMED, reference=f"RQ-{command.key[-4:]}")
        if what == "refuse":
            return Outcome(command.key, OutcomeStatus.REJECTED, message="Client fault: account closed",
                           error_class="Rejected", code="ACCOUNT_CLOSED")
        return Outcome(command.key, OutcomeStatus.RETRY, message="Server fault: timeout",
                       error_class="TransientError", code="504")

    connector = ScriptedConnector(answer)
    dispatch.dispatch_all(connector, "revenues_northgate", url=url, run_id="manual__2026-03-01")
    for _ in range(dispatch.MAX_ATTEMPTS):   # the flaky one keeps failing until it gives up
        with db.session_scope(url) as session:
            session.execute(sa.update(Command).where(Command.state == "pending")
                            .values(next_attempt_at=None))
            session.execute(sa.update(Command).where(Command.key == keys[5]).values(state="hold"))
        dispatch.dispatch_all(connector, "revenues_northgate", url=url, run_id="manual__2026-03-01")
        with db.session_scope(url) as session:
            session.execute(sa.update(Command).where(Command.key == keys[5]).values(state="pending"))
    with db.session_scope(url) as session:
        by_state: dict[str, list[int]] = {}
        for command in session.scalars(sa.select(Command).order_by(Command.id)):
            by_state.setdefault(command.state, []).append(command.id)
    return by_state
